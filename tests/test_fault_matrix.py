"""The fault matrix: each fault, in each phase and fixture kind, grouped and run alone (P2-P4, P6).

Every cell is one test class of a generated module: a chain of three
fixtures -- ``outer``, the faulting ``fx``, ``inner`` -- and a test that
requests ``inner``; the fault happens in ``fx``'s setup, in the test's body
or in ``fx``'s teardown. One module holds every cell of one fault kind. It
is run once grouped (every test of the module one group) and once by the
oracle, which runs each test on its own: pytest-trio 0.8 with this plugin
disabled where pytest-trio is installed, else this plugin's own
ungrouped runs. Each cell's reports must be the oracle's, or the
documented difference, and every fixture set up must be torn down exactly
once, in reverse order.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import HAVE_PYTEST_TRIO

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

# A regression that hangs a generated run fails the whole suite here instead
# of stalling it (pytest-timeout is in the test extra).
HANG_BOUND = 120

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
        return self.fault.code if phase == self.phase else ""


def expressible(fault: Fault, phase: str, kind: str) -> bool:
    """Whether the fault can happen there: code that awaits needs async code.

    The body of a test is async; the teardown of a fixture that does not
    yield is a (sync) finalizer.
    """
    if not fault.awaits or phase == "call":
        return True
    return kind == "async_yield" or (kind == "async" and phase == "setup")


def cells_of(fault: Fault) -> list[Cell]:
    """Every cell of ``fault``, and a clean cell of each kind: the same test without the fault."""
    return [
        Cell(fault, phase, kind, scope)
        for phase in PHASES
        for kind in KINDS
        for scope in SCOPES
        if expressible(fault, phase, kind)
    ] + [Cell(fault, CLEAN, kind, "function") for kind in KINDS]


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
        for _ in range(10):
            await trio.sleep(0)
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
    return "\n\n".join([HEADER.format(log=str(log)), *map(cell_source, cells)]) + "\n"


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


class _ErrorRecorder:
    """Records the exception behind each report, which the report only shows as text."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str], tuple[str, ...]] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
        if call.excinfo is not None:
            self.errors[(item.nodeid, call.when)] = tuple(
                # pytest's outcome exceptions keep their message in ``msg``.
                f"{type(leaf).__name__}: {getattr(leaf, 'msg', None) or leaf}".split("\n")[0]
                for leaf in _leaves(call.excinfo.value)
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


def alone(pytester: pytest.Pytester, cells: list[Cell], *args: str) -> Run:
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
    run = run_module(pytester, cells, *env)
    # pytest's own SetupState lets a BaseException that is not an Exception
    # (SystemExit...) out of a teardown with the collectors still on its
    # stack, so the next test errors at setup. Such a test is run again, on
    # its own, for its own outcome.
    for cell in cells:
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


@pytest.mark.timeout(HANG_BOUND, method="thread")
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
