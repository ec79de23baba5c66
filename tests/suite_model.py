"""Generated test suites: their model, their files, and what a run of them shows."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

SCOPES = ("function", "class", "module", "session")
FIXTURE_KINDS = ("sync", "sync_yield", "async", "async_yield")

#: Faults a fixture's setup can have; the timing ones need an async fixture
#: and a test deadline.
SETUP_FAULTS = ("raise", "fail", "skip", "timeout", "swallow")
TEARDOWN_FAULTS = ("raise", "fail", "stuck")
TEST_FAULTS = ("raise", "fail", "skip", "xfail", "timeout", "swallow")
TIMING_FAULTS = frozenset({"timeout", "swallow"})
#: Faults only an async test can have: a task it started crashes, in a
#: nursery of its own or in the ``nursery`` fixture's.
BACKGROUND_FAULTS = ("background", "nursery")
#: A test that takes a while, for a Ctrl-C to land in; and a sync fixture
#: whose teardown raises ``KeyboardInterrupt``.
SLOW = "slow"
INTERRUPT = "interrupt"
SLOW_SECONDS = 0.3

#: A deadline that fires: long enough for a fixture chain to set up, short
#: enough that a run alone test after test stays quick.
SHORT_TIMEOUT = 0.3
#: A deadline that never fires, however loaded the machine.
LONG_TIMEOUT = 60
TEARDOWN_GRACE = 0.3

#: Plugins a generated suite has nothing to do with; blocked so that each
#: run starts faster.
UNRELATED_PLUGINS = (
    "hypothesispytest",
    "xdist",
    "xdist.looponfail",
    "pytest_cov",
    "pytest_mock",
    "rerunfailures",
    "timeout",
)

#: A run that takes longer than this hangs.
HANG_BOUND = 120
#: A Ctrl-C stops the tests within this many seconds.
STOP_BOUND = 1.0


@dataclass(frozen=True)
class FixtureSpec:
    name: str
    kind: str
    scope: str
    deps: tuple[str, ...]
    setup_fault: str | None = None
    teardown_fault: str | None = None

    @property
    def is_async(self) -> bool:
        return self.kind.startswith("async")


@dataclass(frozen=True)
class CaseSpec:
    name: str
    module: int
    in_class: bool
    is_async: bool
    #: ``None``: not in a named group (an async test then runs on its own).
    group: str | None
    fixtures: tuple[str, ...]
    fault: str | None = None
    #: ``None``, ``"strict"`` or ``"lax"``: an ``xfail`` mark.
    xfail: str | None = None


@dataclass(frozen=True)
class Suite:
    fixtures: tuple[FixtureSpec, ...]
    tests: tuple[CaseSpec, ...]
    limit: int | None = None

    def fixture(self, name: str) -> FixtureSpec:
        return next(f for f in self.fixtures if f.name == name)

    def closure(self, names: tuple[str, ...]) -> list[FixtureSpec]:
        """The fixtures ``names`` need, each once, dependencies first."""
        seen: dict[str, FixtureSpec] = {}

        def visit(name: str) -> None:
            if name in seen:
                return
            spec = self.fixture(name)
            for dep in spec.deps:
                visit(dep)
            seen[name] = spec

        for name in names:
            visit(name)
        return list(seen.values())

    def needs_deadline(self, test: CaseSpec) -> bool:
        """Whether the test's own deadline has to fire for it to end."""
        return test.fault in TIMING_FAULTS or any(
            f.setup_fault in TIMING_FAULTS for f in self.closure(test.fixtures)
        )

    def nodeid(self, test: CaseSpec) -> str:
        cls = "TestC::" if test.in_class else ""
        return f"test_m{test.module}.py::{cls}{test.name}"


# -- the files ----------------------------------------------------------------

