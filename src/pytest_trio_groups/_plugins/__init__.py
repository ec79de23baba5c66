"""Support for other pytest plugins: one module per plugin, imported only when it is active."""

from __future__ import annotations

import pytest


def active_pytest_trio(config: pytest.Config) -> object | None:
    """pytest-trio's plugin module, if it is registered (not blocked with ``-p no:trio``)."""
    # ("trio" is its entry point's name.)
    if not config.pluginmanager.has_plugin("trio"):
        return None
    from . import pytest_trio

    return pytest_trio.active_plugin(config)


def _xdist_distributes(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker, or a controller that starts workers."""
    if config.getoption("collectonly", False):
        return False
    if hasattr(config, "workerinput"):
        return True
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def activate(config: pytest.Config) -> None:
    """Load the support for each plugin active in this session."""
    plugins = config.pluginmanager
    # pytest-xdist is active whenever it is installed: its support is needed
    # only where tests are distributed.
    if plugins.has_plugin("xdist") and _xdist_distributes(config):
        from . import xdist

        xdist.register(config)
    if plugins.has_plugin("timeout"):
        from . import timeout

        timeout.activate(config)
    # pytest's faulthandler plugin is always active; its timer is set only
    # with faulthandler_timeout.
    if plugins.has_plugin("faulthandler") and config.getini("faulthandler_timeout"):
        from . import faulthandler

        faulthandler.activate(config)
    if plugins.has_plugin("rerunfailures"):
        from . import rerunfailures

        rerunfailures.activate(config)
