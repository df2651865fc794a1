"""SIGTERM handled like Ctrl-C: ``timeout`` and batch schedulers send SIGTERM, and long runs must checkpoint then.

Inside :func:`terminate_as_interrupt`, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main
thread, so every ``except KeyboardInterrupt`` that saves a checkpoint also runs on SIGTERM.  Outside the main
thread (dask workers, thread pools) the handler cannot be installed and the block runs unchanged.

An exception raised by a signal can land anywhere, also between a lock's acquire and its release inside the netCDF
writer, and the checkpoint written next would then wait for that lock forever.  :func:`signals_deferred` holds
SIGINT and SIGTERM back during such a critical section (``store.save`` writes inside one) and delivers them to the
handler in force as soon as it ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Terminated", "terminate_as_interrupt", "signals_deferred"]


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


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are recorded instead of handled; at its end the first one received is
    delivered to the handler that was in force (an exception, or the default action).  Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(received[0])
