"""Support for other pytest plugins: one module per plugin, imported only when it is active."""

from __future__ import annotations

import pytest


def activate(config: pytest.Config) -> None:
    """Load the support for each plugin active in this session."""
    plugins = config.pluginmanager
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