_CONFTEST_HEAD = """\
import collections
import json
import time
import pytest
import trio

LOG = {log!r}
REPORTS = {reports!r}
_counts = collections.Counter()


def pytest_keyboard_interrupt(excinfo):
    note("interrupted")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    note(f"finish {{time.monotonic()}}")


def pytest_runtest_logreport(report):
    with open(REPORTS, "a") as f:
        entry = {{
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "xfail": hasattr(report, "wasxfail"),
            "text": report.longreprtext,
        }}
        f.write(json.dumps(entry) + "\\n")


def note(line):
    with open(LOG, "a") as f:
        f.write(line + "\\n")


def token(name, request):
    key = f"{{name}}@{{request.node.nodeid}}"
    _counts[key] += 1
    return f"{{key}}#{{_counts[key]}}"


def fault(where, kind):
    if kind == "interrupt":
        raise KeyboardInterrupt
    if kind == "slow":
        time.sleep({slow})
    if kind == "raise":
        raise RuntimeError(f"FAULT[{{where}}]")
    if kind == "fail":
        pytest.fail(f"FAULT[{{where}}]")
    if kind == "skip":
        pytest.skip(f"FAULT[{{where}}]")
    if kind == "xfail":
        pytest.xfail(f"FAULT[{{where}}]")


async def crash(where):
    await trio.sleep(0)
    raise RuntimeError(f"FAULT[{{where}}]")


async def afault(where, kind):
    if kind == "slow":
        await trio.sleep({slow})
    elif kind == "background":
        async with trio.open_nursery() as nursery:
            nursery.start_soon(crash, where)
            await trio.sleep_forever()
    elif kind == "timeout":
        await trio.sleep_forever()
    elif kind == "swallow":
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            pass
    elif kind == "stuck":
        await trio.sleep_forever()
    else:
        fault(where, kind)
"""


def _fixture_source(spec: FixtureSpec) -> str:
    params = ", ".join(("request", *spec.deps))
    deps = " + ".join(f"[{d}]" for d in spec.deps) or "[]"
    head = f"@pytest.fixture(scope={spec.scope!r})\n"
    setup_fault = (
        ""
        if spec.setup_fault is None
        else f"    {'await a' if spec.is_async else ''}fault({spec.name + ':setup'!r}, {spec.setup_fault!r})\n"
    )
    teardown_call = (
        ""
        if spec.teardown_fault is None
        else f"{'await a' if spec.kind == 'async_yield' else ''}fault({spec.name + ':teardown'!r}, {spec.teardown_fault!r})"
    )
    start = f"    t = token({spec.name!r}, request)\n    note(f'try {{t}}')\n"
    if spec.is_async:
        start = "    await trio.sleep(0)\n" + start
    up = f"    note(f'up {{t}} ' + ','.join({deps}))\n"
    if spec.kind in ("sync", "async"):
        body = (
            "    def fin():\n"
            "        note(f'down {t}')\n"
            + (f"        {teardown_call}\n" if teardown_call else "")
            + "    request.addfinalizer(fin)\n"
            "    return t\n"
        )
    else:
        # Logged as soon as the teardown begins: a stuck fixture torn down
        # before this one may use up the test's grace period, and this one
        # is then cancelled at its first checkpoint (docs/howto/timeouts.rst).
        body = "    yield t\n    note(f'down {t}')\n"
        if spec.kind == "async_yield":
            body += "    await trio.sleep(0)\n"
        if teardown_call:
            body += f"    {teardown_call}\n"
    definition = "async def" if spec.is_async else "def"
    return f"{head}{definition} {spec.name}({params}):\n{start}{setup_fault}{up}{body}"


def _mark(suite: Suite, test: CaseSpec, mode: str) -> str:
    """``mode``: ``grouped``, ``alone`` (each test a group of its own) or ``pytest-trio``."""
    if not test.is_async:
        return ""
    if mode == "pytest-trio":
        return "@pytest.mark.trio\n"
    timeout = SHORT_TIMEOUT if suite.needs_deadline(test) else LONG_TIMEOUT
    if mode == "grouped" and test.group is not None:
        return f"@pytest.mark.trio_group({test.group!r}, timeout={timeout})\n"
    return f"@pytest.mark.trio_group(timeout={timeout})\n"


