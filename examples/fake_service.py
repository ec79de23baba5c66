"""A tiny fake of a slow back-end: orders are processed after a random delay."""

from __future__ import annotations

import random

import trio


class OrderService:
    """Accepts orders and reports each as processed once its delay has passed."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._ready_at: dict[str, float] = {}

    def submit(self, order_id: str) -> None:
        self._ready_at[order_id] = trio.current_time() + self._random.uniform(0.2, 1.0)

    def status(self, order_id: str) -> str:
        if order_id not in self._ready_at:
            return "unknown"
        return "processed" if trio.current_time() >= self._ready_at[order_id] else "pending"
