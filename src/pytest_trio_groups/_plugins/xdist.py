"""pytest-xdist: every group runs whole on one worker; groups and other tests spread over workers.

The controller never collects, so group membership comes from the workers:

* each worker, as its collection finishes, sends one extra event before
  xdist's own ``collectionfinish``: the groups among its collected tests, as
  lists of positions in ``session.items``;
* the controller's ``TrioGroupScheduling`` treats each group as one unit of
  work and hands it to one worker as one ``runtests`` command, tagged so that
  the worker knows the batch is a group;
* the worker regroups each tagged batch into one group, which runs as one
  ``GroupRun`` when its first member comes up.

Private parts of pytest-xdist used here (checked with pytest-xdist 3.8.0;
pinned by ``tests/test_xdist.py::test_xdist_internals_we_rely_on``):

* controller: ``WorkerController.process_from_remote``, the channel callback
  that ``WorkerController.setup`` installs after calling
  ``pytest_configure_node``; replacing it on the node lets the controller
  take our event, which xdist would refuse as unknown;
  ``WorkerController.sendcommand``;
* worker: the ``WorkerInteractor`` plugin's ``sendevent`` (its channel to the
  controller), ``handle_command`` (the channel callback its
  ``pytest_runtestloop`` installs) and ``item_index`` (the test it is
  running, sent with and checked against each report).

When one of them is missing, the controller does not announce the protocol
and the worker runs each member on its own, as a group of one.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from .._context import STALL_SINK_KEY, SUMMARIES_KEY, UNATTRIBUTED_KEY
from .._durations import History, load_history, record_durations
from .._grouping import INDEX_KEY, GroupIndex
from .._summary import GroupSummary

if TYPE_CHECKING:
    from .._diagnosis import Diagnosis

#: ``workerinput`` key: the controller takes our events; the value is the
#: protocol's version.
_PROTOCOL_KEY = "trio_groups_protocol"
_PROTOCOL = 1
#: The event a worker sends before xdist's ``collectionfinish``.
_GROUPS_EVENT = "trio_groups_collection"
#: The event a worker sends with a stall report, printed by the controller.
_STALL_EVENT = "trio_groups_stall"
#: Keyword added to xdist's ``runtests`` command: these tests are one group.
_GROUP_FLAG = "trio_group"
#: ``workeroutput`` keys: the worker's group summaries, and the output its
#: failing groups produced that no test owned.
_SUMMARIES_OUTPUT = "trio_group_summaries"
_UNATTRIBUTED_OUTPUT = "trio_group_unattributed"

#: ``--dist`` modes our scheduler replaces, and how each cuts the tests that
#: are in no group into units of work (tests of one unit go to one worker).
_UNIT_RULES: dict[str, Callable[[str, int], object]] = {
    "load": lambda nodeid, index: index,
    "worksteal": lambda nodeid, index: index,
    "loadscope": lambda nodeid, index: nodeid.rsplit("::", 1)[0],
    "loadfile": lambda nodeid, index: nodeid.split("::", 1)[0],
    # pytest 8.4 shows xdist_group names as an ``@name`` suffix; pytest 9
    # does not let xdist add it, and such tests are then spread like ``load``.
    "loadgroup": lambda nodeid, index: (
        nodeid.rsplit("@", 1)[1] if nodeid.rfind("@") > nodeid.rfind("]") else index
    ),
}


class _Node(Protocol):
    """The parts of xdist's ``WorkerController`` the scheduler uses."""

    gateway: Any
    workerinput: dict[str, Any]

    @property
    def shutting_down(self) -> bool: ...

    def send_runtest_some(self, indices: Sequence[int]) -> None: ...

    def sendcommand(self, name: str, **kwargs: object) -> None: ...

    def shutdown(self) -> None: ...


#: ``(label, positions in session.items)`` of each group of two or more tests.
GroupPositions = list[tuple[str, list[int]]]


