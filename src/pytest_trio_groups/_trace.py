"""The timeline file: every group's tests as Chrome trace events (Perfetto, chrome://tracing)."""

from __future__ import annotations

import json
import os
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._observers import OBSERVERS_KEY, RunObserver
from ._summary import category

if TYPE_CHECKING:
    from ._runner import GroupRun, MemberRun


class GroupTrace(RunObserver):
    """What the timeline records of one group run; this one records nothing."""

    def mark(self, member: MemberRun, name: str, at: float, args: dict[str, Any]) -> None:
        """Something that happened to a test at ``at`` (``time.perf_counter``)."""


class _RecordingGroupTrace(GroupTrace):
    def __init__(self, timeline: Timeline, pid: int) -> None:
        self._timeline = timeline
        self._pid = pid
        self._tids: dict[str, int] = {}

    def _tid(self, member: MemberRun) -> int:
        nodeid = member.item.nodeid
        tid = self._tids.get(nodeid)
        if tid is None:
            tid = self._tids[nodeid] = len(self._tids) + 1
            self._timeline.add(self._pid, tid, ph="M", name="thread_name", args={"name": nodeid})
            self._timeline.add(
                self._pid, tid, ph="M", name="thread_sort_index", args={"sort_index": tid}
            )
        return tid

    def member_started(self, member: MemberRun) -> None:
        # Tracks in the order the tests started.
        self._tid(member)

    def member_finished(self, member: MemberRun) -> None:
        """One span per phase, timed as its report is."""
        tid = self._tid(member)
        for report in member.result.report_list:
            args: dict[str, Any] = {"outcome": category(report) or report.outcome}
            if member.timed_out and report.when != "teardown" and report.failed:
                args["timeout"] = True
            if member.attempt > 1:
                args["attempt"] = member.attempt
            self._timeline.add(
                self._pid,
                tid,
                ph="X",
                name=report.when,
                cat="phase",
                ts=self._timeline.micros_since_epoch(report.start),
                dur=round(report.duration * 1e6, 3),
                args=args,
            )

    def mark(self, member: MemberRun, name: str, at: float, args: dict[str, Any]) -> None:
        self._timeline.add(
            self._pid,
            self._tid(member),
            ph="i",
            s="t",
            name=name,
            cat="notice",
            ts=self._timeline.micros(at),
            args=args,
        )


class Timeline:
    """The session's trace events, written to one file at the end."""

    def __init__(self, path: Path, worker: str | None) -> None:
        self.path = path
        self._worker = worker
        # Reports time phases with ``time.time``; the plugin's marks use
        # ``time.perf_counter``. Both count from here.
        self._origin_epoch, self._origin = time.time(), time.perf_counter()
        self._events: list[dict[str, Any]] = []
        self._groups: weakref.WeakKeyDictionary[GroupRun, GroupTrace] = weakref.WeakKeyDictionary()
        self._runs = 0

    def micros(self, perf: float) -> float:
        return round((perf - self._origin) * 1e6, 3)

    def micros_since_epoch(self, epoch: float) -> float:
        return round((epoch - self._origin_epoch) * 1e6, 3)

    def add(self, pid: int, tid: int, **event: Any) -> None:
        event["pid"] = pid
        event["tid"] = tid
        self._events.append(event)

    def group(self, run: GroupRun) -> GroupTrace:
        trace = self._groups.get(run)
        if trace is None:
            self._runs += 1
            pid = self._runs
            label = run.group.label
            name = label if self._worker is None else f"{label} [{self._worker}]"
            self.add(pid, 0, ph="M", name="process_name", args={"name": name})
            self.add(pid, 0, ph="M", name="process_sort_index", args={"sort_index": pid})
            trace = self._groups[run] = _RecordingGroupTrace(self, pid)
        return trace

    def write(self) -> None:
        self._close_tests()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", encoding="utf-8") as file:
            json.dump({"traceEvents": self._events, "displayTimeUnit": "ms"}, file)

    def _close_tests(self) -> None:
        """Add one span per test around its phases, carrying its outcome."""
        phases: dict[tuple[int, int], list[dict[str, Any]]] = {}
        names: dict[tuple[int, int], str] = {}
        for event in self._events:
            key = (event["pid"], event["tid"])
            if event["ph"] == "X" and event.get("cat") == "phase":
                phases.setdefault(key, []).append(event)
            elif event["name"] == "thread_name":
                names[key] = event["args"]["name"]
        for key, spans in phases.items():
            start = min(span["ts"] for span in spans)
            end = max(span["ts"] + span["dur"] for span in spans)
            outcomes = [span["args"]["outcome"] for span in spans]
            outcome = next((word for word in outcomes if word != "passed"), "passed")
            args: dict[str, Any] = {"outcome": outcome}
            if any(span["args"].get("timeout") for span in spans):
                args["timeout"] = True
            self.add(
                *key,
                ph="X",
                name=names.get(key, "test"),
                cat="test",
                ts=start,
                dur=round(end - start, 3),
                args=args,
            )


_TIMELINE_KEY: pytest.StashKey[Timeline] = pytest.StashKey()
#: On a pytest-xdist controller: the names of the files the workers write.
_WORKERS_WRITE_KEY: pytest.StashKey[str] = pytest.StashKey()
_NO_TRACE = GroupTrace()


def activate(config: pytest.Config, path: str | None) -> None:
    """Record the timeline if ``--trio-group-trace`` names a file.

    Under pytest-xdist each worker writes its own file, named after the
    worker (``trace-gw0.json``), and names its groups' processes after it.
    """
    if path is None:
        return
    worker: str | None = None
    workerinput = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict):
        worker = str(workerinput.get("workerid", "")) or None
    target = config.invocation_params.dir / path
    if worker is None and config.getoption("dist", "no") != "no" and config.getoption("tx", None):
        # The pytest-xdist controller runs no test: only its workers write.
        config.stash[_WORKERS_WRITE_KEY] = os.fspath(
            target.with_name(f"{target.stem}-gw*{target.suffix}")
        )
        return
    if worker is not None:
        target = target.with_name(f"{target.stem}-{worker}{target.suffix}")
    timeline = config.stash[_TIMELINE_KEY] = Timeline(target, worker)
    config.stash.setdefault(OBSERVERS_KEY, []).append(timeline.group)


def group_trace(run: GroupRun) -> GroupTrace:
    """Where to mark what happens to one run's tests (nowhere without ``--trio-group-trace``)."""
    timeline = run.session.config.stash.get(_TIMELINE_KEY, None)
    return _NO_TRACE if timeline is None else timeline.group(run)


def write_timeline(config: pytest.Config) -> str | None:
    """Write the timeline file; where the timeline is, for the terminal, or ``None``."""
    timeline = config.stash.get(_TIMELINE_KEY, None)
    if timeline is None:
        workers = config.stash.get(_WORKERS_WRITE_KEY, None)
        return None if workers is None else f"{workers}, one file per pytest-xdist worker"
    timeline.write()
    return os.fspath(timeline.path)
