"""Process-wide hooks for every sink: interpreter exit, ``os.fork()``, multiprocessing.

Each hook acts on the sinks' cores (duck-typed: ``begin_stop``,
``finish_stop``, ``after_fork_in_child``, ``abandoned``, ``exit_timeout``),
held weakly: a core lives as long as its sink or its worker threads.
"""

from __future__ import annotations

import atexit
import os
import time
import weakref
from typing import Any

CORES: weakref.WeakSet[Any] = weakref.WeakSet()
PARKED: list[Any] = []  # a forked child's copies of the parent's exporters: never closed
_installed = False


def _immortal(obj: object) -> None:
    """Keep ``obj`` (and what it holds) alive until the process ends, past interpreter exit.

    A child that exits normally frees its module globals. Freeing a copy of the
    parent's gRPC channel there shuts down the connection the parent shares
    (the parent's export in flight fails) and can crash the child.
    """
    try:
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    except (ImportError, AttributeError):  # pragma: no cover - no CPython C API
        pass


def _stop_all() -> None:
    """Stop every sink at once: exit takes the largest ``exit_timeout``, not their sum."""
    cores = [core for core in list(CORES) if not core.abandoned]
    if not cores:
        return
    deadline = time.monotonic() + max(core.exit_timeout for core in cores)
    for core in cores:
        core.begin_stop(deadline)
    for core in cores:
        core.finish_stop(deadline)


def _after_fork_in_child() -> None:
    for core in list(CORES):
        core.after_fork_in_child()


def _in_multiprocessing_child(_: object) -> None:
    import multiprocessing.util

    # Runs before the child's os._exit (util._exit_function), where atexit does not.
    multiprocessing.util.Finalize(None, _stop_all, exitpriority=100)


class _Owner:
    """Something weak-referenceable for multiprocessing's after-fork registry."""


_OWNER = _Owner()


def install() -> None:
    """Register the exit, fork and multiprocessing hooks, once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    import multiprocessing.util

    _immortal(PARKED)

    atexit.register(_stop_all)
    multiprocessing.util.register_after_fork(_OWNER, _in_multiprocessing_child)
    if hasattr(os, "register_at_fork"):  # POSIX only; nothing runs before the fork
        os.register_at_fork(after_in_child=_after_fork_in_child)