def _test_source(suite: Suite, test: CaseSpec, mode: str) -> str:
    nursery = ["nursery"] if test.fault == "nursery" else []
    params = ", ".join((*(["self"] if test.in_class else []), "request", *test.fixtures, *nursery))
    direct = " + ".join(f"[{f}]" for f in test.fixtures) or "[]"
    source = _mark(suite, test, mode)
    if test.xfail is not None:
        source += f"@pytest.mark.xfail(strict={test.xfail == 'strict'}, reason='expected')\n"
    where = f"{test.name}:call"
    if test.is_async:
        source += f"async def {test.name}({params}):\n    await trio.sleep(0)\n"
    else:
        source += f"def {test.name}({params}):\n"
    source += f"    note(f'call {{request.node.nodeid}} ' + ','.join({direct}))\n"
    if test.fault == "nursery":
        source += f"    nursery.start_soon(crash, {where!r})\n    await trio.sleep_forever()\n"
    elif test.fault is not None:
        prefix = "await a" if test.is_async else ""
        source += f"    {prefix}fault({where!r}, {test.fault!r})\n"
    source += "    note(f'done {request.node.nodeid}')\n"
    return source


def write_suite(suite: Suite, directory: Path, mode: str) -> dict[str, str]:
    """Write ``suite`` as a user would into ``directory``; return the files' text by name."""
    log = directory / "log"
    files = {
        "conftest.py": _CONFTEST_HEAD.format(
            log=str(log), reports=str(directory / "reports"), slow=SLOW_SECONDS
        )
        + "".join("\n\n" + _fixture_source(f) for f in suite.fixtures),
        # Its own rootdir, whatever lies above it.
        "pytest.ini": "[pytest]\n",
    }
    modules = sorted({t.module for t in suite.tests})
    for module in modules:
        tests = [t for t in suite.tests if t.module == module]
        source = "import pytest\nimport trio\nfrom conftest import afault, crash, fault, note\n"
        for test in (t for t in tests if not t.in_class):
            source += "\n\n" + _test_source(suite, test, mode)
        in_class = [t for t in tests if t.in_class]
        if in_class:
            source += "\n\nclass TestC:\n"
            for test in in_class:
                source += "\n" + textwrap.indent(_test_source(suite, test, mode), "    ")
        files[f"test_m{module}.py"] = source
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return files


# -- a run, and what it shows -------------------------------------------------


@dataclass(frozen=True)
class PhaseReport:
    """One report of one test, as the suite's conftest wrote it down."""

    when: str
    outcome: str
    xfail: bool
    #: The faults its text names.
    faults: frozenset[str]


@dataclass
class Run:
    ret: int
    output: str
    #: Per test: the ``testcase`` elements' outcomes in junitxml.
    junit: dict[str, list[str]]
    #: Per test: its reports, in the order they were made.
    reports: dict[str, list[PhaseReport]]
    log: list[str]
    #: When a Ctrl-C was sent (``time.monotonic()``), if one was.
    interrupted_at: float | None = None


_FAULT = re.compile(r"FAULT\[\w+:\w+\]")
_GRACE = re.compile(r"teardown of fixture '(\w+)' exceeded")
_TEARDOWN_WARNING = re.compile(r"error while tearing down after .*")


def faults_named(text: str) -> set[str]:
    """The faults a report's text names, including the plugin's own errors."""
    found = set(_FAULT.findall(text))
    found.update(f"GRACE[{name}]" for name in _GRACE.findall(text))
    if "Timeout: test exceeded" in text:
        found.add("TIMEOUT")
    if "FixtureProtocolError" in text:
        found.add("PROTOCOL")
    return found


