"""asyncio glue for the Rust runtime.

The engine's loop runs on a tokio thread. When it needs a Python callback (a metric
provider, a repair action, a state provider), it hands the call to ``submit``, which runs it
on the host's event-loop thread, awaits it there if it is a coroutine, and reports the outcome
to ``done(ok, value)``. No engine logic lives here.
"""

import asyncio
import atexit
import inspect

from ._native import _shutdown_runtime

# Before the interpreter tears down threads, keep the engine's runtime threads out of Python.
atexit.register(_shutdown_runtime)

__all__ = ["submit", "run_inline", "resolve", "as_coroutine", "then"]


class _Handle:
    """Lets the engine cancel a call that outlived its timeout."""

    __slots__ = ("loop", "task", "cancelled")

    def __init__(self, loop):
        self.loop = loop
        self.task = None
        self.cancelled = False

    def cancel(self):
        self.loop.call_soon_threadsafe(self._cancel)

    def _cancel(self):
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()


def submit(loop, fn, args, kwargs, done):
    """Schedules ``fn(*args, **kwargs)`` on ``loop`` from any thread."""
    handle = _Handle(loop)
    loop.call_soon_threadsafe(_start, fn, args, kwargs, done, handle)
    return handle


def _start(fn, args, kwargs, done, handle):
    if handle.cancelled:
        done(False, asyncio.CancelledError())
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # reported to the engine, which decides
        done(False, exc)
        return
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        handle.task = task
        task.add_done_callback(lambda t: _finish(t, done))
    else:
        done(True, result)


def _finish(task, done):
    if task.cancelled():
        done(False, asyncio.CancelledError())
        return
    exc = task.exception()
    if exc is not None:
        done(False, exc)
    else:
        done(True, task.result())


def run_inline(fn, args, kwargs):
    """Calls ``fn`` in this thread. A coroutine result is run to completion when this thread
    has no running event loop; with one running it cannot be awaited from synchronous code, so
    it is closed and a RuntimeError explains what to do instead."""
    result = fn(*args, **kwargs)
    if not inspect.isawaitable(result):
        return result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(result))
    if inspect.iscoroutine(result):
        result.close()
    raise RuntimeError(
        f"{getattr(fn, '__qualname__', fn)!r} is a coroutine function; called from synchronous "
        "code inside a running event loop it cannot be awaited. Start the engine with "
        "'await controller.start()' or use the awaitable variant of this call."
    )


async def _await(awaitable):
    return await awaitable


def resolve(future, ok, value):
    """Completes an engine awaitable on its loop (scheduled with call_soon_threadsafe)."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


async def as_coroutine(fn, *args):
    """Wraps an engine method that needs the running loop into a real coroutine, so that
    ``asyncio.run(engine.start())`` works: the method runs only once the loop is running."""
    return await fn(*args)


async def then(first, after):
    """Awaits ``first()`` and returns ``after(result)``."""
    return after(await first())
