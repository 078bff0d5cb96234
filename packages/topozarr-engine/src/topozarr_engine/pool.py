"""Running region tasks on a thread pool: submit, wait, stop everything on the first error."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, ThreadPoolExecutor, wait

from topozarr_engine.resources import default_max_workers

__all__ = ["cancel_all", "first_error", "pool_size", "run_tasks", "wait_all"]


def cancel_all(futures: Iterable[Future[None]]) -> None:
    """Cancel every future that has not started yet."""
    for f in futures:
        f.cancel()


def first_error(futures: Iterable[Future[None]]) -> BaseException | None:
    """The exception of the first failed future in submission order, or ``None``."""
    for f in futures:
        if f.done() and not f.cancelled():
            exc = f.exception()
            if exc is not None:
                return exc
    return None


def wait_all(futures: list[Future[None]]) -> None:
    """Wait for ``futures``; on the first failure cancel the rest and raise that failure.

    Tasks already running when the failure is seen are allowed to finish (threads cannot be
    interrupted safely), but nothing new starts.
    """
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    failed = [f for f in futures if f in done and not f.cancelled() and f.exception() is not None]
    if failed:
        cancel_all(pending)
        wait(pending)
        exc = failed[0].exception()
        assert exc is not None
        raise exc


def _stop_after_first_error(tasks: Iterable[Callable[[], None]]) -> list[Callable[[], None]]:
    """Tasks that do nothing once one of them has failed.

    Cancelling pending futures after a failure is not enough on its own: a worker that just
    finished the failed task picks up the next one before the waiting thread can cancel it.
    """
    failed = threading.Event()

    def guarded(task: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if failed.is_set():
                return
            try:
                task()
            except BaseException:
                failed.set()
                raise

        return run

    return [guarded(task) for task in tasks]


def pool_size(max_workers: int | None, region_bytes: int | None) -> int:
    """Threads of a writer's own pool: ``max_workers``, or the default from the CPUs and the
    memory one region (``region_bytes``) holds."""
    return max_workers if max_workers is not None else default_max_workers(region_bytes)


def run_tasks(
    tasks: Iterable[Callable[[], None]],
    *,
    executor: Executor | None = None,
    max_workers: int | None = None,
    region_bytes: int | None = None,
) -> list[Future[None]]:
    """Run ``tasks`` on ``executor`` (return at once) or on an own pool (wait, raise).

    Parameters
    ----------
    tasks
        Zero-argument callables, submitted in order.
    executor
        A shared pool. The futures are returned without waiting; the caller owns errors.
    max_workers
        Size of the own pool when ``executor`` is ``None`` (default: from CPUs and memory).
    region_bytes
        Size of one region, used for the default worker count.
    """
    tasks = _stop_after_first_error(tasks)
    if executor is not None:
        return [executor.submit(task) for task in tasks]
    workers = pool_size(max_workers, region_bytes)
    if workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {workers}")
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="topozarr") as pool:
        futures = [pool.submit(task) for task in tasks]
        try:
            wait_all(futures)
        except BaseException:
            cancel_all(futures)
            raise
    return futures
