"""Telling concurrency failures apart: a failed member runs again on its own after its group.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import _pytest_compat as compat
from ._grouping import SPEC_KEY
from ._notices import attribute, listed
from ._observers import OBSERVERS_KEY, RunObserver
from ._options import ALONE_FILE, FORGET_ALONE, PASS_ALONE, REMEMBER_ALONE
from ._pytest_compat import Phase
from ._reporting import first_line

if TYPE_CHECKING:
    from ._runner import GroupRun, MemberRun

#: The node ids that failed only when run concurrently, in pytest's cache.
CACHE_KEY = "trio_groups/run_alone"
SECTION = "trio_group: failed only when run concurrently"
#: ``workeroutput`` key: what a pytest-xdist worker found, for the controller.
WORKER_OUTPUT = "trio_group_found_alone"
#: Tests named on one line of a message; the rest are counted (a failed
#: test's report section names them all).
_NAMED = 5
#: The characters of a failure's first line that a one-line message quotes.
_REASON_SHOWN = 240
_FILE_HEADER = (
    "# Tests that failed only when run concurrently with their group: pytest-trio-groups\n"
    "# runs each of them on its own. Written by --trio-group-remember-alone; one node id\n"
    "# a line; commit this file so that every machine runs them alone.\n"
)


@dataclasses.dataclass
class Found:
    """A member that failed in its group and passed when run again on its own."""

    nodeid: str
    group: str
    overlapped: list[str]


class _Memory:
    """Where the tests to run alone are kept: a file the user commits, or pytest's cache."""

    def __init__(self, config: pytest.Config) -> None:
        raw = config.getoption("trio_group_alone_file")
        base = Path.cwd()
        if raw is None:
            raw = config.getini("trio_group_alone_file") or None
            base = config.inipath.parent if config.inipath else config.rootpath
        self.path: Path | None = None if raw is None else base / str(raw).strip()
        # None under -p no:cacheprovider.
        self._cache: pytest.Cache | None = getattr(config, "cache", None)

    @property
    def available(self) -> bool:
        return self.path is not None or self._cache is not None

    def read(self) -> set[str]:
        if self.path is not None:
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return set()
            except OSError as exc:
                raise pytest.UsageError(f"{ALONE_FILE}: cannot read {self.path}: {exc}") from None
            lines = (line.strip() for line in text.splitlines())
            return {line for line in lines if line and not line.startswith("#")}
        if self._cache is not None:
            return set(self._cache.get(CACHE_KEY, []))
        return set()

    def write(self, nodeids: Iterable[str]) -> None:
        ordered = sorted(set(nodeids))
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(
                _FILE_HEADER + "".join(f"{nodeid}\n" for nodeid in ordered), encoding="utf-8"
            )
        elif self._cache is not None:
            self._cache.set(CACHE_KEY, ordered)


def pass_alone_setting(config: pytest.Config) -> bool:
    """Whether a member that fails in its group and passes on its own is reported as passed."""
    value = config.getoption("trio_group_pass_alone")
    if value is None:
        value = config.getini("trio_group_pass_alone")
    return bool(value)


