"""The numba cache of the compiled kernels: keyed on a hash of every kernel source, so a change
in any kernel file recompiles all of them (numba alone keys a function on its own file); a
first run on a cold cache says that it is compiling, a warm one says nothing."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gllmm import _jit

SRC = Path(__file__).resolve().parents[1] / "src"


def _run(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, check=True)


def test_cold_cache_prints_one_line(tmp_path):
    err = _run("import gllmm._jit", tmp_path).stderr
    assert err.count("compiling the numerical kernels") == 1


def test_warm_cache_is_silent(tmp_path):
    # any numba index file in the cache directory of these sources means it was written
    place = tmp_path / f"gllmm-{_jit.source_hash()}" / "links_0"
    place.mkdir(parents=True)
    (place / "_jets.glm_jets-1.py311.nbi").write_bytes(b"")
    assert "compiling" not in _run("import gllmm._jit", tmp_path).stderr


def test_a_fresh_import_caches_in_the_directory_of_the_sources_hash(tmp_path):
    code = ("from gllmm._jit import CACHE_DIR; from gllmm.links._jets import glm_jets; "
            "glm_jets(0, 1.0, 0.0, 0.5, 2); print(CACHE_DIR)")
    out = _run(code, tmp_path).stdout.strip()
    assert Path(out) == tmp_path / f"gllmm-{_jit.source_hash()}"
    assert [p.name.split("-")[0] for p in Path(out).rglob("*.nbi")] == ["_jets.glm_jets"]


def test_any_kernel_source_change_moves_the_cache(tmp_path):
    for name in _jit.KERNEL_SOURCES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_jit.PACKAGE / name, tmp_path / name)
    key = _jit.source_hash(tmp_path)
    assert key == _jit.source_hash()
    seen = {key}
    for name in _jit.KERNEL_SOURCES:
        with open(tmp_path / name, "a") as f:
            f.write("# changed\n")
        seen.add(_jit.source_hash(tmp_path))
    assert len(seen) == len(_jit.KERNEL_SOURCES) + 1
    assert _jit.cache_dir(key).name.endswith(key)


def test_every_compiled_function_is_hashed():
    # the source file of every numba function of the package (module-level dispatchers of
    # the modules that compile anything) is among the hashed sources
    from numba.core.registry import CPUDispatcher

    sources = set()
    for path in _jit.PACKAGE.rglob("*.py"):
        if "njit" not in path.read_text():
            continue
        parts = path.relative_to(_jit.PACKAGE.parent).with_suffix("").parts
        module = importlib.import_module(".".join(parts))
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher):
                file = Path(inspect.getfile(obj.py_func)).resolve()
                sources.add(file.relative_to(_jit.PACKAGE).as_posix())
    assert {"links/_elementwise.py", "integrate/_mode_newton.py"} <= sources
    assert sources <= set(_jit.KERNEL_SOURCES), sources - set(_jit.KERNEL_SOURCES)


def test_every_constant_a_kernel_imports_is_hashed():
    # numba compiles imported module-level numbers into the machine code: the module that
    # defines one must be hashed too, or a change to it would leave the cached kernels stale
    stale = []
    for name in _jit.KERNEL_SOURCES:
        parts = Path(name).with_suffix("").parts
        package = ".".join(("gllmm",) + parts[:-1])
        for node in ast.walk(ast.parse((_jit.PACKAGE / name).read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            target = importlib.util.resolve_name("." * node.level + (node.module or ""),
                                                 package)
            module = importlib.import_module(target)
            file = Path(inspect.getfile(module)).resolve().relative_to(_jit.PACKAGE)
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if isinstance(value, (int, float)) and file.as_posix() not in \
                        _jit.KERNEL_SOURCES:
                    stale.append(f"{name}: {alias.name} from {file.as_posix()}")
    assert not stale, stale
    assert "integrate/_newton.py" not in _jit.KERNEL_SOURCES  # pure Python: no recompiles


def test_an_unwritable_place_falls_through_to_the_next(tmp_path, monkeypatch):
    # numba, given an unwritable directory, would silently use its per-file (stale) cache
    blocker = tmp_path / "a-file"  # no directory can be made under a file, even by root
    blocker.write_text("")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocker))
    monkeypatch.setattr(_jit, "PACKAGE", blocker)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _jit.cache_dir("k") == tmp_path / "xdg" / "gllmm" / "numba-k"
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert _jit.cache_dir("k") is None


def test_without_a_writable_cache_the_kernels_compile_uncached(monkeypatch):
    # numba refuses cache=True with no writable locator: importing gllmm would fail
    from numba.core.caching import NullCache

    def twice(x):
        return 2.0 * x

    monkeypatch.setattr(_jit, "CACHE_DIR", None)
    compiled = _jit.njit(twice)
    assert compiled(1.5) == 3.0
    assert isinstance(compiled._cache, NullCache)
