"""Fixtures for the example suite: a fake order service, one per test module."""

from __future__ import annotations

import pytest
from fake_service import OrderService


@pytest.fixture(scope="module")
def service() -> OrderService:
    return OrderService(seed=2026)
