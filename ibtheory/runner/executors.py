"""Executors: run a function over task items in-process, in a local process pool, or on a dask.distributed cluster.

All three share one interface: ``map_unordered(fn, items)`` yields ``(item, result, error)`` as tasks finish
(exactly one of ``result`` / ``error`` is not None, so one failed task never hides the others),
``run_everywhere(fn, *args)`` runs a check once per worker (dict worker -> return value), and ``close()``.
Executors are context managers.

- :class:`InProcess` runs tasks one after another in this process (no server, easiest to debug).
- :class:`ProcessPool` uses ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method (safe with
  torch); a worker that dies breaks the pool, and the tasks that had not finished are reported as failed.
- :class:`Dask` connects to a running scheduler (``Client("tcp://host:8786")``) or starts a ``LocalCluster`` of
  ``workers`` single-threaded worker processes.  When a worker dies, the scheduler re-runs its tasks elsewhere
  (up to ``distributed.scheduler.allowed-failures`` times, default 3), after which the task fails with
  ``KilledWorker`` and is reported like any other failure.  ``retries`` re-runs tasks that raised.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .._validate import show

__all__ = ["Executor", "InProcess", "ProcessPool", "Dask", "make_executor"]

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _limit_threads(n: int) -> None:
    """Pool initializer: one BLAS/torch thread per worker process unless the user set otherwise."""
    for var in _THREAD_VARS:
        os.environ.setdefault(var, str(n))


def _whoami() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Executor:
    """Common interface; see the module docstring."""

    workers: int = 1
    description: str = "executor"

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any, Any]]:
        raise NotImplementedError

    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        """Run ``fn(*args)`` once where tasks will run; default: in this process (same machine as the pool)."""
        return {_whoami(): fn(*args)}

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcess(Executor):
    """Run every task here, sequentially."""

    description = "in-process"

    def map_unordered(self, fn, items):
        for item in items:
            try:
                result = fn(item)
            except Exception as exc:  # reported per task, never lost
                yield item, None, exc
            else:
                yield item, result, None


class ProcessPool(Executor):
    """A local pool of ``workers`` spawned processes (``concurrent.futures``)."""

    def __init__(self, workers: int = 2, threads_per_worker: int = 1):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {show(workers)}")
        self.workers = workers
        self.description = f"process pool, {workers} workers"
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_limit_threads, initargs=(threads_per_worker,))

    def map_unordered(self, fn, items):
        futures = {self._pool.submit(fn, item): item for item in items}
        for fut in cf.as_completed(futures):
            exc = fut.exception()
            yield futures.pop(fut), (None if exc else fut.result()), exc

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class Dask(Executor):
    """A dask.distributed cluster: an existing scheduler (``address``) or a new ``LocalCluster`` of ``workers``."""

    def __init__(self, address: str | None = None, workers: int | None = None, threads_per_worker: int = 1,
                 retries: int = 0, **cluster_kwargs: Any):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ImportError("the dask executor needs dask.distributed: pip install 'ibtheory[dask]'") from None
        if address is not None and workers is not None:
            raise ValueError("give either address (an existing scheduler) or workers (a LocalCluster), not both")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {show(workers)}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {show(retries)}")
        self.retries = retries
        self.cluster = None
        if address is None:
            options = {"dashboard_address": ":0", "silence_logs": logging.ERROR, **cluster_kwargs}
            self.cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=threads_per_worker,
                                        processes=True, **options)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(address, timeout=cluster_kwargs.get("timeout", 30))
            except OSError as exc:
                raise ValueError(f"scheduler {address!r} cannot be reached: {exc}") from None
        self.workers = len(self.client.scheduler_info(n_workers=-1)["workers"]) if address else (workers or 2)
        where = address or "LocalCluster"
        link = getattr(self.client, "dashboard_link", None)
        self.description = f"dask ({where}), {self.workers} workers" + (f", dashboard {link}" if link else "")

    def map_unordered(self, fn, items):
        from distributed import as_completed

        futures = {}
        for item in items:
            key = getattr(item, "dask_key", None)
            fut = self.client.submit(fn, item, pure=False, retries=self.retries,
                                     **({"key": key} if key else {}))
            futures[fut] = item
        for fut in as_completed(list(futures)):
            item = futures.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # includes KilledWorker after too many worker deaths
                yield item, None, exc
            else:
                yield item, result, None
            fut.release()

    def run_everywhere(self, fn, *args):
        return dict(self.client.run(fn, *args))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(scheduler: str | None = None, workers: int | None = None, processes: int | None = None,
                  retries: int = 0) -> Executor:
    """Pick an executor: ``scheduler`` (dask address), ``workers`` (dask LocalCluster), ``processes`` (local pool),
    none of them: in-process.  At most one may be given."""
    given = [n for n, v in (("scheduler", scheduler), ("workers", workers), ("processes", processes)) if v]
    if len(given) > 1:
        raise ValueError(f"give at most one of scheduler, workers, processes; got {given}")
    if scheduler:
        return Dask(address=scheduler, retries=retries)
    if workers:
        return Dask(workers=workers, retries=retries)
    if processes:
        return ProcessPool(processes)
    return InProcess()
