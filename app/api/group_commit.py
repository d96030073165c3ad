"""Group commit of single submissions: requests that arrive together share one script call.

Under load, many clients' ``POST /v1/jobs`` are ready in the same turn of the event loop. Each
one's request joins a waiting list; the list goes to Redis as ONE ``submit.lua`` call as soon as
a call slot is free, and each request still gets its own verdict (limits, idempotency) back.
An idle server sends a lone request at the next loop turn: no timer, no added latency.
"""

from __future__ import annotations

import asyncio

from app.core.errors import TideError
from app.core.queue import Queue
from app.core.tenants import Admitted, SubmitRequest

MAX_REQUESTS = 256
"""Requests in one script call: enough to amortise the round trip, short enough for Redis."""
IN_FLIGHT = 2
"""Calls at once: one being answered while the next fills up keeps Redis and the API busy."""

Waiting = tuple[SubmitRequest, "asyncio.Future[Admitted]"]


class GroupCommit:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._waiting: list[Waiting] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit(self, request: SubmitRequest) -> Admitted:
        """As :meth:`Queue.admit`, sharing the script call with concurrent requests."""
        future: asyncio.Future[Admitted] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if self._waiting and not self._scheduled and self._in_flight < IN_FLIGHT:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        batch = self._waiting[:MAX_REQUESTS]
        del self._waiting[:MAX_REQUESTS]
        batch = [(request, future) for request, future in batch if not future.done()]
        if not batch:
            return self._schedule()
        self._in_flight += 1
        task = asyncio.create_task(self._call(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    async def _call(self, batch: list[Waiting]) -> None:
        try:
            results = await self.queue.admit_many([request for request, _ in batch])
        except Exception as exc:  # the call failed for everyone in it (Redis down, ...)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, TideError):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._schedule()
