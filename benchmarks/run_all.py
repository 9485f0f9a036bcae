"""Run every benchmark script in benchmarks/ that exists, one after the other.

    .venv/bin/python benchmarks/run_all.py [--quick] [--no-r] [--no-python-peers]

Scripts, in this order: engine.py, smoothing.py, simulation.py, crossed_scale.py (missing ones
are skipped).
Each runs in its own process with the interpreter running this file. The options above are
passed on to a script only if its ``--help`` lists them, so a script without them runs with its
defaults. With ``--quick``, a script whose --help has no ``--quick`` gets the smaller-run
options of QUICK_FALLBACK instead, each only if its --help lists it (the full simulation study
otherwise fits 18000 tables). Exit status: 0 if every script that exists succeeded, 1
otherwise.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("engine.py", "smoothing.py", "simulation.py", "crossed_scale.py", "auto_nodes.py",
           "implicit.py")
# --quick for scripts without a --quick of their own: option -> values
QUICK_FALLBACK = {
    "smoothing.py": {"--sizes": ["10", "30", "100"]},
    "simulation.py": {"--replicates": ["20"]},
}


def _help(script: Path) -> str:
    try:
        out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                             text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return ""
    return out.stdout + out.stderr if out.returncode == 0 else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to scripts that take it")
    ap.add_argument("--no-r", action="store_true", help="pass --no-r to scripts that take it")
    ap.add_argument("--no-python-peers", action="store_true",
                    help="pass --no-python-peers to scripts that take it")
    args = ap.parse_args(argv)
    wanted = [f for f, on in (("--quick", args.quick), ("--no-r", args.no_r),
                              ("--no-python-peers", args.no_python_peers)) if on]

    failed, ran = [], []
    for name in SCRIPTS:
        script = HERE / name
        if not script.exists():
            print(f"== {name}: not present, skipped", flush=True)
            continue
        text = _help(script) if wanted else ""
        flags = [f for f in wanted if f in text]
        dropped = sorted(set(wanted) - set(flags))
        if "--quick" in dropped:
            for opt, values in QUICK_FALLBACK.get(name, {}).items():
                if opt in text:
                    flags += [opt, *values]
        print(f"== {name} {' '.join(flags)}".rstrip()
              + (f"   (not supported, not passed: {' '.join(dropped)})" if dropped else ""),
              flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, str(script), *flags]).returncode
        print(f"== {name}: exit {rc}, {time.perf_counter() - t0:.1f} s\n", flush=True)
        ran.append(name)
        if rc != 0:
            failed.append(name)
    print(f"== ran: {', '.join(ran) or 'nothing'}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
