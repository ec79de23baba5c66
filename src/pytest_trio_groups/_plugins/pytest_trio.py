"""Beside pytest-trio: group members are run by this plugin alone, every other test by pytest-trio.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .._pytest_compat import FixtureDef

#: pytest-trio's plugin name (its ``pytest11`` entry point).
PLUGIN_NAME = "trio"
_MODULE = "pytest_trio.plugin"


def active_plugin(config: pytest.Config) -> object | None:
    """pytest-trio's plugin module, if it is registered (not blocked with ``-p no:trio``)."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin if getattr(plugin, "__name__", None) == _MODULE else None


class PytestTrio:
    """How group members are kept away from pytest-trio's hooks and fixtures.

    pytest-trio runs a trio test by replacing ``item.obj`` with a synchronous
    wrapper that calls ``trio.run`` (in ``pytest_runtest_call``), and turns
    trio fixtures into placeholders that only its wrapper can evaluate (in
    ``pytest_fixture_setup``). A member already runs inside its group's
    ``trio.run``, so for members: its call hook is not called, its trio
    fixtures are evaluated by pytest's own code, and its ``nursery`` and
    clock fixtures are replaced by this plugin's.
    """

    def __init__(self, plugin: object, replacements: dict[str, Callable[..., Any]]) -> None:
        self.plugin = plugin
        self._replacements = replacements

    def take(self, item: pytest.Item) -> None:
        """Leave ``item`` to pytest-trio: make sure it is a trio test."""
        if item.get_closest_marker("trio") is None:
            item.add_marker(pytest.mark.trio)

    def replacement(self, fixturedef: FixtureDef[Any]) -> Callable[..., Any] | None:
        """This plugin's function for one of pytest-trio's fixtures, when a member uses it."""
        if getattr(fixturedef.func, "__module__", None) != _MODULE:
            return None
        return self._replacements.get(fixturedef.argname)
