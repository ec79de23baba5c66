"""Support for other pytest plugins: one module per plugin, imported only when it is active.

(Imported as ``from .x import y``: see ``plugin.py`` for why.)

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os

import pytest

from .._options import read_group_by

#: ``(CPUs, workers)`` when ``-n auto`` started more workers than pytest-xdist counts CPUs.
AUTO_WORKERS_KEY: pytest.StashKey[tuple[int, int]] = pytest.StashKey()


def active_pytest_trio(config: pytest.Config) -> object | None:
    """pytest-trio's plugin module, if it is registered (not blocked with ``-p no:trio``)."""
    # ("trio" is its entry point's name.)
    if not config.pluginmanager.has_plugin("trio"):
        return None
    from .pytest_trio import active_plugin

    return active_plugin(config)


def auto_workers(config: pytest.Config, cpus: int) -> int:
    """How many workers ``-n auto`` starts, given pytest-xdist's count of CPUs.

    Half as many again when ``trio_group_by`` groups the session's trio
    tests: a worker runs one group at a time, and a group that waits on
    timers or I/O leaves its core idle. An explicit ``-n N``,
    ``--maxprocesses`` or ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return cpus
    if read_group_by(config) == "none":
        return cpus
    workers = cpus + (cpus + 1) // 2
    cap = config.getoption("maxprocesses", None)
    if cap:
        workers = min(workers, cap)
    if workers <= cpus:
        return cpus
    config.stash[AUTO_WORKERS_KEY] = (cpus, workers)
    return workers


def auto_workers_header(config: pytest.Config) -> list[str]:
    """The report header's line saying why ``-n auto`` started more workers than CPUs."""
    counts = config.stash.get(AUTO_WORKERS_KEY, None)
    if counts is None:
        return []
    cpus, workers = counts
    return [
        f"trio-groups: -n auto starts {workers} workers for {cpus} CPUs, as trio_group_by "
        "groups tests that mostly wait (-n N or PYTEST_XDIST_AUTO_NUM_WORKERS sets the number)"
    ]


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
