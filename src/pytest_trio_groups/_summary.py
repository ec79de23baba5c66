"""The per-group summary at the end of the run: what each group measurably did.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

#: Outcome words in the order pytest's own summary line uses them.
_ORDER = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "error", "rerun")

#: CPU time over wall time from which a group counts as CPU-bound.
CPU_BOUND = 0.9
#: Wall time below which a group is too short for that to matter: a group
#: of trivial tests is always busy, and over before anyone could wait.
CPU_BOUND_MIN_WALL = 0.5
#: How many of a group's slowest members its summary names.
SLOWEST_SHOWN = 3


@dataclass
class GroupSummary:
    """What one group run did, for the summary line.

    A plain value (strings, numbers, lists): it can be sent from a pytest-xdist
    worker to the controller and formatted there.
    """

    label: str
    tests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Wall-clock time of the group's ``trio.run``.
    wall: float = 0.0
    #: CPU time the process used meanwhile (``time.process_time``: every thread).
    cpu: float = 0.0
    #: Most members running at the same time.
    peak: int = 0
    #: Times the event loop was blocked past the threshold, and for how long in all.
    blocked: int = 0
    blocked_seconds: float = 0.0
    #: Shared-state warnings raised while members overlapped.
    hazards: int = 0
    #: (duration, nodeid) of the slowest members (``SLOWEST_SHOWN``), a heap:
    #: a group of 100,000 members keeps three.
    durations: list[tuple[float, str]] = field(default_factory=list)
    #: Members the group never started: it stopped first (``-x``, a Ctrl-C).
    not_started: int = 0
    #: The pytest-xdist worker that ran the group (``gw0``), if any.
    worker: str | None = None

    def as_data(self) -> dict[str, Any]:
        """The summary as builtin types only (what execnet can send), without the worker."""
        data = dataclasses.asdict(self)
        data["outcomes"] = dict(self.outcomes)
        data["durations"] = [list(pair) for pair in self.durations]
        del data["worker"]
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any], worker: str | None = None) -> GroupSummary:
        """The summary ``as_data`` gave, as run on ``worker``."""
        fields = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        fields["outcomes"] = Counter(fields.get("outcomes", {}))
        fields["durations"] = [
            (duration, nodeid) for duration, nodeid in fields.get("durations", [])
        ]
        return cls(**{**fields, "worker": worker})

    def add_member(
        self, item: pytest.Item, reports: list[pytest.TestReport], *, again: bool = False
    ) -> None:
        """Count one attempt at a member; ``again`` for its reruns, which are not new tests."""
        if not again:
            self.tests += 1
        duration = sum(report.duration for report in reports)
        if again:
            # One line per test among the slowest: a rerun adds to its time.
            for index, (earlier, nodeid) in enumerate(self.durations):
                if nodeid == item.nodeid:
                    self.durations[index] = (earlier + duration, nodeid)
                    heapq.heapify(self.durations)
                    self._count(reports)
                    return
        if len(self.durations) < SLOWEST_SHOWN:
            heapq.heappush(self.durations, (duration, item.nodeid))
        elif duration > self.durations[0][0]:
            heapq.heapreplace(self.durations, (duration, item.nodeid))
        self._count(reports)

    def _count(self, reports: list[pytest.TestReport]) -> None:
        for report in reports:
            word = category(report)
            if word:
                self.outcomes[word] += 1

    @property
    def failed(self) -> bool:
        """Whether any member failed or errored."""
        return bool(self.outcomes["failed"] or self.outcomes["error"])

    @property
    def busy(self) -> float:
        """CPU time over wall time: 1.0 is one core busy all the time."""
        return self.cpu / self.wall if self.wall > 0 else 0.0

    @property
    def shown_busy(self) -> float:
        """``busy`` as the summary shows it.

        Over a short run the process's CPU time also holds work around the
        run (its start and end, the watchdog thread's wake-ups), and can
        exceed the wall time of a group that used one core: such a run shows
        at most 100%.
        """
        if self.wall < CPU_BOUND_MIN_WALL:
            return min(self.busy, 1.0)
        return self.busy

    def line(self) -> str:
        counts = ", ".join(
            f"{self.outcomes[word]} {_counted(word, self.outcomes[word])}"
            for word in sorted(self.outcomes, key=lambda w: (_rank(w), w))
            if self.outcomes[word]
        )
        noun = "test" if self.tests == 1 else "tests"
        where = f" on {self.worker}" if self.worker else ""
        not_started = (
            f" and {self.not_started} not started (the group stopped)" if self.not_started else ""
        )
        parts = [
            f"{self.label}{where}: {self.tests} {noun} ({counts or 'none reported'})"
            f"{not_started} in {self.wall:.2f}s wall",
            f"{self.peak} at once at most",
            f"CPU {self.shown_busy:.0%} of wall",
        ]
        if self.blocked:
            times = "once" if self.blocked == 1 else f"{self.blocked} times"
            parts.append(f"event loop blocked {times} ({self.blocked_seconds:.2f}s)")
        if self.hazards:
            parts.append(f"{self.hazards} shared-state warning{'' if self.hazards == 1 else 's'}")
        line = ", ".join(parts)
        if self.busy >= CPU_BOUND and self.wall >= CPU_BOUND_MIN_WALL:
            line += (
                " -- CPU-bound: its tests compete for one CPU, so running them "
                "concurrently saves little; try --trio-group-limit or pytest-xdist"
            )
        return line

    def slowest(self, count: int) -> list[str]:
        return [
            f"    {duration:.2f}s {nodeid}"
            for duration, nodeid in sorted(self.durations, reverse=True)[:count]
        ]


def category(report: pytest.TestReport) -> str:
    """The word pytest's summary counts a report under ("" for a passing setup/teardown).

    The same rules as pytest's own ``pytest_report_teststatus`` (runner and
    skipping plugins), without a hook call per report.
    """
    xfail = hasattr(report, "wasxfail")
    if report.outcome not in ("passed", "failed", "skipped"):
        # Another plugin's word, such as pytest-rerunfailures' "rerun".
        return report.outcome
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.when == "call":
        return "xpassed" if xfail else "passed"
    return ""


def _rank(word: str) -> int:
    return _ORDER.index(word) if word in _ORDER else len(_ORDER)


def _counted(word: str, count: int) -> str:
    """An outcome word after its count, as pytest's summary line puts it: ``2 errors``."""
    return "errors" if word == "error" and count != 1 else word


def write_summary(terminalreporter: Any, summaries: list[GroupSummary]) -> None:
    """The ``trio_group summary`` section: one line per group, slowest members with ``-v``."""
    if not summaries:
        return
    terminalreporter.write_sep("=", "trio_group summary")
    verbose = terminalreporter.config.get_verbosity() > 0
    for summary in summaries:
        terminalreporter.write_line(summary.line())
        if verbose:
            for line in summary.slowest(SLOWEST_SHOWN):
                terminalreporter.write_line(line)
