"""Telling concurrency failures apart: a failed member runs again on its own after its group."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from . import _pytest_compat as compat
from ._grouping import SPEC_KEY
from ._observers import OBSERVERS_KEY, RunObserver
from ._options import FORGET_ALONE, REMEMBER_ALONE
from ._pytest_compat import Phase

if TYPE_CHECKING:
    from ._runner import GroupRun, MemberRun

#: The node ids that failed only when run concurrently, in pytest's cache.
CACHE_KEY = "trio_groups/run_alone"
SECTION = "trio_group: failed only when run concurrently"


@dataclasses.dataclass
class _Found:
    nodeid: str
    group: str
    overlapped: list[str]


class Diagnosis:
    """The pytest plugin: options, the cache of tests to run alone, the summary section."""

    def __init__(self, config: pytest.Config) -> None:
        self.remember = bool(config.getoption("trio_group_remember_alone"))
        self.rerun_alone = self.remember or bool(config.getoption("trio_group_rerun_alone"))
        # None under -p no:cacheprovider.
        self._cache: pytest.Cache | None = getattr(config, "cache", None)
        if (self.remember or config.getoption("trio_group_forget_alone")) and self._cache is None:
            raise pytest.UsageError(
                f"{REMEMBER_ALONE} and {FORGET_ALONE} need pytest's cache "
                "(the cacheprovider plugin is disabled)"
            )
        self.remembered: set[str] = set()
        if config.getoption("trio_group_forget_alone"):
            assert self._cache is not None
            self._cache.set(CACHE_KEY, [])
        elif self.remember:
            assert self._cache is not None
            self.remembered = set(self._cache.get(CACHE_KEY, []))
        #: Members that failed in their group and passed alone, in this run.
        self.found: list[_Found] = []
        self._alone_now = 0

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> Generator[None]:
        yield
        if not self.remembered:
            return
        for item in items:
            spec = item.stash.get(SPEC_KEY, None)
            if spec is not None and spec.name is not None and item.nodeid in self.remembered:
                # A group of its own: it runs alone, with its deadline.
                item.stash[SPEC_KEY] = dataclasses.replace(spec, name=None)
                self._alone_now += 1

    def pytest_report_collectionfinish(self) -> list[str]:
        count = self._alone_now
        if not count:
            return []
        if count == 1:
            what = "1 test runs on its own, outside its group: it failed"
            again = "group it again"
        else:
            what = f"{count} tests run on their own, outside their groups: they failed"
            again = "group them again"
        return [f"trio_group: {what} only when run concurrently before ({FORGET_ALONE} to {again})"]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.found:
            return
        terminalreporter.write_sep("=", SECTION)
        for found in self.found:
            terminalreporter.write_line(
                f"{found.nodeid} ({found.group}) passed on its own; "
                f"it overlapped with: {', '.join(found.overlapped)}"
            )
        if self.remember:
            terminalreporter.write_line(
                f"remembered: later runs with {REMEMBER_ALONE} run these on their own "
                f"({FORGET_ALONE} to forget them)"
            )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.remember and self.found and self._cache is not None:
            nodeids = self.remembered | {found.nodeid for found in self.found}
            self._cache.set(CACHE_KEY, sorted(nodeids))


def _failed_before_teardown(member: MemberRun) -> bool:
    return any(report.failed for report in member.result.report_list if report.when != "teardown")


class AloneReruns(RunObserver):
    """Records which members overlapped, and runs failed ones again alone after the group."""

    def __init__(self, diagnosis: Diagnosis, run: GroupRun) -> None:
        self._diagnosis = diagnosis
        self._running: list[MemberRun] = []
        #: For each member, the members that ran while it ran, in the order they started.
        self._overlapped: dict[pytest.Item, dict[pytest.Item, None]] = {}
        self._held: set[pytest.Item] = set()

    def member_started(self, member: MemberRun) -> None:
        if member.alone:
            return
        item = member.item
        if item in self._held:
            # A rerun in the group: the hold for the earlier attempt goes.
            self._held.discard(item)
            member.run_.state.release(item)
        mine = self._overlapped.setdefault(item, {})
        for other in self._running:
            if other.item is not item:
                mine[other.item] = None
                self._overlapped.setdefault(other.item, {})[item] = None
        self._running.append(member)

    def member_finished(self, member: MemberRun) -> None:
        if member in self._running:
            self._running.remove(member)

    def phase_started(self, member: MemberRun, when: Phase) -> None:
        # Its module and class stay set up for the run alone.
        if (
            when == "teardown"
            and not member.alone
            and self._overlapped.get(member.item)
            and _failed_before_teardown(member)
        ):
            self._held.add(member.item)
            member.run_.state.hold(member.item)

    def hold_reports(self, member: MemberRun) -> bool:
        return member.item in self._held

    async def after_members(self, run: GroupRun, held: list[MemberRun]) -> None:
        for member in held:
            item = member.item
            if item not in self._held or run.stop_reason is not None:
                continue
            self._held.discard(item)
            compat.renew_request(item)
            alone = await run.attempt(item, member.attempt + 1, alone=True)
            reports = alone.result.report_list
            passed = any(r.when == "call" for r in reports) and all(r.passed for r in reports)
            overlapped = [other.nodeid for other in self._overlapped.get(item, {})]
            if passed:
                self._diagnosis.found.append(_Found(item.nodeid, run.group.label, overlapped))
                text = (
                    f"{item.nodeid} failed in {run.group.label} and passed when run again on "
                    "its own after the group: it fails only when run concurrently.\n"
                    "Tests that ran at the same time as it:\n"
                    + "".join(f"    {nodeid}\n" for nodeid in overlapped)
                )
                title = SECTION
            else:
                text = f"{item.nodeid} failed again when run on its own after the group.\n"
                title = "trio_group: failed on its own too"
            for report in member.result.report_list:
                if report.failed:
                    report.sections.append((title, text))
                    break


def activate(config: pytest.Config) -> None:
    """Register the diagnosis (one of its options is given)."""
    diagnosis = Diagnosis(config)
    config.pluginmanager.register(diagnosis, "trio-groups-diagnosis")
    if diagnosis.rerun_alone:
        config.stash.setdefault(OBSERVERS_KEY, []).append(lambda run: AloneReruns(diagnosis, run))
