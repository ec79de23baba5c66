"""Large groups, -x and Ctrl-C at random (seeded) points: every test reported once (P2, P3)."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

# Each run is a subprocess with a bound: a hang fails the test instead of
# stalling the suite.
HANG_BOUND = 120
SEED = 20261201


def _testcases(junit: Path) -> Counter[str]:
    """How many ``testcase`` elements junitxml holds for each test (by name)."""
    root = ET.parse(junit).getroot()
    return Counter(case.get("name", "") for case in root.iter("testcase"))


def _outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """Each test's outcome in junitxml and its message; one element per test."""
    result = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, child.get("message", "")
                break
        result[case.get("name", "")] = (outcome, message)
    return result


def _log(path: Path) -> tuple[Counter[str], Counter[str]]:
    """The set-ups and teardowns a log shows: ``u NAME`` and ``d NAME`` lines."""
    lines = path.read_text().splitlines() if path.exists() else []
    ups = Counter(line[2:] for line in lines if line.startswith("u "))
    downs = Counter(line[2:] for line in lines if line.startswith("d "))
    return ups, downs


def _assert_every_setup_torn_down_once(ups: Counter[str], downs: Counter[str]) -> None:
    assert max(ups.values(), default=1) == 1, [n for n, c in ups.items() if c > 1]
    assert downs == ups, (sorted(set(ups) - set(downs)), sorted(set(downs) - set(ups)))


# -- 10,000 members, a limit of 100, random failures --------------------------

BIG = 10_000