def _category(case: ET.Element) -> str:
    for child in case:
        if child.tag == "skipped":
            return "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        if child.tag == "failure":
            return "failed"
        if child.tag == "error":
            message = child.get("message") or ""
            if message.startswith("failed on teardown"):
                return "teardown-error"
            if message.startswith("failed on setup"):
                return "setup-error"
            return "error"
    return "passed"


def read_junit(path: Path) -> dict[str, list[str]]:
    cases: dict[str, list[str]] = defaultdict(list)
    for case in ET.parse(path).getroot().iter("testcase"):
        module, _, cls = case.get("classname", "").partition(".")
        cases[f"{module}.py::{cls + '::' if cls else ''}{case.get('name')}"].append(_category(case))
    return dict(cases)


def read_reports(path: Path) -> dict[str, list[PhaseReport]]:
    reports: dict[str, list[PhaseReport]] = defaultdict(list)
    for line in path.read_text().splitlines() if path.exists() else []:
        entry = json.loads(line)
        reports[entry["nodeid"]].append(
            PhaseReport(
                entry["when"],
                entry["outcome"],
                entry["xfail"],
                frozenset(faults_named(entry["text"])),
            )
        )
    return dict(reports)


def run_pytest(directory: Path, *args: str, interrupt_after: float | None = None) -> Run:
    """Run pytest on ``directory`` in a subprocess; ``interrupt_after``: send it a
    SIGINT (a Ctrl-C) that many seconds after its first test has started."""
    junit = directory / "junit.xml"
    log_path = directory / "log"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    blocked = [arg for name in UNRELATED_PLUGINS for arg in ("-p", f"no:{name}")]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        *blocked,
        "-rA",
        # (Not when interrupted: a KeyboardInterrupt that lands in pytest's
        # junitxml plugin breaks its file, or its session finish.)
        *([f"--junitxml={junit}"] if interrupt_after is None else []),
        *args,
    ]
    with subprocess.Popen(
        command,
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        # Read as it comes, so that the run never waits on a full pipe.
        chunks: list[str] = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(proc.stdout.readline, "")))
        reader.start()
        sent = None if interrupt_after is None else _interrupt(proc, log_path, interrupt_after)
        try:
            proc.wait(timeout=HANG_BOUND)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            reader.join()
        output = "".join(chunks)
    log = log_path.read_text().splitlines() if log_path.exists() else []
    cases = read_junit(junit) if junit.exists() else {}
    return Run(proc.returncode, output, cases, read_reports(directory / "reports"), log, sent)


def _interrupt(proc: subprocess.Popen[str], log_path: Path, delay: float) -> float | None:
    """Send a SIGINT ``delay`` seconds after the run logs its first line; when it was sent."""
    deadline = time.monotonic() + HANG_BOUND
    while proc.poll() is None and time.monotonic() < deadline:
        if log_path.exists() and log_path.stat().st_size:
            time.sleep(delay)
            if proc.poll() is not None:
                return None
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            return sent
        time.sleep(0.005)
    return None


# -- what must hold of every run ----------------------------------------------


@dataclass
class Lifecycle:
    """The fixture set-ups, teardowns and calls a run's log shows, by line number."""

    ups: dict[str, tuple[int, list[str]]]
    downs: dict[str, list[int]]
    calls: dict[str, tuple[int, list[str]]]
    #: The tests whose body returned.
    done: set[str]
    #: When the session began to finish (``time.monotonic()``).
    finish: float | None = None


def read_log(lines: list[str]) -> Lifecycle:
    life = Lifecycle({}, defaultdict(list), {}, set())
    for index, line in enumerate(lines):
        what, _, rest = line.partition(" ")
        name, _, listed = rest.partition(" ")
        tokens = [t for t in listed.split(",") if t]
        if what == "up":
            assert name not in life.ups, f"{name} set up twice"
            life.ups[name] = (index, tokens)
        elif what == "down":
            life.downs[name].append(index)
        elif what == "call":
            assert name not in life.calls, f"{name} called twice"
            life.calls[name] = (index, tokens)
        elif what == "done":
            life.done.add(name)
        elif what == "finish":
            life.finish = float(name)
    return life


