"""Worker processes die with the study that started them.

``gllmm simulate --workers N`` runs a forkserver (a child of the study's process) that forks
the workers. Killed with SIGKILL or SIGTERM, the study cannot clean up, and those processes
used to live on (400 MB, holding the caller's pipes open). Each of them therefore arranges to
die with its parent: on Linux through ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (the kernel kills
it when its parent exits), elsewhere, and as a second line, through a daemon thread that exits
when the parent process id changes. The multiprocessing resource tracker exits by itself once
every holder of its pipe (the study, the forkserver, the workers) is gone.

Importing this module in the forkserver (it is in the forkserver's preload list) arms it there;
the study's own process is recognised by ``GLLMM_STUDY_PID`` and left alone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

ENV = "GLLMM_STUDY_PID"
PR_SET_PDEATHSIG = 1


def die_with_parent(poll: float = 0.5) -> None:
    """Exit this process as soon as its parent exits (kernel signal and watchdog thread)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc symbol: the watchdog still works
            pass
    if parent == 1:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="gllmm-lifeline", daemon=True).start()


def _arm_in_forkserver() -> None:
    study = os.environ.get(ENV)
    in_forkserver = "multiprocessing.forkserver" in sys.modules and sys.argv[:1] == ["-c"]
    if in_forkserver and study and study.isdigit() and os.getppid() == int(study):
        die_with_parent()


_arm_in_forkserver()
