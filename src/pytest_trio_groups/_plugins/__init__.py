"""Support for other pytest plugins: one module per plugin, imported only when it is active.

(Imported as ``from .x import y``: see ``plugin.py`` for why.)

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import pytest


def active_pytest_trio(config: pytest.Config) -> object | None:
    """pytest-trio's plugin module, if it is registered (not blocked with ``-p no:trio``)."""
    # ("trio" is its entry point's name.)
    if not config.pluginmanager.has_plugin("trio"):
        return None
    from .pytest_trio import active_plugin

    return active_plugin(config)


def _xdist_distributes(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker, or a controller that starts workers."""
    if config.getoption("collectonly", False):
        return False
    if hasattr(config, "workerinput"):
        return True
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def activate(config: pytest.Config) -> None:
    """Load, at start-up, the support a session needs before it collects."""
    # pytest-xdist is active whenever it is installed: its support is needed
    # only where tests are distributed.
    if config.pluginmanager.has_plugin("xdist") and _xdist_distributes(config):
        from .xdist import register

        register(config)


def activate_for_members(config: pytest.Config) -> None:
    """Load the support that acts on group members, once collection found some.

    Before the first test runs: pytest-timeout arms its timer in a wrapper
    around each test's protocol, which must already leave members alone.
    """
    plugins = config.pluginmanager
    if plugins.has_plugin("timeout"):
        from .timeout import activate as activate_timeout

        activate_timeout(config)
    # pytest's faulthandler plugin is always active; its timer is set only
    # with faulthandler_timeout.
    if plugins.has_plugin("faulthandler") and config.getini("faulthandler_timeout"):
        from .faulthandler import activate as activate_faulthandler

        activate_faulthandler(config)
    if plugins.has_plugin("rerunfailures"):
        from .rerunfailures import activate as activate_rerunfailures

        activate_rerunfailures(config)