def owner(token: str) -> str:
    """The node a fixture instance belongs to (``name@nodeid#n`` -> ``nodeid``)."""
    return token.partition("@")[2].rpartition("#")[0]


def fixture_name(token: str) -> str:
    return token.partition("@")[0]


def check_run(suite: Suite, run: Run, *, in_reverse: bool = True) -> Lifecycle:
    """What holds of any run, grouped or not: assert it; return its lifecycle.

    ``in_reverse``: also that each test's own fixtures are torn down in the
    reverse order of their setup (pytest-trio sets up independent async
    fixtures at the same time, so their order is not one).
    """
    assert "INTERNALERROR" not in run.output, run.output
    assert run.ret in (0, 1), run.output
    expected = {suite.nodeid(t) for t in suite.tests}
    assert set(run.junit) == expected, (sorted(run.junit), sorted(expected), run.output)
    for nodeid, cases in run.junit.items():
        # Two testcase elements only for a failed call followed by a teardown error.
        assert cases in ([cases[0]], ["failed", "teardown-error"]), (nodeid, cases)
    assert set(run.reports) == expected, (sorted(run.reports), sorted(expected), run.output)
    for nodeid, phases in run.reports.items():
        whens = [p.when for p in phases]
        setup_passed = phases[0].outcome == "passed"
        assert whens == (
            ["setup", "call", "teardown"] if setup_passed else ["setup", "teardown"]
        ), (
            nodeid,
            phases,
        )
    _check_each_fault_reported_once(suite, run)
    life = read_log(run.log)
    for token, downs in life.downs.items():
        assert token in life.ups, f"{token} torn down but never set up"
        assert len(downs) == 1, f"{token} torn down {len(downs)} times"
    for token, (up, deps) in life.ups.items():
        assert token in life.downs, f"{token} set up but never torn down\n" + "\n".join(run.log)
        down = life.downs[token][0]
        assert up < down
        for dep in deps:
            assert life.downs[dep][0] > down, f"{dep} torn down before {token}, which uses it"
    for nodeid, (index, direct) in life.calls.items():
        for token in _closure(life, direct):
            assert life.ups[token][0] < index < life.downs[token][0], (
                f"{token} not alive while {nodeid} ran\n" + "\n".join(run.log)
            )
    by_owner: dict[str, list[str]] = defaultdict(list)
    for token in sorted(life.ups, key=lambda t: life.ups[t][0]):
        by_owner[owner(token)].append(token)
    for nodeid in expected if in_reverse else ():
        mine = by_owner.get(nodeid, [])
        downs = [life.downs[t][0] for t in mine]
        assert downs == sorted(downs, reverse=True), (
            f"{nodeid}'s fixtures not torn down in reverse order\n" + "\n".join(run.log)
        )
    _check_teardown_faults_shown(suite, run, life)
    return life


def _check_each_fault_reported_once(suite: Suite, run: Run) -> None:
    """A test's own fault (a background crash too) fails its call, not its teardown as well."""
    for test in suite.tests:
        phases = run.reports.get(suite.nodeid(test), [])
        own = f"FAULT[{test.name}:call]"
        told = [phase.when for phase in phases if own in phase.faults]
        assert len(told) <= 1, (suite.nodeid(test), phases, run.output)


_SUMMARY_LINE = re.compile(r"=+ .* in [\d.]+s\b.* =+")


def _in_pytest(output: str) -> bool:
    """Whether pytest says the KeyboardInterrupt came in its own or pluggy's code."""
    return any(
        f"{os.sep}_pytest{os.sep}" in where or f"{os.sep}pluggy{os.sep}" in where
        for where in _interrupt_banner_location(output)
    )