def register(config: pytest.Config) -> None:
    """Install the worker's side or the controller's, whichever this process is.

    Called only where tests are distributed (not under ``--collect-only``).
    """
    if hasattr(config, "workerinput"):
        config.pluginmanager.register(WorkerSide(config), "trio-groups-xdist-worker")
    else:
        config.pluginmanager.register(ControllerSide(config), "trio-groups-xdist-controller")


# -- the worker ---------------------------------------------------------------


def _find_interactor(config: pytest.Config) -> Any:
    """xdist's ``WorkerInteractor`` plugin, if it has what we need."""
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor" and all(
            callable(getattr(plugin, name, None)) for name in ("sendevent", "handle_command")
        ):
            return plugin
    return None


def _diagnosis(config: pytest.Config) -> Diagnosis | None:
    """The run-alone diagnosis, when one of its options is given."""
    return config.pluginmanager.get_plugin("trio-groups-diagnosis")


class WorkerSide:
    """On a worker: tell the controller the groups; run each batch it tags as one group."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        workerinput: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
        announced = workerinput.get(_PROTOCOL_KEY) == _PROTOCOL
        self._interactor: Any = _find_interactor(config) if announced else None
        self._positions: dict[str, int] = {}
        interactor = self._interactor
        if interactor is not None:
            # A worker's terminal is not seen: its stall reports are printed
            # by the controller, as they happen.
            config.stash[STALL_SINK_KEY] = lambda text: interactor.sendevent(
                _STALL_EVENT, text=text
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        items = list(session.items)
        # Until a batch says otherwise, each member runs on its own: whoever
        # schedules may hand a group's members to different workers.
        index = session.stash[INDEX_KEY] = GroupIndex(items, split=True)
        interactor = self._interactor
        if interactor is None:
            return
        position = {item: at for at, item in enumerate(items)}
        for at, item in reversed(list(enumerate(items))):
            self._positions[item.nodeid] = at
        whole = GroupIndex(items).groups()
        groups = [
            (group.label, [position[member] for member in group.members])
            for group in whole
            if len(group.members) > 1
        ]
        # Sent before xdist's own collectionfinish (this hook is tryfirst),
        # so the controller has it when it schedules.
        interactor.sendevent(_GROUPS_EVENT, groups=groups)
        receive = interactor.handle_command

        def handle_command(command: object) -> None:
            # Runs in execnet's receiver thread, before the tests reach the
            # queue the main thread runs them from.
            if isinstance(command, tuple):
                name, kwargs = command
                if name == "runtests" and kwargs.get(_GROUP_FLAG):
                    index.regroup([items[at] for at in kwargs["indices"]])
                elif name == "runtests_all":  # --dist each: every group, whole
                    for group in whole:
                        index.regroup(group.members)
            receive(command)

        interactor.handle_command = handle_command

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        interactor = self._interactor
        running = getattr(interactor, "item_index", None)
        try:
            return (yield)
        finally:
            if running is not None:
                # xdist reports the end of the protocol for this index.
                interactor.item_index = running

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        # A group's members are reported while its first member's protocol
        # runs; xdist tags each report with the position of the test it runs.
        at = self._positions.get(nodeid)
        if at is not None:
            self._interactor.item_index = at

    def pytest_sessionfinish(self) -> None:
        workeroutput: dict[str, Any] = self._config.workeroutput  # type: ignore[attr-defined]
        workeroutput[_SUMMARIES_OUTPUT] = [
            summary.as_data() for summary in self._config.stash.get(SUMMARIES_KEY, [])
        ]
        workeroutput[_UNATTRIBUTED_OUTPUT] = [
            list(entry) for entry in self._config.stash.get(UNATTRIBUTED_KEY, [])
        ]
        diagnosis = _diagnosis(self._config)
        if diagnosis is not None:
            from .._diagnosis import WORKER_OUTPUT

            workeroutput[WORKER_OUTPUT] = diagnosis.worker_output()
        if self._config.getoption("trio_group_timeline", None):
            from .._trace import WORKER_OUTPUT as TIMELINE_OUTPUT
            from .._trace import worker_output

            workeroutput[TIMELINE_OUTPUT] = worker_output(self._config)


# -- the controller -----------------------------------------------------------


class ControllerSide:
    """On the controller: take the workers' groups, schedule, gather their summaries."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        #: Each worker's groups; written by execnet's receiver threads.
        self.groups: dict[Any, GroupPositions] = {}
        #: Node ids whose reports have all arrived.
        self.finished: set[str] = set()
        record_durations(config)

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        receive = getattr(node, "process_from_remote", None)
        if not callable(receive) or not callable(getattr(node, "sendcommand", None)):
            return

        def process_from_remote(eventcall: object) -> None:
            if isinstance(eventcall, tuple) and eventcall[0] == _GROUPS_EVENT:
                self.groups[node] = [
                    (label, list(positions)) for label, positions in eventcall[1]["groups"]
                ]
                return
            if isinstance(eventcall, tuple) and eventcall[0] == _STALL_EVENT:
                self._print_stall(node, str(eventcall[1]["text"]))
                return
            receive(eventcall)

        node.process_from_remote = process_from_remote
        node.workerinput[_PROTOCOL_KEY] = _PROTOCOL

    def _print_stall(self, node: Any, text: str) -> None:
        from .._stalls import STALLED

        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("-", f"[{node.gateway.id}] {STALLED}", yellow=True)
            reporter.write_line(text)

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> object:
        # A scheduler another plugin or conftest brings wins over ours (but
        # ours wins over xdist's built-in ones); its members run one by one.
        pluginmanager = config.pluginmanager
        others = pluginmanager.subset_hook_caller(
            "pytest_xdist_make_scheduler",
            remove_plugins=[self, *filter(None, [pluginmanager.get_plugin("dsession")])],
        )
        theirs = others(config=config, log=log)
        if theirs is not None:
            return theirs
        dist = config.getvalue("dist")
        if dist not in _UNIT_RULES:
            return None  # --dist each: every worker runs everything, groups whole
        return TrioGroupScheduling(
            config,
            log,
            units_by=_UNIT_RULES[dist],
            groups=self.groups,
            finished=self.finished,
            history=load_history(config),
        )

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.finished.add(nodeid)

    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        diagnosis = _diagnosis(self._config)
        if diagnosis is not None:
            diagnosis.collected_on_worker(ids)

    def pytest_testnodedown(self, node: Any) -> None:
        # A worker that crashed sends no workeroutput.
        output = getattr(node, "workeroutput", None) or {}
        worker = node.gateway.id
        summaries = self._config.stash.setdefault(SUMMARIES_KEY, [])
        for data in output.get(_SUMMARIES_OUTPUT, ()):
            summaries.append(GroupSummary.from_data(data, worker=worker))
        unattributed = self._config.stash.setdefault(UNATTRIBUTED_KEY, [])
        for label, out, err in output.get(_UNATTRIBUTED_OUTPUT, ()):
            unattributed.append((f"{label} on {worker}", out, err))
        diagnosis = _diagnosis(self._config)
        if diagnosis is not None:
            from .._diagnosis import WORKER_OUTPUT

            diagnosis.merge(output.get(WORKER_OUTPUT, ()))
        if self._config.getoption("trio_group_timeline", None):
            from .._trace import WORKER_OUTPUT as TIMELINE_OUTPUT
            from .._trace import add_worker_output

            add_worker_output(self._config, output.get(TIMELINE_OUTPUT))


