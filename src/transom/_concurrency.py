"""Running blocking code off the event loop: one shared thread pool, context variables preserved."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_pool_size = 40


def configure_thread_pool(size: int) -> None:
    """Set the size of the pool that runs sync handlers (before the pool is first used)."""
    global _pool_size
    _pool_size = size


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=_pool_size, thread_name_prefix="transom")
    return _executor


async def run_sync(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` in the thread pool and await its result, with the caller's contextvars."""
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_get_executor(), call)


_STOP = object()


def _next_or_stop(iterator: Iterator[T]) -> Any:
    try:
        return next(iterator)
    except StopIteration:
        return _STOP


async def iterate_in_threadpool(iterator: Iterator[T]) -> AsyncIterator[T]:
    """Drive a blocking iterator from async code, one item per thread-pool hop."""
    while True:
        item = await run_sync(_next_or_stop, iterator)
        if item is _STOP:
            return
        yield item
