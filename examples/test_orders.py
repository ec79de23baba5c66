"""Submit an order, then poll until the service shows it processed.

Run one after another, these 30 tests take about 18 seconds; as one
trio_group they take about as long as the slowest one, under a second.
"""

from __future__ import annotations

import pytest
import trio
from fake_service import OrderService


async def wait_for_status(service: OrderService, order_id: str, wanted: str) -> None:
    while service.status(order_id) != wanted:
        await trio.sleep(0.05)


@pytest.mark.trio_group("orders", timeout=5)
@pytest.mark.parametrize("n", range(30))
async def test_order_is_processed(service: OrderService, n: int) -> None:
    order_id = f"order-{n}"
    service.submit(order_id)
    assert service.status(order_id) == "pending"
    await wait_for_status(service, order_id, "processed")
