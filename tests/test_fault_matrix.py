"""The fault matrix: each fault, in each phase and fixture kind, grouped and run alone (P2-P4, P6).

Every cell is one test class of a generated module: a chain of three
fixtures -- ``outer``, the faulting ``fx``, ``inner`` -- and a test that
requests ``inner``; the fault happens in ``fx``'s setup, in the test's body
or in ``fx``'s teardown. ``fx`` is sync, sync yield, async or async yield,
of function or class scope; ``outer`` and ``inner`` are of the other kind,
so every cell mixes sync and async fixtures. One module holds every cell
of one fault kind beside a bystander test. It is run once grouped (the
whole module one group, as ``trio_group_by = module`` makes it) and, where
the fault ends without a deadline, once by the oracle, which runs each test
on its own: pytest-trio 0.8 with this plugin disabled where pytest-trio is
installed, else this plugin's own ungrouped runs. Each cell's reports must
be the oracle's, or the documented difference; where pytest-trio cannot
express a cell (a deadline, a wider-scoped async fixture) the expected
reports follow from pytest's rules and P3, each said where it is built.
Every fixture set up must be torn down exactly once, in reverse order.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from conftest import HAVE_PYTEST_TRIO

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

# A regression that hangs a generated run (they run in this process) ends
# the whole suite here instead of stalling it (pytest-timeout is in the
# test extra): no run may outlast its deadlines and grace periods that long.
HANG_BOUND = 300
pytestmark = pytest.mark.timeout(HANG_BOUND, method="thread")

#: Deadline and grace period of batches whose faults do not wait: long,
#: so that no cell depends on how busy the machine is.
RELAXED = ("--trio-group-timeout", "30", "--trio-group-teardown-timeout", "30")

KINDS = ("sync", "sync_yield", "async", "async_yield")
PHASES = ("setup", "call", "teardown")
SCOPES = ("function", "class")
#: The phase of a cell without its fault (only the fault's mark, if any).
CLEAN = "clean"


@dataclass(frozen=True)
class Fault:
    """One way a test or fixture goes wrong, and the code that does it."""

    name: str
    #: The statements, at the place of the fault.
    code: str
    #: The test's mark, for faults that are marks.
    mark: str = ""
    #: Whether the code awaits (then it cannot be in a sync fixture or finalizer).
    awaits: bool = False
    #: The phases where it can happen.
    phases: tuple[str, ...] = ("setup", "call", "teardown")
    #: The kinds of ``fx`` it is tried with.
    kinds: tuple[str, ...] = ("sync", "sync_yield", "async", "async_yield")
    #: The scopes of ``fx`` it is tried with.
    scopes: tuple[str, ...] = ("function", "class")
    #: What the bystander test, a sibling of every cell, does.
    bystander_body: str = "for _ in range(10):\n            await trio.sleep(0)"
    #: Whether ``fx`` runs a background task in a nursery around its ``yield``
    #: (``code`` tells it to crash).
    background: bool = False


#: The deadline and grace period of the batches whose faults wait for them;
#: the grace period is also what a busy machine's teardowns must fit in.
TIMEOUT = 0.5
GRACE = 2.0
#: A blocking call: past the deadline, within the grace period.
BLOCK = 0.6
WAITING = ("--trio-group-timeout", str(TIMEOUT), "--trio-group-teardown-timeout", str(GRACE))

#: What every fault says.
REASON = "fault"

FAULTS = {
    fault.name: fault
    for fault in (
        Fault("exception", 'raise ValueError("fault")'),
        Fault("fail", 'pytest.fail("fault")'),
        Fault("skip", 'pytest.skip("fault")'),
        Fault("xfail", 'pytest.xfail("fault")'),
        Fault("xfail_mark", 'raise ValueError("fault")', '@pytest.mark.xfail(reason="marked")'),
        Fault(
            "xfail_mark_strict",
            'raise ValueError("fault")',
            '@pytest.mark.xfail(reason="marked", strict=True)',
        ),
        Fault("system_exit", 'raise SystemExit("fault")'),
        Fault("base_exception", 'raise MatrixBaseException("fault")'),
        # The session stops: each cell runs in a session of its own, beside
        # a bystander that is still running when the interrupt comes.
        Fault(
            "keyboard_interrupt",
            'raise KeyboardInterrupt("fault")',
            bystander_body="await trio.sleep_forever()",
        ),
        # In teardown: a stuck teardown.
        Fault("timeout", "await trio.sleep_forever()", awaits=True),
        Fault(
            "swallowed_cancelled",
            "try:\n    await trio.sleep_forever()\nexcept trio.Cancelled:\n    pass",
            awaits=True,
        ),
        Fault("blocking", f"time.sleep({BLOCK})", scopes=("function",)),
        Fault(
            "background_crash",
            'CRASH["{key}"].set()\nawait trio.sleep_forever()',
            awaits=True,
            kinds=("async_yield",),
            background=True,
        ),
    )
}


@dataclass(frozen=True)
class Cell:
    """One fault, in one phase, of one fixture kind and scope."""

    fault: Fault
    phase: str
    kind: str
    scope: str

    @property
    def key(self) -> str:
        return f"{self.phase}_{self.kind}_{self.scope}"

    @property
    def nodeid(self) -> str:
        return f"test_{self.fault.name}.py::Test_{self.key}::test_it"

    @property
    def is_async(self) -> bool:
        return self.kind.startswith("async")

    @property
    def pytest_trio_refuses(self) -> bool:
        """pytest-trio runs async fixtures of function scope only."""
        return self.is_async and self.scope != "function"

    @property
    def twin(self) -> Cell:
        """The same cell with a function-scoped ``fx``.

        A cell's class holds one test, so by pytest's rules a class-scoped
        fixture is set up and torn down around that test exactly as a
        function-scoped one: its outcome is the twin's.
        """
        return Cell(self.fault, self.phase, self.kind, "function")

    def fault_code(self, phase: str) -> str:
        return self.fault.code.format(key=self.key) if phase == self.phase else ""


def expressible(fault: Fault, phase: str, kind: str) -> bool:
    """Whether the fault can happen there: code that awaits needs async code.

    The body of a test is async; the teardown of a fixture that does not
    yield is a (sync) finalizer.
    """
    if phase not in fault.phases or kind not in fault.kinds:
        return False
    if not fault.awaits or phase == "call":
        return True
    return kind == "async_yield" or (kind == "async" and phase == "setup")


def cells_of(fault: Fault) -> list[Cell]:
    """Every cell of ``fault``, and a clean cell of each kind: the same test without the fault."""
    return [
        Cell(fault, phase, kind, scope)
        for phase in PHASES
        for kind in KINDS
        for scope in fault.scopes
        if expressible(fault, phase, kind)
    ] + [Cell(fault, CLEAN, kind, "function") for kind in fault.kinds]


# -- the generated module -------------------------------------------------------

HEADER = """
import time

