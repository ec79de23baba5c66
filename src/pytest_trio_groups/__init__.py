"""Run async pytest tests concurrently in trio nurseries, each reported on its own."""

from __future__ import annotations

from ._async_fixtures import FixtureProtocolError

__version__ = "0.1.0"

__all__ = ["FixtureProtocolError", "__version__"]
