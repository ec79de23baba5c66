"""Fixtures for the example suite: the service, started once, and a client per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from event_service import Client, EventService


@pytest.fixture(scope="session")
async def service() -> AsyncIterator[EventService]:
    """The fake service, listening on a free loopback port for the group's run."""
    service = EventService(seed=2026)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.serve)
        yield service
        nursery.cancel_scope.cancel()


@pytest.fixture
async def client(service: EventService) -> AsyncIterator[Client]:
    """A connection of this test's own."""
    stream = await trio.open_tcp_stream("127.0.0.1", service.port)
    async with stream:
        yield Client(stream)