import pytest
import trio

pytestmark = pytest.mark.trio


def note(line):
    with open({log!r}, "a") as f:
        f.write(line + "\\n")


class MatrixBaseException(BaseException):
    pass


CRASH = {{}}


async def crash_when_told(told):
    await told.wait()
    raise RuntimeError("crash in a background task")


@pytest.fixture
def bystander_sync():
    note("bystander sync up")
    yield
    note("bystander sync down")


@pytest.fixture
async def bystander_async(bystander_sync):
    note("bystander async up")
    yield
    note("bystander async down")


class Test_bystander:
    async def test_it(self, bystander_async):
        {bystander_body}
"""


def _indent(code: str, spaces: int) -> str:
    return textwrap.indent(code, " " * spaces)


def _fixture(
    cell: Cell, name: str, kind: str, scope: str, deps: list[str], setup: str, teardown: str
) -> str:
    key = cell.key
    prefix = "async " if kind.startswith("async") else ""
    lines = [setup] if setup else []
    lines.append(f'note("{key} {name} up")')
    if kind.endswith("yield"):
        lines += ["yield 1", f'note("{key} {name} down")']
        if teardown:
            lines.append(teardown)
    else:
        lines += ["def fin():", f'    note("{key} {name} down")']
        if teardown:
            lines.append(_indent(teardown, 4))
        lines += ["request.addfinalizer(fin)", "return 1"]
    if name == "fx" and cell.fault.background:
        lines = [
            "async with trio.open_nursery() as nursery:",
            f'    CRASH["{key}"] = trio.Event()',
            f'    nursery.start_soon(crash_when_told, CRASH["{key}"])',
            _indent("\n".join(lines), 4),
            "    nursery.cancel_scope.cancel()",
        ]
        # A crash ends the fixture at its yield: its teardown is the nursery's close.
        lines[-2] = lines[-2].replace(
            "    yield 1\n    note(", "    try:\n        yield 1\n    finally:\n        note("
        )
    params = ", ".join(["request", *deps])
    return f'@pytest.fixture(scope="{scope}")\n{prefix}def {key}_{name}({params}):\n' + _indent(
        "\n".join(lines), 4
    )


def cell_source(cell: Cell) -> str:
    """The fixtures and the test class of one cell.

    ``outer`` and ``inner`` are of the other kind than ``fx`` (sync around
    async, async around sync), so that each cell also mixes kinds; a
    class-scoped ``fx`` needs an ``outer`` of its scope, kept sync so that
    pytest-trio can run the sync cells of that scope.
    """
    key = cell.key
    other = "sync_yield" if cell.is_async else "async_yield"
    outer_kind = other if cell.scope == "function" else "sync_yield"
    parts = [
        _fixture(cell, "outer", outer_kind, cell.scope, [], "", ""),
        _fixture(
            cell,
            "fx",
            cell.kind,
            cell.scope,
            [f"{key}_outer"],
            cell.fault_code("setup"),
            cell.fault_code("teardown"),
        ),
        _fixture(cell, "inner", other, "function", [f"{key}_fx"], "", ""),
    ]
    mark = _indent(cell.fault.mark + "\n", 4) if cell.fault.mark else ""
    body = _indent(cell.fault_code("call") + "\n" if cell.fault_code("call") else "", 8)
    parts.append(
        f"class Test_{key}:\n{mark}"
        f"    async def test_it(self, {key}_inner):\n{body}        await trio.sleep(0)"
    )
    return "\n\n\n".join(parts)


def module_source(cells: list[Cell], log: Path) -> str:
    header = HEADER.format(log=str(log), bystander_body=cells[0].fault.bystander_body)
    return "\n\n".join([header, *map(cell_source, cells)]) + "\n"


# -- running a module and reading what happened --------------------------------


@dataclass(frozen=True)
class Report:
    """What a user reads of one report: phase, outcome, xfail, and the error raised."""

    when: str
    outcome: str
    xfailed: bool
    #: ``Type: message`` of each exception raised (a group's leaves).
    errors: tuple[str, ...]


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _first_line(error: BaseException) -> str:
    """``Type: message``, first line; pytest's outcome exceptions keep theirs in ``msg``.

    On a busy machine a timeout's message may go on to say where the event
    loop was blocked (P8): what the matrix compares is the timeout itself.
    """
    message = str(getattr(error, "msg", None) or error).split("\n")[0]
    return f"{type(error).__name__}: {message.split('; the deadline ')[0]}"


class _ErrorRecorder:
    """Records the exception behind each report, which the report only shows as text."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str], tuple[str, ...]] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
        if call.excinfo is not None:
            self.errors[(item.nodeid, call.when)] = tuple(
                _first_line(leaf) for leaf in _leaves(call.excinfo.value)
            )
        return (yield)