@dataclass(eq=False)
class WorkUnit:
    """Tests that go to one worker together: a group, or what ``--dist`` keeps together."""

    #: Positions in the collection, in run order.
    indices: list[int]
    #: The group's label when the unit is a trio group.
    group: str | None = None
    done: set[int] = field(default_factory=set)

    @property
    def remaining(self) -> int:
        return len(self.indices) - len(self.done)

    def undone(self) -> list[int]:
        return [index for index in self.indices if index not in self.done]


class TrioGroupScheduling:
    """An xdist scheduler that hands out units of work, largest first.

    A worker gets a new unit whenever fewer than two of its tests are left
    (xdist's worker needs the next test before it runs the current one), so
    units are handed out as workers free up, and a group holds its worker
    alone while it runs.
    """

    def __init__(
        self,
        config: pytest.Config,
        log: Any,
        *,
        units_by: Callable[[str, int], object],
        groups: Mapping[Any, GroupPositions],
        finished: set[str],
        history: History,
    ) -> None:
        from xdist.workermanage import parse_tx_spec_config

        self.numnodes = len(parse_tx_spec_config(config))
        self.config = config
        self.log = log.triogroupsched
        self.collection: list[str] | None = None
        self._units_by = units_by
        self._groups = groups
        self._finished = finished
        self._history = history
        self._collections: dict[_Node, list[str]] = {}
        self._assigned: dict[_Node, list[WorkUnit]] = {}
        self._unit_at: dict[int, WorkUnit] = {}
        self._queue: deque[WorkUnit] = deque()

    @property
    def nodes(self) -> list[_Node]:
        return list(self._assigned)

    @property
    def collection_is_completed(self) -> bool:
        return len(self._collections) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self._queue:
            return False
        return all(self._remaining(node) < 2 for node in self._assigned)

    @property
    def has_pending(self) -> bool:
        return bool(self._queue) or any(self._remaining(node) for node in self._assigned)

    def _remaining(self, node: _Node) -> int:
        return sum(unit.remaining for unit in self._assigned[node])

    def add_node(self, node: _Node) -> None:
        self._assigned[node] = []

    def add_node_collection(self, node: _Node, collection: Sequence[str]) -> None:
        if self.collection is not None and list(collection) != self.collection:
            # A worker started later (replacing a crashed one) collected
            # something else: it gets no work.
            self.log(self._difference(self.collection, collection, node))
            return
        self._collections[node] = list(collection)

    def mark_test_complete(self, node: _Node, item_index: int, duration: float = 0) -> None:
        unit = self._unit_at.get(item_index)
        if unit is not None and item_index not in unit.done:
            unit.done.add(item_index)
            if not unit.remaining and unit in self._assigned.get(node, ()):
                self._assigned[node].remove(unit)
        self._fill()

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        self._queue.appendleft(WorkUnit([self.collection.index(item)]))
        self._fill()

    def remove_pending_tests_from_node(self, node: _Node, indices: Sequence[int]) -> None:
        raise NotImplementedError("units are handed out on demand and never taken back")

    def remove_node(self, node: _Node) -> str | None:
        """Forget ``node``; when it crashed, return the test it crashed in.

        In a group, every member not yet reported crashed with it: the first
        is returned for xdist to report, the others are reported here the same
        way. Tests after the crashed one go back to the queue.
        """
        units = [unit for unit in self._assigned.pop(node) if unit.remaining]
        if not units:
            return None
        assert self.collection is not None
        running, *later = units
        lost = [index for index in running.undone() if self.collection[index] not in self._finished]
        # A group's unreported members were all running; other units run
        # one test at a time, and the tests after the crashed one run again.
        crashed = lost if running.group is not None else lost[:1]
        again = [WorkUnit(unit.undone(), unit.group) for unit in later]
        if lost[len(crashed) :]:
            again.insert(0, WorkUnit(lost[len(crashed) :]))
        self._queue.extendleft(reversed(again))
        for index in crashed[1:]:
            self._report_crash(self.collection[index], node)
        self._fill()
        return self.collection[crashed[0]] if crashed else None

    def _report_crash(self, nodeid: str, node: _Node) -> None:
        path = nodeid.split("::", 1)[0]
        report = pytest.TestReport(
            nodeid=nodeid,
            location=(path, None, path),
            keywords={},
            outcome="failed",
            longrepr=f"worker {node.gateway.id!r} crashed while running {nodeid!r}",
            when="???",  # type: ignore[arg-type]  # as xdist reports the test it names
        )
        report.node = node  # type: ignore[attr-defined]
        hook = self.config.hook
        hook.pytest_handlecrashitem(crashitem=nodeid, report=report, sched=self)
        hook.pytest_runtest_logreport(report=report)

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            self._fill()
            return
        (first, collection), *others = self._collections.items()
        differences = [(node, self._difference(collection, other, node)) for node, other in others]
        if any(message for _, message in differences):
            for node, message in differences:
                if message:
                    self.log(message)
                    report = pytest.CollectReport(
                        nodeid=node.gateway.id, outcome="failed", longrepr=message, result=[]
                    )
                    self.config.hook.pytest_collectreport(report=report)
            return
        self.collection = collection
        self._queue.extend(self._ordered(self._make_units(collection, self._groups.get(first, []))))
        self._fill()

    def _difference(self, expected: Sequence[str], got: Sequence[str], node: _Node) -> str:
        from xdist.report import report_collection_diff

        first = next(iter(self._collections), None)
        first_id = first.gateway.id if first is not None else "first worker"
        return report_collection_diff(expected, got, first_id, node.gateway.id) or ""

    def _make_units(self, collection: Sequence[str], groups: GroupPositions) -> list[WorkUnit]:
        units: list[WorkUnit] = []
        grouped: set[int] = set()
        # A group's unit takes the place of its first member.
        starts: dict[int, WorkUnit] = {}
        for label, positions in groups:
            starts[positions[0]] = WorkUnit(list(positions), label)
            grouped.update(positions)
        by_key: dict[object, WorkUnit] = {}
        for index, nodeid in enumerate(collection):
            if index in starts:
                units.append(starts[index])
            if index in grouped:
                continue
            key = self._units_by(nodeid, index)
            unit = by_key.get(key)
            if unit is None:
                unit = by_key[key] = WorkUnit([])
                units.append(unit)
            unit.indices.append(index)
        return units

    def _ordered(self, units: list[WorkUnit]) -> list[WorkUnit]:
        """Largest first: by the last run's durations when every unit has one
        (longest processing time first), else by number of tests."""
        assert self.collection is not None
        estimates = [self._estimate(unit) for unit in units]
        known = [estimate for estimate in estimates if estimate is not None]
        if len(known) == len(units):
            weights = known
        else:
            weights = [float(len(unit.indices)) for unit in units]
        # A stable sort: equal units keep pytest's order.
        return [units[at] for at in sorted(range(len(units)), key=lambda at: -weights[at])]

    def _estimate(self, unit: WorkUnit) -> float | None:
        assert self.collection is not None
        if unit.group is not None:
            return self._history.groups.get(unit.group)
        seconds = [self._history.tests.get(self.collection[index]) for index in unit.indices]
        if any(value is None for value in seconds):
            return None
        return sum(value or 0.0 for value in seconds)

    def _fill(self) -> None:
        """Hand out units, one per worker in turn, to every worker that needs work."""
        if self.collection is None:
            return  # not scheduling yet (a worker may have died while collecting)
        while self._queue:
            hungry = [node for node in self._assigned if self._needs_work(node)]
            if not hungry:
                return
            for node in hungry:
                if self._queue:
                    self._assign(node, self._queue.popleft())
        for node in self._assigned:
            if not node.shutting_down:
                node.shutdown()

    def _needs_work(self, node: _Node) -> bool:
        return not node.shutting_down and node in self._collections and self._remaining(node) < 2

    def _assign(self, node: _Node, unit: WorkUnit) -> None:
        self._assigned[node].append(unit)
        for index in unit.indices:
            self._unit_at[index] = unit
        if unit.group is not None:
            node.sendcommand("runtests", indices=unit.indices, **{_GROUP_FLAG: True})
        else:
            node.send_runtest_some(unit.indices)