def _interrupted_exit_statuses(output: str) -> tuple[int, ...]:
    """The exit statuses of a run that pytest says a KeyboardInterrupt stopped.

    2 (``ExitCode.INTERRUPTED``); or, when the KeyboardInterrupt landed in
    code compiled from a string (pytest shows it at ``<string>:0``, as when
    a ``dataclass`` decorator makes a class's methods while a module of
    pytest's, a plugin's or the plugin's own is imported), death by SIGINT: CPython (3.11 here) marks a
    KeyboardInterrupt that leaves an ``exec`` of a string as unhandled, even
    when pytest catches it, until another ``exec`` or ``eval`` of a string
    clears the mark; ``python -m`` then ends the process with SIGINT after
    pytest's summary.
    """
    if any(line.startswith("<string>:") for line in _interrupt_banner_location(output)):
        return (2, -signal.SIGINT)
    return (2,)


def _interrupt_banner_location(output: str) -> list[str]:
    """The line after pytest's ``KeyboardInterrupt`` banner: where it says the interrupt landed."""
    lines = output.splitlines()
    return [
        lines[index + 1]
        for index, line in enumerate(lines[:-1])
        if line.startswith("!!!") and "KeyboardInterrupt" in line
    ][:1]


def check_interrupted(suite: Suite, run: Run) -> None:
    """What holds of a run that a KeyboardInterrupt may have stopped: nothing lost, nothing twice.

    It comes from a sync fixture's teardown (``INTERRUPT``), or from a
    Ctrl-C sent at a random moment. pytest stops at the first one, as it does
    without groups: later tests get no report, the interrupted one keeps
    the reports of the phases before it.
    """
    assert "INTERNALERROR" not in run.output, run.output
    life = read_log(run.log)
    interrupted = "interrupted" in run.log
    raisers = {f.name for f in suite.fixtures if f.teardown_fault == INTERRUPT}
    if any(fixture_name(token) in raisers for token in life.downs):
        assert interrupted, f"a KeyboardInterrupt in a teardown did not stop the run\n{run.output}"
    sent = run.interrupted_at
    if sent is not None and life.finish is not None and life.finish > sent + STOP_BOUND:
        assert interrupted, f"a Ctrl-C during the tests did not stop the run\n{run.output}"
    if (interrupted or sent is None) and not (sent is not None and _in_pytest(run.output)):
        # (A Ctrl-C that lands after pytest's session, in its summary or
        # exit, or in pytest's and pluggy's own code -- where a hook wrapper
        # of pytest's may be left half done -- is pytest's own business.)
        if interrupted:
            assert run.ret in _interrupted_exit_statuses(run.output), run.output
            assert "KeyboardInterrupt" in run.output, run.output
        else:
            assert run.ret in (0, 1), run.output
        last = [line for line in run.output.splitlines() if line.strip()][-1]
        assert _SUMMARY_LINE.fullmatch(last), f"the run does not end with its summary\n{run.output}"
    for nodeid, phases in run.reports.items():
        whens = [p.when for p in phases]
        full = (
            ["setup", "call", "teardown"]
            if phases[0].outcome == "passed"
            else ["setup", "teardown"]
        )
        assert whens == full[: len(whens)], (nodeid, phases, run.output)
    for token, downs in life.downs.items():
        assert token in life.ups, f"{token} torn down but never set up"
        assert len(downs) == 1, f"{token} torn down {len(downs)} times"
    if sent is None:
        for nodeid in life.done:
            whens = [p.when for p in run.reports.get(nodeid, [])]
            assert whens[:2] == ["setup", "call"], (
                f"{nodeid} ran to its end but has no call report\n{run.output}"
            )


def _closure(life: Lifecycle, tokens: list[str]) -> set[str]:
    todo, seen = list(tokens), set()
    while todo:
        token = todo.pop()
        if token not in seen:
            seen.add(token)
            todo.extend(life.ups[token][1])
    return seen


def _check_teardown_faults_shown(suite: Suite, run: Run, life: Lifecycle) -> None:
    """Every teardown fault that ran is reported: at some test's teardown, or as a warning."""
    shown: Counter[str] = Counter()
    for phases in run.reports.values():
        for phase in phases:
            shown.update(phase.faults)
    warnings = "\n".join(_TEARDOWN_WARNING.findall(run.output))
    for token in life.downs:
        spec = suite.fixture(fixture_name(token))
        if spec.teardown_fault is None:
            continue
        fault = (
            f"GRACE[{spec.name}]"
            if spec.teardown_fault == "stuck"
            else f"FAULT[{spec.name}:teardown]"
        )
        named_in_warning = fault in faults_named(warnings) or (
            spec.teardown_fault == "stuck" and spec.name in warnings
        )
        assert shown[fault] or named_in_warning, f"{fault} of {token} never reported\n{run.output}"


# -- comparing a grouped run with the same tests run one at a time ------------


def is_per_test(spec: FixtureSpec, test: CaseSpec) -> bool:
    return spec.scope == "function" or (spec.scope == "class" and not test.in_class)


def normalized(suite: Suite, run: Run) -> dict[str, list[PhaseReport]]:
    """Each test's reports, without those that only tell of fixtures not its own.

    A wider-scoped fixture's teardown error belongs to whichever test's
    teardown ends that scope, whether it uses the fixture or not: in a
    group, the member that finishes last (see docs/howto/fixtures.rst); one
    at a time, the last in file order.
    Passed setups and teardowns tell nothing either.
    """
    result = {}
    for test in suite.tests:
        nodeid = suite.nodeid(test)
        own = {spec.name for spec in suite.closure(test.fixtures) if is_per_test(spec, test)}
        floating = {
            fault
            for spec in suite.fixtures
            if spec.name not in own
            for fault in (f"FAULT[{spec.name}:teardown]", f"GRACE[{spec.name}]")
        }
        kept = []
        for phase in run.reports[nodeid]:
            if phase.when == "teardown":
                if phase.outcome == "passed" or (phase.faults and phase.faults <= floating):
                    continue
                phase = PhaseReport(phase.when, phase.outcome, phase.xfail, phase.faults - floating)
            elif phase.when == "setup" and phase.outcome == "passed":
                continue
            kept.append(phase)
        result[nodeid] = kept
    return result


def per_test_fixtures(life: Lifecycle) -> dict[str, list[str]]:
    """For each test: the fixture instances it got, as name@owner (not counting instances)."""
    return {
        nodeid: [f"{fixture_name(t)}@{owner(t)}" for t in direct]
        for nodeid, (_, direct) in life.calls.items()
    }


def per_test_setups(suite: Suite, life: Lifecycle) -> dict[str, list[str]]:
    """For each test: the names of its own fixtures set up, in order."""
    nodeids = {suite.nodeid(t) for t in suite.tests}
    result: dict[str, list[str]] = defaultdict(list)
    for token in sorted(life.ups, key=lambda t: life.ups[t][0]):
        if owner(token) in nodeids:
            result[owner(token)].append(fixture_name(token))
    return dict(result)


def describe(files: dict[str, str]) -> str:
    return "\n".join(f"--- {name}\n{text}" for name, text in files.items())


def without_skip_reasons(
    outcomes: dict[str, list[PhaseReport]],
) -> dict[str, list[PhaseReport]]:
    """``outcomes`` with no reasons for skips and xfails: pytest-trio drops them."""
    return {
        nodeid: [
            PhaseReport(p.when, p.outcome, p.xfail, frozenset()) if p.outcome == "skipped" else p
            for p in phases
        ]
        for nodeid, phases in outcomes.items()
    }
