"""Child processes that end with their parent, even when the parent is killed with SIGKILL.

``tide dev`` starts workers and a ``redis-server``; closing its terminal or ``kill -9`` must not
leave them running. On Linux the kernel delivers a signal to the child when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere there is no such promise and this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child receive ``sig`` when this process exits; ``None``
    where the platform cannot.

    SIGTERM by default: a worker then drains and releases its leases, Redis shuts down cleanly.
    Linux ties the signal to the *thread* that forks, so spawn from a thread that lives as long
    as the process (the main thread, where the event loop runs).
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec
