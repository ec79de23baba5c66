"""Run async pytest tests concurrently in trio nurseries, each reported on its own."""

from __future__ import annotations

from ._async_fixtures import FixtureProtocolError
from ._trio_fixtures import trio_fixture

__version__ = "0.1.0"

__all__ = ["FixtureProtocolError", "__version__", "trio_fixture"]