def test_ten_thousand_members_with_random_failures(pytester: pytest.Pytester) -> None:
    rng = random.Random(SEED)
    picked = rng.sample(range(BIG), 200)
    failing, setup_errors, teardown_errors, skipped = (
        set(picked[:80]),
        set(picked[80:120]),
        set(picked[120:160]),
        set(picked[160:]),
    )
    log = pytester.path / "log"
    pytester.makepyfile(
        f"""
        import pytest, trio

        FAILING = {sorted(failing)}
        SETUP_ERRORS = {sorted(setup_errors)}
        TEARDOWN_ERRORS = {sorted(teardown_errors)}
        SKIPPED = {sorted(skipped)}
        LOG = open({str(log)!r}, "a", buffering=1)

        @pytest.fixture
        def tracked(n):
            if n in SETUP_ERRORS:
                raise RuntimeError(f"setup of {{n}}")
            LOG.write(f"u {{n}}\\n")
            yield
            LOG.write(f"d {{n}}\\n")
            if n in TEARDOWN_ERRORS:
                raise RuntimeError(f"teardown of {{n}}")

        @pytest.fixture
        async def tracked_async(n):
            if n in SETUP_ERRORS:
                raise RuntimeError(f"setup of {{n}}")
            LOG.write(f"u {{n}}\\n")
            yield
            await trio.sleep(0)
            LOG.write(f"d {{n}}\\n")
            if n in TEARDOWN_ERRORS:
                raise RuntimeError(f"teardown of {{n}}")

        # The first hundred members wait until all hundred run at once: the
        # limit is reached, and the summary's peak shows it is never passed.
        RUNNING = 0
        ALL_RUNNING = trio.Event()

        async def body(n):
            global RUNNING
            RUNNING += 1
            if RUNNING == 100:
                ALL_RUNNING.set()
            await ALL_RUNNING.wait()
            assert n not in FAILING
            if n in SKIPPED:
                pytest.skip("skipped")

        # Nine in ten members with a sync fixture, one in ten with an async
        # generator fixture (each has a fixture nursery of its own).
        @pytest.mark.trio_group("big", timeout=60)
        @pytest.mark.parametrize("n", [n for n in range({BIG}) if n % 10])
        async def test_sync_fixture(n, tracked):
            await body(n)

        @pytest.mark.trio_group("big", timeout=60)
        @pytest.mark.parametrize("n", range(0, {BIG}, 10))
        async def test_async_fixture(n, tracked_async):
            await body(n)
        """
    )
    result = pytester.runpytest_subprocess(
        "--tb=no",
        "-p",
        "no:cacheprovider",
        "--trio-group-limit=100",
        "--junitxml=junit.xml",
        timeout=HANG_BOUND,
    )
    result.assert_outcomes(
        passed=BIG - len(failing) - len(setup_errors) - len(skipped),
        failed=len(failing),
        errors=len(setup_errors) + len(teardown_errors),
        skipped=len(skipped),
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    peak = re.search(r"trio_group 'big': .* (\d+) at once at most", result.stdout.str())
    assert peak is not None and int(peak.group(1)) == 100, repr(result.stdout.lines[-8:])
    cases = _testcases(pytester.path / "junit.xml")
    assert len(cases) == BIG and set(cases.values()) == {1}
    ups, downs = _log(log)
    assert set(ups) == {str(n) for n in range(BIG) if n not in setup_errors}
    _assert_every_setup_torn_down_once(ups, downs)


# -- -x at random points ------------------------------------------------------

STOPPED = 500
STOPPED_LIMIT = 20

_STOPPED_SUITE = """
    import pytest, trio

    FAILING = {failing}
    LOG = open({log!r}, "a", buffering=1)

    @pytest.fixture
    def tracked(n):
        LOG.write(f"u {{n}}\\n")
        yield
        LOG.write(f"d {{n}}\\n")

    @pytest.fixture
    async def tracked_async(n):
        LOG.write(f"u {{n}}\\n")
        yield
        await trio.sleep(0)
        LOG.write(f"d {{n}}\\n")

    async def body(n):
        # Members take different numbers of steps, so they finish out of order.
        for _ in range(n % 7):
            await trio.sleep(0)
        assert n != FAILING

    @pytest.mark.trio_group("g", timeout=60)
    @pytest.mark.parametrize("n", [n for n in range({size}) if n % 3])
    async def test_sync_fixture(n, tracked):
        await body(n)

    @pytest.mark.trio_group("g", timeout=60)
    @pytest.mark.parametrize("n", range(0, {size}, 3))
    async def test_async_fixture(n, tracked_async):
        await body(n)

    def test_after_the_group():
        pass
"""


def _member_number(name: str) -> int:
    match = re.fullmatch(r"test_\w+\[(\d+)\]", name)
    assert match is not None, name
    return int(match.group(1))


@pytest.mark.parametrize("failing", sorted(random.Random(SEED + 1).sample(range(STOPPED), 3)))
def test_exitfirst_at_a_random_member(pytester: pytest.Pytester, failing: int) -> None:
    log = pytester.path / "log"
    pytester.makepyfile(_STOPPED_SUITE.format(failing=failing, log=str(log), size=STOPPED))
    result = pytester.runpytest_subprocess(
        "-x",
        "-p",
        "no:cacheprovider",
        f"--trio-group-limit={STOPPED_LIMIT}",
        "--junitxml=junit.xml",
        timeout=HANG_BOUND,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    junit = pytester.path / "junit.xml"
    cases = _testcases(junit)
    assert set(cases.values()) == {1}, cases
    # The session stops: nothing after the group runs.
    assert "test_after_the_group" not in cases
    outcomes = _outcomes(junit)
    reported = {_member_number(name) for name in outcomes}
    ups, downs = _log(log)
    # Every started test is reported, once; none that did not start.
    assert reported == {int(n) for n in ups}
    # Members start in pytest's order: every one up to the failing one started.
    order = [n for n in range(STOPPED) if n % 3] + list(range(0, STOPPED, 3))
    assert set(order[: order.index(failing) + 1]) <= reported
    _assert_every_setup_torn_down_once(ups, downs)
    failed = [n for n, (outcome, _) in outcomes.items() if outcome == "failure"]
    assert [_member_number(n) for n in failed] == [failing]
    for name, (outcome, message) in outcomes.items():
        if outcome == "skipped":
            assert message.startswith("cancelled: the run is stopping"), (name, message)
        else:
            assert outcome in ("passed", "failure"), (name, outcome, message)


# -- Ctrl-C at random points --------------------------------------------------

INTERRUPTED = 300

_INTERRUPTED_SUITE = """
    import pytest, trio

    LOG = open({log!r}, "a", buffering=1)

    @pytest.fixture(scope="session")
    def session_wide():
        LOG.write("u session\\n")
        yield
        LOG.write("d session\\n")

    @pytest.fixture(scope="module")
    async def module_wide(session_wide):
        LOG.write("u module\\n")
        yield
        await trio.sleep(0)
        LOG.write("d module\\n")

    @pytest.fixture
    async def tracked(n, module_wide):
        LOG.write(f"u {{n}}\\n")
        yield
        await trio.sleep(0.001)
        LOG.write(f"d {{n}}\\n")

    @pytest.mark.trio_group("g", timeout=60)
    @pytest.mark.parametrize("n", range({size}))
    async def test_member(n, tracked):
        if n == {size} - 1:
            # The run cannot end before the interrupt arrives.
            await trio.sleep_forever()
        await trio.sleep(0.002 * (n % 5))

    def test_after_the_group():
        pass
"""


def _wait_for_starts(log: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + HANG_BOUND
    while True:
        ups, _ = _log(log)
        if sum(1 for name in ups if name.isdigit()) >= count:
            return
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{count} members never started"
        time.sleep(0.005)


@pytest.mark.parametrize(
    "started", sorted(random.Random(SEED + 2).sample(range(1, INTERRUPTED - 20), 3))
)
def test_ctrl_c_at_a_random_point(pytester: pytest.Pytester, started: int) -> None:
    log = pytester.path / "log"
    pytester.makepyfile(_INTERRUPTED_SUITE.format(log=str(log), size=INTERRUPTED))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--trio-group-limit=10",
            "--junitxml=junit.xml",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_starts(log, started, proc)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=HANG_BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "INTERNALERROR" not in output, output
    assert re.search(r"^!+ KeyboardInterrupt !+$", output, re.MULTILINE), repr(output)
    junit = pytester.path / "junit.xml"
    cases = _testcases(junit)
    # A test that the interrupt reaches in its own code keeps only the
    # reports of its phases before, as in plain pytest (KeyboardInterrupt
    # leaves its phase unreported); with only a setup report, junitxml
    # writes it as a testcase without a name.
    nameless = cases.pop("", 0)
    assert set(cases.values()) <= {1}, cases
    assert "test_after_the_group" not in cases
    ups, downs = _log(log)
    members = {name for name in ups if name.isdigit()}
    assert len(members) >= started
    # Every started test is reported once (its setup at least), none that did not start.
    reported = {str(_member_number(name)) for name in cases}
    assert reported <= members, output
    interrupted = members - reported
    assert nameless <= len(interrupted) <= 1, (interrupted, nameless, output)
    _assert_every_setup_torn_down_once(ups, downs)
    # The interrupt lands in the main task (when every task waits, or in the
    # plugin's own code), or in a member's own code, which then stops the
    # run as the member's own KeyboardInterrupt (see the reference on Ctrl-C).
    reasons = re.compile(
        r"cancelled: the run was interrupted \(KeyboardInterrupt\)"
        r"|cancelled: KeyboardInterrupt in test_ctrl_c_at_a_random_point\.py::test_member\[\d+\]"
    )
    blamed = set()
    for name, (outcome, message) in _outcomes(junit).items():
        if name == "":
            continue
        if outcome == "skipped":
            assert reasons.fullmatch(message), (name, message)
            blamed.update(re.findall(r"test_member\[(\d+)\]$", message))
        else:
            assert outcome == "passed", (name, outcome, message, output)
    # Only the member whose own code the interrupt reached may lack a report.
    assert len(blamed) <= 1, blamed
    if blamed:
        assert interrupted <= blamed, (interrupted, blamed)
