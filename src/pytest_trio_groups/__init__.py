"""Run async pytest tests concurrently in trio nurseries, each reported on its own."""

from __future__ import annotations

from ._fixtures import FixtureProtocolError
from ._notices import BlockedLoopWarning, SharedStateWarning
from ._trio_fixtures import trio_fixture

__version__ = "0.1.0"

__all__ = [
    "BlockedLoopWarning",
    "FixtureProtocolError",
    "SharedStateWarning",
    "__version__",
    "trio_fixture",
]