@dataclass
class Run:
    """One run of a generated module."""

    ret: int | pytest.ExitCode
    reports: dict[str, tuple[Report, ...]]
    #: What the fixtures logged, by cell key: "outer up", "fx down", ...
    log: dict[str, list[str]]
    internal_errors: int
    collected: int


POLLUTED = "previous item was not torn down properly"


def run_module(pytester: pytest.Pytester, cells: list[Cell], *args: str) -> Run:
    log = pytester.path / f"log-{len(list(pytester.path.iterdir()))}"
    pytester.makepyfile(**{f"test_{cells[0].fault.name}": module_source(cells, log)})
    recorder = _ErrorRecorder()
    reprec = pytester.inline_run(
        "-p", "no:cacheprovider", *args, plugins=[recorder], no_reraise_ctrlc=True
    )
    assert reprec.ret != pytest.ExitCode.USAGE_ERROR
    reports: dict[str, list[Report]] = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        reports.setdefault(report.nodeid, []).append(
            Report(
                report.when,
                report.outcome,
                hasattr(report, "wasxfail"),
                recorder.errors.get((report.nodeid, report.when), ()),
            )
        )
    by_cell: dict[str, list[str]] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        key, what = line.split(" ", 1)
        by_cell.setdefault(key, []).append(what)
    return Run(
        reprec.ret,
        {nodeid: tuple(rs) for nodeid, rs in reports.items()},
        by_cell,
        len(reprec.getcalls("pytest_internalerror")),
        len(reprec.getcalls("pytest_itemcollected")),
    )


def grouped(pytester: pytest.Pytester, cells: list[Cell], *args: str) -> Run:
    """The module as one group, as ``trio_group_by = module`` makes it."""
    env = () if HAVE_PYTEST_TRIO else ("-p", "no:trio")
    return run_module(pytester, cells, *env, "-o", "trio_group_by=module", *args)


def alone(
    pytester: pytest.Pytester, cells: list[Cell], *args: str, select: tuple[str, ...] = ()
) -> Run:
    """The oracle: each test on its own.

    pytest-trio 0.8 with this plugin disabled; where pytest-trio is not
    installed (the pytest 8.4 job), this plugin's own runs of one trio test
    at a time. Cells pytest-trio refuses are left out (see ``Cell.twin``).
    """
    if HAVE_PYTEST_TRIO:
        cells = [cell for cell in cells if not cell.pytest_trio_refuses]
        # This plugin's options are unknown without it.
        env: tuple[str, ...] = ("-p", "no:trio_groups")
    else:
        env = ("-p", "no:trio", *args)
    run = run_module(pytester, cells, *env, *select)
    # pytest's own SetupState lets a BaseException that is not an Exception
    # (SystemExit...) out of a teardown with the collectors still on its
    # stack, so the next test errors at setup. Such a test is run again, on
    # its own, for its own outcome.
    for cell in cells:
        if cell.nodeid not in run.reports:
            continue
        setup = run.reports[cell.nodeid][0]
        if any(POLLUTED in error for error in setup.errors):
            again = run_module(pytester, cells, *env, cell.nodeid)
            run.reports[cell.nodeid] = again.reports[cell.nodeid]
            run.log[cell.key] = again.log.get(cell.key, [])
    return run


# -- what the reports and the log must be ---------------------------------------


def assert_one_set_of_reports(run: Run) -> None:
    """Every collected test: setup, call only if setup passed, teardown -- once each."""
    assert run.internal_errors == 0
    assert run.ret != pytest.ExitCode.INTERNAL_ERROR
    assert len(run.reports) == run.collected
    for nodeid, reports in run.reports.items():
        whens = [report.when for report in reports]
        setup_passed = reports[0].outcome == "passed"
        expected = ["setup", "call", "teardown"] if setup_passed else ["setup", "teardown"]
        assert whens == expected, nodeid


