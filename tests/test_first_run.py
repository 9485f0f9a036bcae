"""A first run on a cold numba cache says that it is compiling; a warm one says nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _import_kernels(cache: Path) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", "import gllmm._kernels"], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stderr


def test_cold_cache_prints_one_line(tmp_path):
    err = _import_kernels(tmp_path)
    assert err.count("compiling the numerical kernels") == 1


def test_warm_cache_is_silent(tmp_path):
    # numba's index file of a kernel of _kernels.py (any one means the cache was written)
    (tmp_path / "gllmm_x").mkdir()
    (tmp_path / "gllmm_x" / "_kernels.scalar_agq-1.py311.nbi").write_bytes(b"")
    assert "compiling" not in _import_kernels(tmp_path)
