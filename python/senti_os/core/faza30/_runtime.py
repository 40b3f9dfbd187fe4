"""asyncio glue for the Rust runtime.

The engine's loop runs on a tokio thread. When it needs a Python callback (a metric
provider, a repair action, a state provider), it hands the call to ``submit``, which runs it
on the host's event-loop thread, awaits it there if it is a coroutine, and reports the outcome
to ``done(ok, value)``. Each loop iteration's work itself runs on the host thread as a Rust
future that asyncio steps; there ``await_here`` awaits a coroutine callback as a task bounded
by ``loop.call_later``. No engine logic lives here.
"""

import asyncio
import atexit
import inspect

from ._native import _shutdown_runtime

# Before the interpreter tears down threads, keep the engine's runtime threads out of Python.
atexit.register(_shutdown_runtime)

__all__ = ["submit", "await_here", "run_inline", "settle", "resolve", "as_coroutine", "then", "gather_bounded"]


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


def await_here(loop, awaitable, timeout, done):
    """Awaits ``awaitable`` as a task of ``loop`` (called on its thread) and reports to
    ``done(ok, value)``; after ``timeout`` seconds ``done.expire()`` is called instead and the
    task is cancelled."""
    task = asyncio.ensure_future(awaitable, loop=loop)
    timer = loop.call_later(timeout, _expire, task, done)
    task.add_done_callback(lambda t: (timer.cancel(), _finish(t, done)))


def _expire(task, done):
    done.expire()
    task.cancel()


def run_inline(fn, args, kwargs):
    """Calls ``fn`` in this thread and settles an awaitable result (see ``settle``)."""
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        return settle(result, getattr(fn, "__qualname__", repr(fn)))
    return result


def settle(awaitable, what="callback"):
    """Runs an awaitable that a callback returned to synchronous engine code.

    With no event loop running in this thread it runs to completion in a fresh loop. Inside a
    running loop it cannot block, so a coroutine is stepped directly: one that finishes
    without waiting on anything (like the FAZA 28 agents' lifecycle hooks) completes here; one
    that really suspends is closed and a RuntimeError says to run the engine from the loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(awaitable))
    if inspect.iscoroutine(awaitable):
        try:
            for _ in range(10_000):
                if awaitable.send(None) is not None:
                    break
        except StopIteration as done:
            return done.value
        awaitable.close()
    raise RuntimeError(
        f"{what} returned an awaitable that waits on the event loop; called from synchronous "
        "code inside that loop it cannot be awaited. Use 'await controller.start()' or the "
        "awaitable variant of this call."
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


async def gather_bounded(items, then):
    """Awaits every ``(awaitable, timeout)`` pair together, each under ``asyncio.wait_for``,
    and returns ``then(results)``; a failed one's exception takes the place of its result."""
    results = await asyncio.gather(*(asyncio.wait_for(aw, t) for aw, t in items), return_exceptions=True)
    return then(results)