def set_up(run: Run, key: str) -> list[str]:
    """The fixtures of a cell that were set up, in order."""
    return [event.removesuffix(" up") for event in run.log.get(key, []) if event.endswith(" up")]


def assert_torn_down_in_reverse(run: Run, keys: list[str]) -> None:
    """Each fixture set up is torn down exactly once, the last set up first."""
    for key in keys:
        events = run.log.get(key, [])
        ups = set_up(run, key)
        downs = [event.removesuffix(" down") for event in events if event.endswith(" down")]
        assert downs == ups[::-1], (key, events)


def _with_reason(report: Report) -> Report:
    """Documented difference: pytest-trio re-raises a skip or xfail from its
    ``trio.run`` without the reason; here the reason is kept."""
    if report.errors in (("Skipped: ",), ("XFailed: ",)):
        return Report(report.when, report.outcome, report.xfailed, (report.errors[0] + REASON,))
    return report


def as_pytest_trio_reports(
    cell: Cell, reports: tuple[Report, ...], clean_call: Report
) -> tuple[Report, ...]:
    """pytest-trio's reports of a cell, moved to the phases where this plugin reports them.

    Documented difference (docs/howto/pytest-trio.rst): pytest-trio sets
    up and tears down its trio fixtures -- async fixtures and the sync
    fixtures over them -- inside the test's call, so what they raise is the
    call's outcome; here, as pytest reports any fixture, it is the outcome
    of the setup or teardown where it was raised, and a call that ran is
    reported as the clean cell's call (``clean_call``).
    """
    if not HAVE_PYTEST_TRIO:
        return reports
    reports = tuple(map(_with_reason, reports))
    if cell.phase not in ("setup", "teardown"):
        return reports
    by_when = {report.when: report for report in reports}
    call = by_when.get("call")
    if call is None or not call.errors:
        # Raised in pytest's own setup or teardown, where it is reported here too.
        return reports
    moved = Report(cell.phase, call.outcome, call.xfailed, call.errors)
    if cell.phase == "setup":
        return (moved, by_when["teardown"])
    return (by_when["setup"], clean_call, moved)


def assert_as_alone(cells: list[Cell], together: Run, oracle: Run) -> None:
    """Each cell's reports grouped are its reports alone (or the documented difference)."""
    mismatches = []
    for cell in cells:
        source = cell.twin if HAVE_PYTEST_TRIO and cell.pytest_trio_refuses else cell
        clean = Cell(cell.fault, CLEAN, cell.kind, "function")
        clean_call = next(r for r in oracle.reports[clean.nodeid] if r.when == "call")
        expected = as_pytest_trio_reports(cell, oracle.reports[source.nodeid], clean_call)
        if together.reports[cell.nodeid] != expected:
            mismatches.append((cell.key, together.reports[cell.nodeid], expected))
    assert not mismatches, "\n".join(map(repr, mismatches))
    bystander = f"test_{cells[0].fault.name}.py::Test_bystander::test_it"
    assert together.reports[bystander] == oracle.reports[bystander]


@pytest.mark.parametrize(
    "fault",
    [
        "exception",
        "fail",
        "skip",
        "xfail",
        "xfail_mark",
        "xfail_mark_strict",
        "system_exit",
        "base_exception",
    ],
)
def test_fault_that_raises(pytester: pytest.Pytester, fault: str) -> None:
    cells = cells_of(FAULTS[fault])
    together = grouped(pytester, cells, *RELAXED)
    oracle = alone(pytester, cells, *RELAXED)
    for run in (together, oracle):
        assert_one_set_of_reports(run)
    assert_torn_down_in_reverse(together, [cell.key for cell in cells] + ["bystander"])
    # The fixtures each test sets up alone are the ones it sets up grouped.
    # (Their teardowns are checked above: pytest itself skips the rest of a
    # collector's finalizers after a SystemExit or another BaseException.)
    for cell in cells:
        source = cell.twin if HAVE_PYTEST_TRIO and cell.pytest_trio_refuses else cell
        assert set_up(together, cell.key) == set_up(oracle, source.key), cell.key
    assert_as_alone(cells, together, oracle)


