"""The acceptance tolerance shared by every step-halving line search, Python and compiled.

A module of its own, below links, so that the compiled searches (``links._implicit_kernel``,
``integrate._mode_newton``) and the Python ones (``integrate._newton``) read one constant, and
the kernel cache (``_jit.KERNEL_SOURCES``, which lists this file: numba compiles the value in)
does not hash the pure-Python Newton loop.
"""

#: A trial is accepted unless its objective falls below the current one (plus ``ARMIJO`` times
#: the predicted rise, when a slope is given) by more than this times ``1 + |objective|``: a
#: decrease at rounding level is no reason to halve.
ASCENT_TOL = 1e-12
