"""The timeline: every group's tests as Chrome trace events (Perfetto, chrome://tracing).

One recording, two formats: the trace file (``--trio-group-trace``) and the
HTML page (``--trio-group-timeline``, drawn by ``_timeline_html``).

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import os
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._observers import OBSERVERS_KEY, RunObserver
from ._reporting import first_line
from ._summary import GroupSummary, category

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

    def group_started(self, run: GroupRun) -> None:
        self._timeline.bounds[self._pid] = [self._timeline.micros(time.perf_counter())] * 2

    def group_finished(self, run: GroupRun) -> None:
        self._timeline.bounds[self._pid][1] = self._timeline.micros(time.perf_counter())

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
            if member.alone:
                args["alone"] = True
            message = first_line(report)
            if message is not None:
                args["message"] = message
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
    """The session's trace events, written at the end: a trace file, an HTML page, or both."""

    def __init__(self, trace: Path | None, worker: str | None) -> None:
        #: Where the trace file goes (``None``: only the HTML page is wanted).
        self.path = trace
        self._worker = worker
        # Reports time phases with ``time.time``; the plugin's marks use
        # ``time.perf_counter``. Both count from here.
        self._origin_epoch, self._origin = time.time(), time.perf_counter()
        self._events: list[dict[str, Any]] = []
        self._groups: weakref.WeakKeyDictionary[GroupRun, GroupTrace] = weakref.WeakKeyDictionary()
        self._runs = 0
        #: Each group run's summary, by its process id, for the summary line.
        self._summaries: dict[int, GroupSummary] = {}
        #: When each group run's trio run started and ended, by its process id.
        self.bounds: dict[int, list[float]] = {}

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
            self._summaries[pid] = run.summary
        return trace

    def write(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", encoding="utf-8") as file:
            json.dump({"traceEvents": self.events(), "displayTimeUnit": "ms"}, file)

    def data(self) -> dict[str, Any]:
        """What the HTML page is drawn from, as builtin types (a worker sends it)."""
        return {
            "origin": self._origin_epoch,
            "worker": self._worker,
            "events": self.events(),
            "lines": {str(pid): summary.line() for pid, summary in self._summaries.items()},
            "bounds": {str(pid): bounds for pid, bounds in self.bounds.items()},
        }

    def events(self) -> list[dict[str, Any]]:
        """The recorded events, with one span per test around its phases."""
        return self._events + self._test_spans()

    def _test_spans(self) -> list[dict[str, Any]]:
        """One span per test around its phases, carrying its outcome."""
        spans_out: list[dict[str, Any]] = []
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
            spans_out.append(
                {
                    "ph": "X",
                    "name": names.get(key, "test"),
                    "cat": "test",
                    "ts": start,
                    "dur": round(end - start, 3),
                    "args": args,
                    "pid": key[0],
                    "tid": key[1],
                }
            )
        return spans_out


_TIMELINE_KEY: pytest.StashKey[Timeline] = pytest.StashKey()
#: On a pytest-xdist controller: the names of the trace files the workers write.
_WORKERS_WRITE_KEY: pytest.StashKey[str] = pytest.StashKey()
#: Where the HTML page goes, and on a pytest-xdist controller what the workers sent.
_PAGE_KEY: pytest.StashKey[Path] = pytest.StashKey()
_WORKER_DATA_KEY: pytest.StashKey[list[dict[str, Any]]] = pytest.StashKey()
#: ``workeroutput`` key: a worker's recording, for the controller's page.
WORKER_OUTPUT = "trio_group_timeline"
_NO_TRACE = GroupTrace()


def _on_controller(config: pytest.Config) -> bool:
    """Whether this is a pytest-xdist controller, which runs no test."""
    return (
        not hasattr(config, "workerinput")
        and config.getoption("dist", "no") != "no"
        and bool(config.getoption("tx", None))
    )


def activate(config: pytest.Config, trace: str | None, page: str | None) -> None:
    """Record the timeline if ``--trio-group-trace`` or ``--trio-group-timeline`` names a file.

    Under pytest-xdist each worker writes its own trace file, named after the
    worker (``trace-gw0.json``), and names its groups' processes after it;
    the HTML page is one, written by the controller from what each worker
    sends at its end.
    """
    if trace is None and page is None:
        return
    worker: str | None = None
    workerinput = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict):
        worker = str(workerinput.get("workerid", "")) or None
    here = config.invocation_params.dir
    trace_path = None if trace is None else here / trace
    if page is not None and worker is None:
        config.stash[_PAGE_KEY] = here / page
    if _on_controller(config):
        if trace_path is not None:
            config.stash[_WORKERS_WRITE_KEY] = os.fspath(
                trace_path.with_name(f"{trace_path.stem}-gw*{trace_path.suffix}")
            )
        config.stash[_WORKER_DATA_KEY] = []
        return
    if worker is not None and trace_path is not None:
        trace_path = trace_path.with_name(f"{trace_path.stem}-{worker}{trace_path.suffix}")
    timeline = config.stash[_TIMELINE_KEY] = Timeline(trace_path, worker)
    config.stash.setdefault(OBSERVERS_KEY, []).append(timeline.group)


def group_trace(run: GroupRun) -> GroupTrace:
    """Where to mark what happens to one run's tests (nowhere without a timeline)."""
    timeline = run.session.config.stash.get(_TIMELINE_KEY, None)
    return _NO_TRACE if timeline is None else timeline.group(run)


def worker_output(config: pytest.Config) -> dict[str, Any] | None:
    """On a pytest-xdist worker: its recording, for the controller's page."""
    timeline = config.stash.get(_TIMELINE_KEY, None)
    return None if timeline is None else timeline.data()


def add_worker_output(config: pytest.Config, data: dict[str, Any] | None) -> None:
    """On a pytest-xdist controller: one worker's recording."""
    gathered = config.stash.get(_WORKER_DATA_KEY, None)
    if gathered is not None and data is not None:
        gathered.append(data)


def write_timeline(config: pytest.Config) -> list[str]:
    """Write the trace file and the page; what was written, for the terminal."""
    written = []
    timeline = config.stash.get(_TIMELINE_KEY, None)
    if timeline is not None and timeline.path is not None:
        timeline.write()
        written.append(f"trio_group timeline written to {os.fspath(timeline.path)}")
    workers = config.stash.get(_WORKERS_WRITE_KEY, None)
    if workers is not None:
        written.append(
            f"trio_group timeline written to {workers}, one file per pytest-xdist worker"
        )
    page = config.stash.get(_PAGE_KEY, None)
    if page is not None:
        from ._timeline_html import write_page

        recordings = config.stash.get(_WORKER_DATA_KEY, None)
        if recordings is None:
            recordings = [] if timeline is None else [timeline.data()]
        write_page(page, recordings, config)
        written.append(f"trio_group timeline page written to {os.fspath(page)}")
    return written