def failed_in(phase: str, error: str) -> tuple[Report, ...]:
    """A test's reports by pytest's rules when ``phase`` fails with ``error`` and nothing else does.

    A failed setup leaves out the call; the teardown always runs.
    """
    failed = Report(phase, "failed", False, (error,))
    if phase == "setup":
        return (failed, Report("teardown", "passed", False, ()))
    reports = [Report(when, "passed", False, ()) for when in PHASES]
    reports[PHASES.index(phase)] = failed
    return tuple(reports)


def test_timeout_and_stuck_teardown(pytester: pytest.Pytester) -> None:
    """pytest-trio has no deadline (the test would wait forever): the outcomes are P3's.

    The deadline fails the phase where the test waits; a stuck async
    teardown is cancelled at the end of the grace period.
    """
    cells = cells_of(FAULTS["timeout"])
    run = grouped(pytester, cells, *WAITING)
    assert_one_set_of_reports(run)
    assert_torn_down_in_reverse(run, [cell.key for cell in cells] + ["bystander"])
    timed_out = f"Failed: Timeout: test exceeded {TIMEOUT:g}s (trio_group 'test_timeout.py')"
    for cell in cells:
        if cell.phase == CLEAN:
            expected = tuple(Report(when, "passed", False, ()) for when in PHASES)
        elif cell.phase == "teardown":
            expected = failed_in(
                "teardown",
                f"Failed: Timeout: teardown of fixture '{cell.key}_fx' exceeded the"
                f" {GRACE:g}s grace period and was cancelled",
            )
        else:
            expected = failed_in(cell.phase, timed_out)
        assert run.reports[cell.nodeid] == expected, cell.key


def test_swallowed_cancelled(pytester: pytest.Pytester) -> None:
    """Code that catches the deadline's ``trio.Cancelled`` and goes on.

    pytest-trio has no deadline, so nothing would cancel it there. By P3 the
    phase is over when its deadline fires: a coroutine fixture or a test
    that swallows it still times out; an async generator fixture that
    yields or finishes anyway breaks trio's rule and says so by name.
    """
    cells = cells_of(FAULTS["swallowed_cancelled"])
    run = grouped(pytester, cells, *WAITING)
    assert_one_set_of_reports(run)
    assert_torn_down_in_reverse(run, [cell.key for cell in cells] + ["bystander"])
    timed_out = (
        f"Failed: Timeout: test exceeded {TIMEOUT:g}s (trio_group 'test_swallowed_cancelled.py')"
    )
    for cell in cells:
        fixture = f"async fixture '{cell.key}_fx' swallowed trio.Cancelled"
        if cell.phase == CLEAN:
            expected = tuple(Report(when, "passed", False, ()) for when in PHASES)
        elif cell.phase == "setup" and cell.kind == "async_yield":
            expected = failed_in(
                "setup",
                f"FixtureProtocolError: {fixture} during setup and yielded a value anyway;"
                " let trio.Cancelled propagate",
            )
        elif cell.phase == "teardown":
            expected = failed_in(
                "teardown",
                f"FixtureProtocolError: {fixture} during teardown"
                f" (it overran the {GRACE:g}s grace period)",
            )
        else:
            expected = failed_in(cell.phase, timed_out)
        assert run.reports[cell.nodeid] == expected, cell.key


