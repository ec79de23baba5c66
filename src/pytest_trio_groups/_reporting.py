"""Replay captured phase outcomes into ordinary pytest reports.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import outcome
import pytest

from . import _pytest_compat as compat
from ._pytest_compat import Phase


@dataclass
class PhaseClock:
    """Wall-clock start of one phase, in pytest's two clocks."""

    when: Phase
    start: float = field(default_factory=time.time)
    start_perf: float = field(default_factory=time.perf_counter)


@dataclass
class TestOutcome:
    """What one group member produced: a report per phase, in order."""

    item: pytest.Function
    #: ``item.ihook``, looked up once for all members of the same path.
    ihook: Any
    reports: list[tuple[pytest.TestReport, object]] = field(default_factory=list)

    def record(self, clock: PhaseClock, result: outcome.Outcome[object]) -> pytest.TestReport:
        """Turn one phase's outcome into its report (``pytest_runtest_makereport``).

        The report is made right away -- other plugins' makereport hooks
        (xfail handling, ``tmp_path`` retention) expect it before the next
        phase -- and logged later by ``publish``.
        """
        __tracebackhide__ = True
        duration = time.perf_counter() - clock.start_perf
        excinfo = None
        if type(result) is outcome.Error:
            excinfo = pytest.ExceptionInfo.from_exception(_with_traceback(result.error))
        call = compat.make_call_info(excinfo, clock.start, time.time(), duration, clock.when)
        report: pytest.TestReport = self.ihook.pytest_runtest_makereport(item=self.item, call=call)
        self.reports.append((report, call))
        return report

    @property
    def report_list(self) -> list[pytest.TestReport]:
        return [report for report, _ in self.reports]

    def publish(self) -> None:
        """Log the test's reports through pytest's hooks, as its own runner would."""
        item = self.item
        ihook = self.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for report, call in self.reports:
            ihook.pytest_runtest_logreport(report=report)
            if compat.check_interactive_exception(call, report):  # type: ignore[arg-type]
                ihook.pytest_exception_interact(node=item, call=call, report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


def _with_traceback(error: BaseException) -> BaseException:
    """``error``, raised once if needed so that it carries a traceback.

    Errors made by this plugin (a cancellation skip, a timeout with no user
    frame left) have none, and pytest's ``ExceptionInfo`` requires one.
    """
    if error.__traceback__ is not None:
        return error
    try:
        raise error
    except BaseException as raised:
        if raised is not error:
            raise  # a Ctrl-C that landed just then
        return error


def first_line(report: pytest.TestReport) -> str | None:
    """The first line of a failure's message, or a skip's reason; ``None`` otherwise."""
    if report.passed:
        return None
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        text = str(longrepr[2]).removeprefix("Skipped: ")
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = crash.message if crash is not None else report.longreprtext
    lines = text.strip().splitlines()
    return lines[0] if lines else None
