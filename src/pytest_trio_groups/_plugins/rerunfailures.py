"""pytest-rerunfailures: a failed group member runs again in its group, as a fresh attempt.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pytest
import pytest_rerunfailures as rerunfailures

from .._observers import OBSERVERS_KEY, RunObserver
from .._pytest_compat import Phase

if TYPE_CHECKING:
    from .._runner import GroupRun, MemberRun

#: What is used of pytest-rerunfailures (checked with 16.7): the public
#: ``get_reruns_*`` readers of marks and options, and the three private
#: helpers its own rerun loop decides with, so that ``--only-rerun``,
#: ``--rerun-except``, ``--rerun-exclude-path`` and ``flaky(condition=)``
#: mean for a member what they mean for a test run alone.
_NEEDED = (
    "get_reruns_count",
    "get_reruns_delay",
    "get_reruns_delay_backoff_factor",
    "get_reruns_condition",
    "_get_reruns_condition_failures",
    "_should_not_rerun",
    "_is_rerun_path_excluded",
)


class MemberReruns(RunObserver):
    """Runs a failed member again while it has reruns left, in its own task in the group.

    Each attempt is a new setup, call and teardown with fresh function-scoped
    fixtures; wider-scoped ones stay. The failed attempt's reports are
    published with the outcome ``rerun``, as pytest-rerunfailures publishes
    them, and ``item.execution_count`` counts the attempts.
    """

    def __init__(self, run: GroupRun) -> None:
        self._held: set[MemberRun] = set()

    def member_started(self, member: MemberRun) -> None:
        if not member.alone:
            member.item.execution_count = member.attempt  # type: ignore[attr-defined]

    def phase_started(self, member: MemberRun, when: Phase) -> None:
        # A failed setup or call keeps the test's module and class set up
        # through its teardown, for a rerun that only the teardown's outcome
        # can rule out (an error --rerun-except names, a condition on it).
        if when == "teardown" and not member.alone and self._wants_rerun(member, reserve=False):
            self._held.add(member)
            member.run_.state.hold(member.item)

    def next_attempt(self, member: MemberRun) -> float | None:
        if member.alone:
            return None
        held = member in self._held
        self._held.discard(member)
        again = self._wants_rerun(member, reserve=True)
        if held and not again:
            member.run_.state.release(member.item)
        for report in member.result.report_list:
            report.rerun = member.attempt - 1  # type: ignore[attr-defined]
            if again and report.failed:
                report.outcome = "rerun"  # type: ignore[assignment]
        if not again:
            return None
        return _delay(member.item, member.attempt)

    def next_attempt_alone(self, member: MemberRun, runs: int) -> float | None:
        # Its reruns are counted afresh: run alone, as a test without a
        # group, it gets all of them.
        item = member.item
        counted = getattr(item, "execution_count", None)
        item.execution_count = runs  # type: ignore[attr-defined]
        try:
            again = self._wants_rerun(member, reserve=True)
        finally:
            if counted is None:
                del item.execution_count  # type: ignore[attr-defined]
            else:
                item.execution_count = counted  # type: ignore[attr-defined]
        if not again:
            return None
        return _delay(item, runs)

    def _wants_rerun(self, member: MemberRun, *, reserve: bool) -> bool:
        """Whether the attempt's failures call for a rerun, as pytest-rerunfailures decides.

        ``reserve`` takes one of the ``--max-suite-reruns`` reruns for it;
        otherwise the limit is only looked at.
        """
        item = member.item
        reruns = rerunfailures.get_reruns_count(item)
        if not reruns or rerunfailures._is_rerun_path_excluded(item):
            return False
        condition = rerunfailures.get_reruns_condition(
            item, rerunfailures._get_reruns_condition_failures(item)
        )
        failed = [report for report in member.result.report_list if report.failed]
        if not failed or all(
            rerunfailures._should_not_rerun(item, report, reruns, condition) for report in failed
        ):
            return False
        limit = item.config.option.max_suite_reruns
        db: Any = getattr(item.config, "failures_db", None)
        if limit is None or db is None:
            return True
        if reserve:
            return bool(db.try_increment_suite_reruns(limit))
        return bool(db.get_suite_reruns() < limit)


def _delay(item: pytest.Item, failed_runs: int) -> float:
    """Seconds before the next run after ``failed_runs``, with the test's delay and backoff."""
    delay = float(rerunfailures.get_reruns_delay(item))
    factor = float(rerunfailures.get_reruns_delay_backoff_factor(item))
    return delay * factor ** (failed_runs - 1)


def activate(config: pytest.Config) -> None:
    """Rerun failed group members as pytest-rerunfailures says."""
    missing = [name for name in _NEEDED if not hasattr(rerunfailures, name)]
    if missing:
        warnings.warn(
            pytest.PytestWarning(
                "pytest-trio-groups cannot rerun trio_group tests with this version of "
                f"pytest-rerunfailures (it lacks {', '.join(missing)}); use 16.0 or later"
            ),
            stacklevel=1,
        )
        return
    config.stash.setdefault(OBSERVERS_KEY, []).append(MemberReruns)
