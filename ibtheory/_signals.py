"""SIGTERM handled like Ctrl-C: ``timeout`` and batch schedulers send SIGTERM, and long runs must checkpoint then.

Inside :func:`terminate_as_interrupt`, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main
thread, so every ``except KeyboardInterrupt`` that saves a checkpoint also runs on SIGTERM.  Outside the main
thread (dask workers, thread pools) the handler cannot be installed and the block runs unchanged.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Terminated", "terminate_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM inside :func:`terminate_as_interrupt` (exit code 143 = 128 + SIGTERM by convention)."""

    exit_code = 128 + signal.SIGTERM


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"terminated by signal {signum}")


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated`; the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
