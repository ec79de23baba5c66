"""Run async pytest tests concurrently in trio nurseries, each reported on its own.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ._trio_fixtures import trio_fixture

if TYPE_CHECKING:
    from ._fixtures import FixtureProtocolError

__version__ = "0.1.0"

__all__ = [
    "BlockedLoopWarning",
    "FixtureProtocolError",
    "SharedStateWarning",
    "__version__",
    "trio_fixture",
]


# The warning classes live here, the package pytest imports for the plugin
# in every session, rather than with the code that raises them: a warning
# filter (``-W``, ``filterwarnings``) names them, and pytest keeps the class
# each filter names for the whole process.
class BlockedLoopWarning(pytest.PytestWarning):
    """A trio_group test kept the event loop busy, so no other test of its group could run."""


class SharedStateWarning(pytest.PytestWarning):
    """A trio_group test changed process-wide state while other tests of its group ran."""


def __getattr__(name: str) -> object:
    # The fixture machinery is imported when a session has async fixtures,
    # or here, when this name is first used.
    if name == "FixtureProtocolError":
        from ._fixtures import FixtureProtocolError

        return FixtureProtocolError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "FixtureProtocolError"})
