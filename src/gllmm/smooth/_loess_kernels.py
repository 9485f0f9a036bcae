"""Numba kernels of loess (Cleveland & Grosse 1991) as the netlib ``dloess`` code computes it.

The smoother is linear in the responses, so every routine here works on operators: the local
fit at a point is returned as the matrix mapping ``y`` to its value and gradient, and the
interpolated surface as the matrix ``L`` with ``y_hat = L y``.

Surface "interpolate" (Cleveland & Grosse 1991, Section 4): the bounding box of the points,
widened by 0.5% of each range, is cut into a k-d tree (a cell with more than
``fc = floor(n * span * cell)`` points is split at the median of its widest coordinate, tied
values going to the upper half); local fits at the cell vertices give the value and gradient
there, and the surface inside a cell is cubic Hermite interpolation (in two dimensions blended
with the edges of the neighbouring cells). The tie handling, the selection order and the
blending follow the version of the code in R's ``gam`` package (``lo()``), whose k-d tree
splits depend on the order the partial sort leaves the points in; it is reproduced here so the
fits agree with that code.

Indices are 0-based. A cell ``p`` is a leaf when ``split_dim[p] < 0``; then ``lo[p]..hi[p]`` is
its range in the permutation ``perm`` (possibly empty, or reaching outside the cell where the
tie walk steps past its start, as in the original); otherwise ``lo[p]``, ``hi[p]`` are its
children. ``corner[p, b]`` is the vertex at the corner whose bit ``k`` of ``b`` says upper in
dimension ``k``.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

#: Relative singular-value cut-off of the local least-squares pseudo-inverse (as dloess).
PINV_RTOL = 100.0 * np.finfo(np.float64).eps


@njit
def _swap(perm, i, j):
    t = perm[i]
    perm[i] = perm[j]
    perm[j] = t


@njit
def select(values, perm, left, right, k):
    """Partial sort of ``perm[left..right]`` so that ``values[perm[k]]`` is the k-th smallest.

    Quickselect partitioning around the current k-th element (Floyd & Rivest 1975, Algorithm
    489, without sampling), as dloess does it: the order it leaves the other indices in decides
    where the k-d tree's tie walk stops.
    """
    lo, hi = left, right
    while lo < hi:
        t = values[perm[k]]
        i, j = lo, hi
        _swap(perm, lo, k)
        if t < values[perm[hi]]:
            _swap(perm, lo, hi)
        while i < j:
            _swap(perm, i, j)
            i += 1
            j -= 1
            while values[perm[i]] < t:
                i += 1
            while t < values[perm[j]]:
                j -= 1
        if values[perm[lo]] == t:
            _swap(perm, lo, j)
        else:
            j += 1
            _swap(perm, hi, j)
        if j <= k:
            lo = j + 1
        if k <= j:
            hi = j - 1


@njit
def _split_vertices(vert, nv, corner, p, k, t, left, right, d):
    """Vertices of the two halves of cell ``p`` cut at ``x_k = t``; reuses equal vertices."""
    r = 2**k
    s = 2 ** (d - 1 - k)
    h = nv
    point = np.empty(d)
    for i in range(r):
        for j in range(s):
            low = corner[p, i + 2 * r * j]
            high = corner[p, i + r + 2 * r * j]
            for q in range(d):
                point[q] = vert[low, q]
            point[k] = t
            found = -1
            for m in range(nv):
                same = True
                for q in range(d):
                    if vert[m, q] != point[q]:
                        same = False
                        break
                if same:
                    found = m
                    break
            if found < 0:
                vert[h, :] = point
                found = h
                h += 1
            corner[left, i + 2 * r * j] = low
            corner[left, i + r + 2 * r * j] = found
            corner[right, i + 2 * r * j] = found
            corner[right, i + r + 2 * r * j] = high
    return h


@njit
def build_tree(xt, fc, nvmax):
    """k-d tree and vertices over the points ``xt`` (shape (d, n), one row per coordinate).

    Returns ``(vert, nv, split_dim, split_at, lo, hi, corner, nc, perm)``.
    """
    d, n = xt.shape
    vc = 2**d
    ncmax = nvmax
    vert = np.zeros((nvmax, d))
    for k in range(d):
        alpha = xt[k].min()
        beta = xt[k].max()
        mu = 0.005 * max(beta - alpha, 1e-10 * max(abs(alpha), abs(beta)) + 1e-30)
        vert[0, k] = alpha - mu
        vert[vc - 1, k] = beta + mu
    for i in range(1, vc - 1):
        j = i
        for k in range(d):
            vert[i, k] = vert[(j % 2) * (vc - 1), k]
            j //= 2
    split_dim = np.full(ncmax, -1, dtype=np.int64)
    split_at = np.zeros(ncmax)
    lo = np.zeros(ncmax, dtype=np.int64)
    hi = np.zeros(ncmax, dtype=np.int64)
    corner = np.zeros((ncmax, vc), dtype=np.int64)
    for j in range(vc):
        corner[0, j] = j
    perm = np.arange(n)
    nv, nc = vc, 1
    p, left, right = 0, 0, n - 1
    lo[0], hi[0] = left, right
    while p < nc:
        diam = 0.0
        for k in range(d):
            diam += (vert[corner[p, vc - 1], k] - vert[corner[p, 0], k]) ** 2
        leaf = (right - left + 1 <= fc) or (np.sqrt(diam) <= 0.0)
        if not leaf:
            leaf = (ncmax < nc + 2) or (nvmax < nv + vc / 2.0)
        k = 0
        m = 0
        if not leaf:
            widest = -np.inf
            for q in range(d):
                a = np.inf
                b = -np.inf
                for i in range(left, right + 1):
                    a = min(a, xt[q, perm[i]])
                    b = max(b, xt[q, perm[i]])
                if b - a > widest:
                    widest = b - a
                    k = q
            m = (left + right) // 2
            select(xt[k], perm, left, right, m)
            # all ties go with the upper son (the walk may leave the cell, as in dloess)
            while m > 0 and xt[k, perm[m - 1]] == xt[k, perm[m]]:
                m -= 1
            value = xt[k, perm[m]]
            leaf = vert[corner[p, 0], k] == value or vert[corner[p, vc - 1], k] == value
        if not leaf:
            split_dim[p] = k
            split_at[p] = xt[k, perm[m]]
            lo[p], lo[nc], hi[nc] = nc, left, m
            hi[p], lo[nc + 1], hi[nc + 1] = nc + 1, m + 1, right
            nv = _split_vertices(vert, nv, corner, p, k, split_at[p], nc, nc + 1, d)
            nc += 2
        p += 1
        if p < nc:
            left, right = lo[p], hi[p]
    return vert, nv, split_dim, split_at, lo, hi, corner, nc, perm


@njit
def local_fit(q, xt, rw, nf, span, degree):
    """Local weighted least squares at ``q`` as an operator.

    Minimises ``sum_i rw_i T(|x_i - q| / rho) (y_i - P(x_i - q))^2`` over polynomials ``P`` of
    the given degree, ``T(u) = (1 - u^3)^3`` the tricube, ``rho`` the distance to the ``nf``-th
    nearest point times ``sqrt(max(1, span))`` (dloess: the squared radius times the span).
    Returns ``(coef, ok)``: ``coef`` of shape (d + 1, n) maps ``y`` to the fitted value at ``q``
    and its gradient; ``ok`` is False when the neighbourhood has no weight.
    """
    d, n = xt.shape
    dist = np.zeros(n)
    for j in range(d):
        for i in range(n):
            dist[i] += (xt[j, i] - q[j]) ** 2
    perm = np.arange(n)
    select(dist, perm, 0, n - 1, nf - 1)
    rho = dist[perm[nf - 1]] * max(1.0, span)
    coef = np.zeros((d + 1, n))
    if not rho > 0.0:
        return coef, False
    ncol = 1 + d if degree >= 1 else 1
    if degree >= 2:
        ncol += d * (d + 1) // 2
    design = np.zeros((nf, ncol))
    w = np.zeros(nf)
    for i in range(nf):
        u = np.sqrt(dist[perm[i]] / rho)
        w[i] = np.sqrt(rw[perm[i]] * (1.0 - u**3) ** 3) if u < 1.0 else 0.0
    if w.max() == 0.0:
        return coef, False
    for i in range(nf):
        design[i, 0] = w[i]
        col = 1
        if degree >= 1:
            for j in range(d):
                design[i, col] = w[i] * (xt[j, perm[i]] - q[j])
                col += 1
        if degree >= 2:
            for j in range(d):
                dj = xt[j, perm[i]] - q[j]
                design[i, col] = w[i] * dj * dj
                col += 1
                for jj in range(j + 1, d):
                    design[i, col] = w[i] * dj * (xt[jj, perm[i]] - q[jj])
                    col += 1
    # equilibrate the columns, then a pseudo-inverse by the SVD
    norms = np.ones(ncol)
    for c in range(ncol):
        s = np.sqrt(np.sum(design[:, c] ** 2))
        if s > 0.0:
            norms[c] = s
            design[:, c] /= s
    u_mat, sig, vt = np.linalg.svd(design, full_matrices=False)
    tol = sig[0] * PINV_RTOL
    nout = min(d + 1, ncol)
    for c in range(nout):
        for i in range(nf):
            acc = 0.0
            for r in range(sig.size):
                if sig[r] > tol:
                    acc += vt[r, c] * u_mat[i, r] / sig[r]
            coef[c, perm[i]] = acc * w[i] / norms[c]
    return coef, True


@njit
def _hermite(h):
    return (1 - h) ** 2 * (1 + 2 * h), h**2 * (3 - 2 * h), h * (1 - h) ** 2, h**2 * (h - 1)


@njit
def _descend(z, m, split_dim, split_at, lo, hi):
    while split_dim[m] >= 0:
        m = lo[m] if z[split_dim[m]] < split_at[m] else hi[m]
    return m


@njit
def _neighbour(z, path, npath, dim, edge, upper, split_dim, split_at, lo, hi):
    """Leaf across the cell's edge ``x_dim = edge`` (dloess's blending search), or -1."""
    m = npath - 2
    while m >= 0 and not (split_dim[path[m]] == dim and split_at[path[m]] == edge):
        m -= 1
    if m < 0:
        return -1
    start = hi[path[m]] if upper else lo[path[m]]
    return _descend(z, start, split_dim, split_at, lo, hi)


@njit
def _edge(z, along, cross, g0, g1, v0, v1, vert, nb, c0, c1, vval):
    """Hermite interpolation along one edge of a 2-d cell, with finer neighbouring vertices.

    Returns the value and the cross derivative (index ``cross + 1``) on the edge at ``z``.
    """
    if nb >= 0:
        if v0 < vert[c0, along]:
            v0 = vert[c0, along]
            g0 = vval[c0]
        if vert[c1, along] < v1:
            v1 = vert[c1, along]
            g1 = vval[c1]
    h = (z[along] - v0) / (v1 - v0)
    phi0, phi1, psi0, psi1 = _hermite(h)
    value = phi0 * g0[0] + phi1 * g1[0] + (psi0 * g0[along + 1] + psi1 * g1[along + 1]) * (v1 - v0)
    slope = phi0 * g0[cross + 1] + phi1 * g1[cross + 1]
    return value, slope


@njit
def interpolate(z, vert, split_dim, split_at, lo, hi, corner, vval):
    """Value of the interpolated surface at ``z``; ``vval`` (nv, d + 1, ncol) holds vertex
    values and gradients for ``ncol`` responses at once. Returns shape (ncol,)."""
    d = z.size
    vc = 2**d
    path = np.zeros(64, dtype=np.int64)
    npath = 1
    j = 0
    while split_dim[j] >= 0:
        j = lo[j] if z[split_dim[j]] < split_at[j] else hi[j]
        path[npath] = j
        npath += 1
    ncol = vval.shape[2]
    g = np.empty((vc, d + 1, ncol))
    for b in range(vc):
        g[b] = vval[corner[j, b]]
    lg = vc
    ll = corner[j, 0]
    ur = corner[j, vc - 1]
    for i in range(d - 1, -1, -1):
        width = vert[ur, i] - vert[ll, i]
        h = (z[i] - vert[ll, i]) / width
        phi0, phi1, psi0, psi1 = _hermite(h)
        lg //= 2
        for ig in range(lg):
            g[ig, 0] = (phi0 * g[ig, 0] + phi1 * g[ig + lg, 0]
                        + (psi0 * g[ig, i + 1] + psi1 * g[ig + lg, i + 1]) * width)
            for ii in range(1, i + 1):
                g[ig, ii] = phi0 * g[ig, ii] + phi1 * g[ig + lg, ii]
    s = g[0, 0].copy()
    if d != 2:
        return s
    # blending with the four edges, each refined by the neighbouring cell's vertices
    c = corner[j]
    x0, x1 = vert[ll, 0], vert[ur, 0]
    y0, y1 = vert[ll, 1], vert[ur, 1]
    nb = _neighbour(z, path, npath, 1, y1, True, split_dim, split_at, lo, hi)
    cn = corner[max(nb, 0)]
    gn, gpn = _edge(z, 0, 1, vval[c[2]], vval[c[3]], x0, x1, vert, nb, cn[0], cn[1], vval)
    nb = _neighbour(z, path, npath, 1, y0, False, split_dim, split_at, lo, hi)
    cn = corner[max(nb, 0)]
    gs, gps = _edge(z, 0, 1, vval[c[0]], vval[c[1]], x0, x1, vert, nb, cn[2], cn[3], vval)
    nb = _neighbour(z, path, npath, 0, x1, True, split_dim, split_at, lo, hi)
    cn = corner[max(nb, 0)]
    ge, gpe = _edge(z, 1, 0, vval[c[1]], vval[c[3]], y0, y1, vert, nb, cn[0], cn[2], vval)
    nb = _neighbour(z, path, npath, 0, x0, False, split_dim, split_at, lo, hi)
    cn = corner[max(nb, 0)]
    gw, gpw = _edge(z, 1, 0, vval[c[0]], vval[c[2]], y0, y1, vert, nb, cn[1], cn[3], vval)
    phi0, phi1, psi0, psi1 = _hermite((z[1] - y0) / (y1 - y0))
    sns = phi0 * gs + phi1 * gn + (psi0 * gps + psi1 * gpn) * (y1 - y0)
    phi0, phi1, psi0, psi1 = _hermite((z[0] - x0) / (x1 - x0))
    sew = phi0 * gw + phi1 * ge + (psi0 * gpw + psi1 * gpe) * (x1 - x0)
    return (sns + sew) - s


@njit
def _vertex_leaves(z, split_dim, split_at, lo, hi, out):
    """Leaves whose closed cell holds ``z`` (both sides of a split through it); count."""
    stack = np.zeros(64, dtype=np.int64)
    top = 0
    nleaf = 0
    p = 0
    while True:
        if split_dim[p] < 0:
            out[nleaf] = p
            nleaf += 1
            if top == 0:
                break
            top -= 1
            p = stack[top]
        elif z[split_dim[p]] == split_at[p]:
            stack[top] = hi[p]
            top += 1
            p = lo[p]
        elif z[split_dim[p]] < split_at[p]:
            p = lo[p]
        else:
            p = hi[p]
    return nleaf


@njit
def loess_operator(xt, rw, span, degree, interpolate_surface, cell, nvmax):
    """Loess smoother matrix ``L`` (n, n) and its diagonal as dloess computes the trace.

    ``rw`` are prior weights. With ``interpolate_surface`` the fits are made at the k-d tree
    vertices and interpolated; the diagonal then adds, for each vertex, its share of
    ``L_ii`` over the points of the leaves touching it (dloess's ``ehg139``), which equals
    ``diag(L)`` except where tied points sit on the other side of a split. Direct: local fits
    at every point, the diagonal is ``diag(L)``. Returns ``(L, diag, ok, nv)``; ``ok`` is False
    when some neighbourhood had no weight.
    """
    d, n = xt.shape
    nf = min(n, int(np.floor(n * span)))
    big = np.zeros((n, n))
    diag = np.zeros(n)
    ok = True
    q = np.empty(d)
    if not interpolate_surface:
        for i in range(n):
            for j in range(d):
                q[j] = xt[j, i]
            coef, good = local_fit(q, xt, rw, nf, span, degree)
            ok = ok and good
            big[i, :] = coef[0]
            diag[i] = coef[0, i]
        return big, diag, ok, 0
    fc = int(np.floor(n * (span * cell)))
    vert, nv, split_dim, split_at, lo, hi, corner, nc, perm = build_tree(xt, fc, nvmax)
    lf = np.zeros((nv, d + 1, n))
    for v in range(nv):
        coef, good = local_fit(vert[v], xt, rw, nf, span, degree)
        ok = ok and good
        lf[v] = coef
    # interpolation weights of every point on every vertex value / gradient
    basis = np.zeros((nv, d + 1, nv * (d + 1)))
    for v in range(nv):
        for c in range(d + 1):
            basis[v, c, v * (d + 1) + c] = 1.0
    weights = np.zeros((n, nv, d + 1))
    z = np.empty(d)
    for i in range(n):
        for j in range(d):
            z[j] = xt[j, i]
        row = interpolate(z, vert, split_dim, split_at, lo, hi, corner, basis)
        weights[i] = row.reshape((nv, d + 1))
        for v in range(nv):
            for c in range(d + 1):
                if weights[i, v, c] != 0.0:
                    big[i, :] += weights[i, v, c] * lf[v, c]
    leaves = np.zeros(nc, dtype=np.int64)
    for v in range(nv):
        nleaf = _vertex_leaves(vert[v], split_dim, split_at, lo, hi, leaves)
        for t in range(nleaf):
            p = leaves[t]
            for ii in range(lo[p], hi[p] + 1):
                i = perm[ii]
                share = 0.0
                for c in range(d + 1):
                    share += weights[i, v, c] * lf[v, c, i]
                diag[i] += share
    return big, diag, ok, nv