class Diagnosis:
    """The pytest plugin: options, the tests to run alone, the summary section.

    Under pytest-xdist each worker runs its groups' reruns; the controller
    gathers what they found (``merge``), prints the notices and writes the
    memory once.
    """

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self.on_worker = hasattr(config, "workerinput")
        #: Report a member that passes on its own as passed.
        self.pass_alone = pass_alone_setting(config)
        self.remember = bool(config.getoption("trio_group_remember_alone"))
        self.rerun_alone = (
            self.remember or self.pass_alone or bool(config.getoption("trio_group_rerun_alone"))
        )
        self.memory = _Memory(config)
        forget = bool(config.getoption("trio_group_forget_alone"))
        if (self.remember or forget) and not self.memory.available:
            raise pytest.UsageError(
                f"{REMEMBER_ALONE} and {FORGET_ALONE} need pytest's cache "
                f"(the cacheprovider plugin is disabled) or {ALONE_FILE}"
            )
        self.remembered: set[str] = set()
        if forget:
            if not self.on_worker:
                self.memory.write([])
        elif self.remember or self.memory.path is not None:
            # A file is read by every run; the cache by runs that remember.
            self.remembered = self.memory.read()
        #: Members that failed in their group and passed alone, in this run
        #: (on a controller: on every worker).
        self.found: list[Found] = []
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
        return self._alone_notice(self._alone_now)

    def collected_on_worker(self, nodeids: Iterable[str]) -> None:
        """On an xdist controller: the notice, from the first worker's collection."""
        if self._alone_now:
            return
        self._alone_now = len(self.remembered.intersection(nodeids))
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            for line in self._alone_notice(self._alone_now):
                reporter.write_line(line)

    def _alone_notice(self, count: int) -> list[str]:
        if not count:
            return []
        if count == 1:
            what = "1 test runs on its own, outside its group: it failed"
            again = "group it again"
        else:
            what = f"{count} tests run on their own, outside their groups: they failed"
            again = "group them again"
        listed = "" if self.memory.path is None else f"listed in {self.memory.path}; "
        return [
            f"trio_group: {what} only when run concurrently before "
            f"({listed}{FORGET_ALONE} to {again})"
        ]

    def merge(self, data: Iterable[dict[str, Any]]) -> None:
        """On an xdist controller: what one worker found."""
        self.found.extend(Found(**entry) for entry in data)

    def worker_output(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(found) for found in self.found]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.found:
            return
        terminalreporter.write_sep("=", SECTION)
        for found in self.found:
            terminalreporter.write_line(
                f"{found.nodeid} ({found.group}) passed on its own; "
                f"it overlapped with: {listed(found.overlapped, _NAMED)}"
            )
        count = len(self.found)
        if self.pass_alone:
            what = (
                "1 test passed only on its own"
                if count == 1
                else (f"{count} tests passed only on their own")
            )
            terminalreporter.write_line(f"{what}: reported as passed ({PASS_ALONE})")
        if self.remember and self.memory.path is None:
            terminalreporter.write_line(
                f"remembered: later runs with {REMEMBER_ALONE} run these on their own "
                f"({FORGET_ALONE} to forget them)"
            )
        elif self.remember:
            terminalreporter.write_line(
                f"remembered in {self.memory.path}: every later run runs these on their own "
                f"({FORGET_ALONE} to forget them)"
            )
        else:
            terminalreporter.write_line(
                f"{REMEMBER_ALONE} remembers them (with {ALONE_FILE}, in a file to commit)"
            )
        terminalreporter.write_line(
            "or mark each @pytest.mark.trio_alone to run it on its own for good"
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.remember and self.found and not self.on_worker:
            self.memory.write(self.remembered | {found.nodeid for found in self.found})


def _passed(member: MemberRun) -> bool:
    """Whether the attempt ran its call and every report of it passed."""
    reports = member.result.report_list
    return any(r.when == "call" for r in reports) and all(r.passed for r in reports)


def _failed(member: MemberRun) -> bool:
    return any(report.failed for report in member.result.report_list)


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
        # Its module and class stay set up for a run alone, which a failure
        # in this teardown calls for as much as one before it.
        if when == "teardown" and not member.alone and self._overlapped.get(member.item):
            self._held.add(member.item)
            member.run_.state.hold(member.item)

    def hold_reports(self, member: MemberRun) -> bool:
        item = member.item
        if item not in self._held:
            return False
        if _failed(member):
            return True
        self._held.discard(item)
        member.run_.state.release(item)
        return False

    async def after_members(self, run: GroupRun, held: list[MemberRun]) -> None:
        if any(member.item in self._held for member in held):
            # A run alone sees what it would see alone: nothing the group's
            # patches left behind.
            run.patches.restore(report_to=run.group.members[0])
        for position, member in enumerate(held):
            item = member.item
            if item not in self._held or run.stop_reason is not None:
                continue
            self._held.discard(item)
            compat.renew_request(item)
            alone = await run.attempt(item, member.attempt + 1, alone=True)
            runs = 1
            while not _passed(alone) and run.stop_reason is None:
                delay = run.next_attempt_alone(alone, runs)
                if delay is None:
                    break
                alone = await run.again(alone, delay)
                runs += 1
            passed = _passed(alone)
            overlapped = [other.nodeid for other in self._overlapped.get(item, {})]
            if passed:
                self._diagnosis.found.append(Found(item.nodeid, run.group.label, overlapped))
                if self._diagnosis.pass_alone:
                    # Published in place of the attempt in the group: the same test.
                    alone.attempt = member.attempt
                    held[position] = alone
                    _warn_passed_alone(alone, run.group.label, member, overlapped)
                    continue
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


def _warn_passed_alone(
    alone: MemberRun, label: str, in_group: MemberRun, overlapped: list[str]
) -> None:
    failure = next(report for report in in_group.result.report_list if report.failed)
    reason = first_line(failure) or "no message"
    if len(reason) > _REASON_SHOWN:
        reason = reason[: _REASON_SHOWN - 3] + "..."
    message = pytest.PytestWarning(
        f"{alone.item.nodeid} failed at {failure.when} in {label} "
        f"({reason}) and passed "
        f"when run again on its own: reported as passed ({PASS_ALONE}). It ran at the same "
        f"time as: {listed(overlapped, _NAMED)}"
    )
    path, line, name = alone.item.reportinfo()
    attribute(alone, message, traceback.FrameSummary(str(path), (line or 0) + 1, name))


def activate(config: pytest.Config) -> None:
    """Register the diagnosis (one of its options is given)."""
    diagnosis = Diagnosis(config)
    config.pluginmanager.register(diagnosis, "trio-groups-diagnosis")
    if diagnosis.rerun_alone:
        config.stash.setdefault(OBSERVERS_KEY, []).append(lambda run: AloneReruns(diagnosis, run))
