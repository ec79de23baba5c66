"""A small fake of a slow back-end, served over TCP on the loopback interface.

Clients send one command per line: ``SUBMIT <event-id>`` queues an event,
which the service finishes processing after a random delay;
``STATUS <event-id>`` answers ``pending``, ``processed`` or ``unknown``.
"""

from __future__ import annotations

import random
from functools import partial

import trio


class EventService:
    """The service's state; ``serve`` runs it until cancelled."""

    def __init__(self, seed: int, min_delay: float = 0.1, max_delay: float = 1.0) -> None:
        self._random = random.Random(seed)
        self._delays = (min_delay, max_delay)
        self._status: dict[str, str] = {}
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            listeners = await nursery.start(
                partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1")
            )
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started()

    async def _handle(self, stream: trio.SocketStream) -> None:
        buffer = b""
        async for data in stream:
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                await stream.send_all(self._answer(line.decode()).encode() + b"\n")

    def _answer(self, line: str) -> str:
        command, _, event_id = line.partition(" ")
        if command == "SUBMIT":
            self._status[event_id] = "pending"
            self._nursery.start_soon(self._process, event_id, self._random.uniform(*self._delays))
            return "accepted"
        if command == "STATUS":
            return self._status.get(event_id, "unknown")
        return "error: unknown command"

    async def _process(self, event_id: str, delay: float) -> None:
        await trio.sleep(delay)
        self._status[event_id] = "processed"


class Client:
    """One connection to the service."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def request(self, line: str) -> str:
        await self._stream.send_all(line.encode() + b"\n")
        while b"\n" not in self._buffer:
            data = await self._stream.receive_some()
            if not data:
                raise ConnectionError("the service closed the connection")
            self._buffer += data
        answer, self._buffer = self._buffer.split(b"\n", 1)
        return answer.decode()
