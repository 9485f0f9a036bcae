"""``python -m gllmm.simulate``: the ``gllmm simulate`` command."""

from ._cli import main_simulate

if __name__ == "__main__":
    raise SystemExit(main_simulate())