def test_blocking_call_past_the_deadline(pytester: pytest.Pytester) -> None:
    """A sync call that blocks past the deadline (``time.sleep``): trio cannot interrupt it.

    pytest-trio has no deadline: there each test passes, only slower. Here
    (docs/howto/bounds.rst) the deadline takes effect at the test's next
    ``await``, in setup or call; a teardown is bounded by its grace period,
    not by the test's deadline, so a blocking teardown within it passes.
    Blocking holds up every member, so this group runs one test at a time
    (``--trio-group-limit 1``) to keep each deadline the blocked test's own.
    """
    cells = cells_of(FAULTS["blocking"])
    run = grouped(pytester, cells, *WAITING, "--trio-group-limit", "1")
    assert_one_set_of_reports(run)
    assert_torn_down_in_reverse(run, [cell.key for cell in cells] + ["bystander"])
    timed_out = f"Failed: Timeout: test exceeded {TIMEOUT:g}s (trio_group 'test_blocking.py')"
    for cell in cells:
        if cell.phase in (CLEAN, "teardown"):
            expected = tuple(Report(when, "passed", False, ()) for when in PHASES)
        else:
            expected = failed_in(cell.phase, timed_out)
        assert run.reports[cell.nodeid] == expected, cell.key


def test_crash_in_a_fixtures_background_task(pytester: pytest.Pytester) -> None:
    """A task in the nursery an async generator fixture holds open around its ``yield`` raises.

    pytest-trio cancels the test and fails it with that error; a
    class-scoped fixture (which pytest-trio refuses) fails the tests using
    it the same way.
    """
    cells = cells_of(FAULTS["background_crash"])
    together = grouped(pytester, cells, *WAITING)
    oracle = alone(pytester, cells, *WAITING)
    for run in (together, oracle):
        assert_one_set_of_reports(run)
    crashed_while_held = [c.key for c in cells if c.phase == "call"]
    assert_torn_down_in_reverse(
        together, [c.key for c in cells if c.key not in crashed_while_held] + ["bystander"]
    )
    # Documented difference (docs/howto/pytest-trio.rst): the crashed
    # fixture is finished when the crash happens -- its code after ``yield``
    # runs before the fixtures set up after it are torn down; pytest-trio
    # holds it at its yield until their teardown.
    alone_order = oracle.log["call_async_yield_function"]
    finished_early = [*set_up(oracle, "call_async_yield_function"), "fx down"]
    finished_early = [event if " " in event else f"{event} up" for event in finished_early]
    finished_early += [event for event in alone_order if event not in finished_early]
    for key in crashed_while_held:
        assert together.log[key] == finished_early, key
    for cell in cells:
        source = cell.twin if HAVE_PYTEST_TRIO and cell.pytest_trio_refuses else cell
        assert set_up(together, cell.key) == set_up(oracle, source.key), cell.key
    assert_as_alone(cells, together, oracle)


def test_keyboard_interrupt(pytester: pytest.Pytester) -> None:
    """``KeyboardInterrupt`` raised in a phase: the session stops, as for the test alone.

    Alone, the reports made before the interrupt stay and the interrupted
    phase is not reported (pytest's rule); grouped, the same, and the
    running sibling is cancelled, reported as such, and torn down (P3).
    """
    fault = FAULTS["keyboard_interrupt"]
    cells = [cell for cell in cells_of(fault) if cell.phase != CLEAN]
    clean_cells = [cell for cell in cells_of(fault) if cell.phase == CLEAN]
    clean = alone(pytester, clean_cells, *RELAXED, select=tuple(c.nodeid for c in clean_cells))
    bystander = "test_keyboard_interrupt.py::Test_bystander::test_it"
    mismatches = []
    for cell in cells:
        # A module of the cell and the bystander alone: each run is short.
        together = grouped(pytester, [cell], *RELAXED)
        assert together.ret == pytest.ExitCode.INTERRUPTED, cell.key
        assert together.internal_errors == 0, cell.key
        assert set(together.reports) <= {bystander, cell.nodeid}, cell.key
        assert_torn_down_in_reverse(together, [cell.key, "bystander"])
        # Cancelled in its setup or its call, wherever the interrupt found it.
        cancelled = Report(
            "setup", "skipped", False, (f"Skipped: cancelled: KeyboardInterrupt in {cell.nodeid}",)
        )
        passed = {when: Report(when, "passed", False, ()) for when in PHASES}
        assert together.reports[bystander] in (
            (cancelled, passed["teardown"]),
            (passed["setup"], replace(cancelled, when="call"), passed["teardown"]),
        ), cell.key
        source = cell.twin if HAVE_PYTEST_TRIO and cell.pytest_trio_refuses else cell
        oracle = alone(pytester, [source], *RELAXED, select=(source.nodeid,))
        # Documented difference (docs/howto/pytest-trio.rst): pytest-trio
        # turns a KeyboardInterrupt raised inside its trio.run into the
        # test's failure and goes on; here it stops the session, as pytest
        # does for one raised in its own setup or teardown.
        assert oracle.ret in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.TESTS_FAILED)
        assert set_up(together, cell.key) == set_up(oracle, source.key), cell.key
        clean_call = next(
            r
            for r in clean.reports[cell.nodeid.replace(cell.key, f"{CLEAN}_{cell.kind}_function")]
            if r.when == "call"
        )
        moved = as_pytest_trio_reports(cell, oracle.reports.get(source.nodeid, ()), clean_call)
        # The phases before the interrupt are reported; it and those after it are not.
        expected = tuple(r for r in moved if PHASES.index(r.when) < PHASES.index(cell.phase))
        if together.reports.get(cell.nodeid, ()) != expected:
            mismatches.append((cell.key, together.reports.get(cell.nodeid), expected))
    assert not mismatches, "\n".join(map(repr, mismatches))


