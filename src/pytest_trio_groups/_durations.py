"""How long tests and groups took last time, kept in pytest's cache to place work.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from ._context import SUMMARIES_KEY

#: Key in pytest's cache (``.pytest_cache``); ``--cache-clear`` forgets it.
CACHE_KEY = "trio_group/durations"

_PHASES = ("setup", "call", "teardown")
_PLUGIN_NAME = "trio-groups-durations"


@dataclass(frozen=True)
class History:
    """Durations recorded by an earlier run; empty when there is none."""

    #: Seconds each test took (setup + call + teardown), by node id.
    tests: Mapping[str, float] = field(default_factory=dict)
    #: Wall-clock seconds of each group's run, by its label (``trio_group 'db'``).
    groups: Mapping[str, float] = field(default_factory=dict)


def load_history(config: pytest.Config) -> History:
    """What the cache holds from earlier runs (nothing, without the cache plugin)."""
    cache = getattr(config, "cache", None)
    data = cache.get(CACHE_KEY, None) if cache is not None else None
    if not isinstance(data, dict):
        return History()
    return History(tests=_seconds(data.get("tests")), groups=_seconds(data.get("groups")))


def _seconds(value: object) -> dict[str, float]:
    # The cache is a JSON file anyone may edit: keep only what makes sense.
    if not isinstance(value, dict):
        return {}
    return {
        key: float(seconds)
        for key, seconds in value.items()
        if isinstance(key, str)
        and isinstance(seconds, (int, float))
        and not isinstance(seconds, bool)
        and math.isfinite(seconds)
        and seconds >= 0
    }


class DurationRecorder:
    """A plugin: adds up each test's reported durations and, at the end of a
    session in which a group ran, stores them with the groups' wall times."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._tests: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when in _PHASES:
            self._tests[report.nodeid] = self._tests.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cache = getattr(self._config, "cache", None)
        summaries = self._config.stash.get(SUMMARIES_KEY, [])
        if cache is None or not summaries:
            return
        # Tests this run did not select keep what an earlier run recorded.
        earlier = load_history(self._config)
        groups = {summary.label: summary.wall for summary in summaries}
        cache.set(
            CACHE_KEY,
            {"tests": {**earlier.tests, **self._tests}, "groups": {**earlier.groups, **groups}},
        )


def record_durations(config: pytest.Config) -> None:
    """Record this session's durations for the next run (once per session)."""
    if getattr(config, "cache", None) is None:
        return
    if not config.pluginmanager.has_plugin(_PLUGIN_NAME):
        config.pluginmanager.register(DurationRecorder(config), _PLUGIN_NAME)
