"""Send an event, then poll until the service shows it processed.

Each test waits between 0.1 and 1 second for the service. Run one after
another, these 41 tests take about 22 seconds; as one trio_group they take
about as long as the slowest one.
"""

from __future__ import annotations

import pytest
import trio
from event_service import Client

pytestmark = pytest.mark.trio_group("events", timeout=5)


async def wait_for_status(client: Client, event_id: str, wanted: str) -> None:
    while (status := await client.request(f"STATUS {event_id}")) != wanted:
        assert status in ("pending", wanted), f"unexpected status {status!r}"
        await trio.sleep(0.05)


@pytest.mark.parametrize("n", range(40))
async def test_event_is_processed(client: Client, n: int) -> None:
    event_id = f"event-{n}"
    assert await client.request(f"SUBMIT {event_id}") == "accepted"
    assert await client.request(f"STATUS {event_id}") == "pending"
    await wait_for_status(client, event_id, "processed")


async def test_unknown_event(client: Client) -> None:
    assert await client.request("STATUS never-sent") == "unknown"
