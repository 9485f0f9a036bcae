"""numba compilation for the whole package: the decorator, its on-disk cache, template binding.

The compiled code is split by concept over the layers (family maths in ``links._jets``, the
AGQ kernels in ``integrate``, the GLM Newton and BFGS loops in ``fitting``), and a kernel of
one file calls kernels of others. numba keys a cached function on its own file only, so a
change to a callee elsewhere would leave its callers' machine code stale. Hence one cache for
all of them, in a directory named by a hash of every file in :data:`KERNEL_SOURCES`: a change
to any kernel source moves the cache to a new directory and recompiles everything
consistently. The directory is set on numba's configuration only while a kernel is decorated
(numba picks a function's cache location then), so numba code outside gllmm is unaffected.

Where: the first writable of ``$NUMBA_CACHE_DIR/gllmm-<hash>`` (when that variable is set),
``__pycache__/numba-<hash>`` beside this file (older ``numba-*`` directories there are
removed) and ``$XDG_CACHE_HOME/gllmm/numba-<hash>`` (default ``~/.cache``); with none
writable (a read-only install and home) the kernels compile uncached. Writability is tried,
not assumed: given an unwritable directory numba would fall back to its own per-file cache,
the stale one this module exists to avoid, and with no writable place at all it refuses to
decorate. Concurrent processes (pytest-xdist, Dask workers) share a directory safely: numba
writes each file to a temporary name and renames it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path

#: Every module with compiled code, relative to the package: their hash names the cache.
#: ``tests/test_jit.py`` checks that each module using :func:`njit` is listed.
KERNEL_SOURCES = (
    "_jit.py",
    "_halving.py",  # ASCENT_TOL, compiled into the line searches as a constant
    "_small_linalg.py",
    "links/_elementwise.py",
    "links/_jets.py",
    "links/_implicit_kernel.py",
    "integrate/_mode_newton.py",
    "integrate/_scalar_kernel.py",
    "integrate/_dense_kernel.py",
    "integrate/_sparse_factor.py",
    "integrate/_sparse_laplace.py",
    "fitting/_loops.py",
    "spec/_components.py",
    "tables/_string_codes.py",
    "smooth/_loess_kernels.py",
)

PACKAGE = Path(__file__).resolve().parent


def source_hash(root: Path = PACKAGE, sources: tuple[str, ...] = KERNEL_SOURCES) -> str:
    """First 16 hex digits of the SHA-256 of the kernel sources (names and contents)."""
    digest = hashlib.sha256()
    for name in sources:
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]


def _writable(place: Path) -> bool:
    """Whether ``place`` can be made and written to (numba's own test of a cache directory)."""
    try:
        place.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=place).close()
    except OSError:
        return False
    return True


def cache_dir(key: str | None = None) -> Path | None:
    """The directory numba caches gllmm's kernels in, for the sources' hash ``key`` (None:
    no writable place)."""
    key = key or source_hash()
    places = [PACKAGE / "__pycache__" / f"numba-{key}"]
    if os.environ.get("NUMBA_CACHE_DIR"):
        places.insert(0, Path(os.environ["NUMBA_CACHE_DIR"]) / f"gllmm-{key}")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    if not base.startswith("~"):  # no home directory known: skip it
        places.append(Path(base) / "gllmm" / f"numba-{key}")
    return next((place for place in places if _writable(place)), None)


def cache_is_cold(place: Path | None) -> bool:
    """Whether ``place`` holds no cached kernel yet (numba writes one ``.nbi`` index per
    function): a first run, which compiles."""
    return place is None or next(place.rglob("*.nbi"), None) is None


def _prune(place: Path | None) -> None:
    """Remove the caches of earlier sources beside ``place`` (only in our own ``__pycache__``:
    a shared ``NUMBA_CACHE_DIR`` may serve other installations)."""
    if place is None or place.parent != PACKAGE / "__pycache__":
        return
    for old in place.parent.glob("numba-*"):
        if old != place:
            shutil.rmtree(old, ignore_errors=True)


try:  # numba is a dependency, but the numpy paths stay correct without it
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    HAVE_NUMBA = False

CACHE_DIR = cache_dir()

if HAVE_NUMBA and cache_is_cold(CACHE_DIR):  # a new user's first fit: say why it takes a while
    _prune(CACHE_DIR)
    print("gllmm: compiling the numerical kernels for their first use (about a minute, "
          + ("once; later runs load them from the cache)" if CACHE_DIR else
             "in every process: no writable cache directory; set NUMBA_CACHE_DIR to one)"),
          file=sys.stderr, flush=True)


def njit(f: Callable | None = None, *, inline: bool = False) -> Callable:
    """``numba.njit(cache=True, nogil=True)`` caching in :data:`CACHE_DIR` (uncached where
    that is None); ``f`` itself where numba is missing. ``inline=True`` inlines ``f`` into
    its compiled callers (numba's ``inline="always"``), for small functions in hot loops."""
    if f is None:
        return lambda g: njit(g, inline=inline)
    if not HAVE_NUMBA:  # pragma: no cover
        return f
    options = {"nogil": True, "inline": "always" if inline else "never"}
    if CACHE_DIR is None:
        return numba.njit(**options)(f)
    config = numba.config
    saved = config.CACHE_DIR
    config.CACHE_DIR = str(CACHE_DIR)
    try:
        return numba.njit(cache=True, **options)(f)
    finally:
        config.CACHE_DIR = saved


def bind(template: Callable, name: str, **names: object) -> Callable:
    """A copy of ``template`` named ``name`` whose globals ``names`` are bound.

    A loop written once as a template calling placeholder globals (an objective, a linear
    solve) is compiled once per objective this way: numba cannot cache functions that take
    functions as arguments, but it caches each bound copy under its own name."""
    glob = dict(template.__globals__)
    glob.update(names)
    f = types.FunctionType(template.__code__, glob, name, template.__defaults__)
    f.__qualname__ = name
    f.__module__ = template.__module__
    return f