# -- the divergences the matrix found, each shown alone ---------------------------


def test_deadline_passed_while_blocked_is_a_timeout_not_a_swallowed_cancellation(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.fixture
        def slow_sync():
            time.sleep(0.3)

        @pytest.fixture
        async def resource(slow_sync):
            yield 1

        @pytest.mark.trio_group("g", timeout=0.1)
        async def test_it(resource):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_it _*",
            "Timeout: test exceeded 0.1s (trio_group 'g')",
        ]
    )
    result.stdout.no_fnmatch_line("*FixtureProtocolError*")
    result.stdout.no_fnmatch_line("*pytest_trio_groups*")


def test_coroutine_fixture_that_swallows_the_deadline_times_out_at_setup(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        import trio

        LOG = []

        @pytest.fixture
        async def swallower():
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                pass
            return 1

        @pytest.mark.trio_group("g", timeout=0.1)
        async def test_it(swallower):
            LOG.append("call ran")

        @pytest.mark.trio_group("g", timeout=0.1)
        async def test_swallows_in_its_body():
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                pass

        def test_after():
            assert LOG == []
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_it _*",
            "Timeout: test exceeded 0.1s (trio_group 'g')",
            "*_ test_swallows_in_its_body _*",
            "Timeout: test exceeded 0.1s (trio_group 'g')",
        ]
    )
    result.stdout.no_fnmatch_line("*pytest_trio_groups*")


def test_crash_in_a_class_scoped_fixtures_task_fails_the_tests_using_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        import trio

        async def crash_when_told(told):
            await told.wait()
            raise RuntimeError("the service crashed")

        @pytest.fixture(scope="class")
        async def service():
            async with trio.open_nursery() as nursery:
                told = trio.Event()
                nursery.start_soon(crash_when_told, told)
                yield told

        class TestService:
            @pytest.mark.trio_group("g", timeout=30)
            async def test_crashes_it(self, service):
                service.set()
                await trio.sleep_forever()

            @pytest.mark.trio_group("g", timeout=30)
            async def test_waits_on_it(self, service):
                await trio.sleep_forever()

        @pytest.mark.trio_group("g", timeout=30)
        async def test_sibling():
            await trio.sleep(0)
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*::test_sibling PASSED*"])
    for test in ("test_crashes_it", "test_waits_on_it"):
        result.stdout.fnmatch_lines(
            [f"*_ TestService.{test} _*", "*RuntimeError: the service crashed"]
        )
    result.stdout.no_fnmatch_line("*Timeout*")
