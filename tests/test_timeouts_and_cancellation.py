"""Deadlines, -x / --maxfail and Ctrl-C cancel through the nursery (P3)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest


def test_timeout_message_and_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        async def wait_for_reply():
            await trio.sleep_forever()

        @pytest.mark.trio_group("db", timeout=0.2)
        async def test_stuck():
            await trio.sleep(0)
            await wait_for_reply()

        @pytest.mark.trio_group("db", timeout=5)
        async def test_fine():
            await trio.sleep(0.3)
        """
    )
    result = pytester.runpytest("-vv")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_stuck _*",
            "*await wait_for_reply()",
            "*",
            "*async def wait_for_reply():",
            ">       await trio.sleep_forever()",
            "E       Failed: Timeout: test exceeded 0.2s (trio_group 'db')",
            "",
            "test_timeout_message_and_traceback.py:4: Failed",
        ]
    )
    # Neither trio's scheduler nor this plugin appear in the traceback.
    result.stdout.no_fnmatch_line("*trio/_core*")
    result.stdout.no_fnmatch_line("*pytest_trio_groups*")
    result.stdout.fnmatch_lines(
        ["FAILED *::test_stuck - Failed: Timeout: test exceeded 0.2s (trio_group 'db')"]
    )


def test_teardown_runs_after_timeout_and_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        TORN_DOWN = []

        @pytest.fixture
        def resource(request):
            yield
            TORN_DOWN.append(request.node.name)

        @pytest.mark.trio_group("g", timeout=0.1)
        async def test_times_out(resource):
            await trio.sleep_forever()

        @pytest.mark.trio_group("g", timeout=0.1)
        async def test_fails(resource):
            assert False

        def test_check():
            assert sorted(TORN_DOWN) == ["test_fails", "test_times_out"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1, failed=2)


EXIT_FIRST = """
import pytest, trio

TORN_DOWN = []

@pytest.fixture
def resource(request):
    yield
    TORN_DOWN.append(request.node.name)

RUNNING = []
BOTH_RUNNING = trio.Event()

async def run_forever(name):
    RUNNING.append(name)
    if len(RUNNING) == 2:
        BOTH_RUNNING.set()
    await trio.sleep_forever()

@pytest.mark.trio_group("g", timeout=10)
async def test_long_a(resource):
    await run_forever("a")

@pytest.mark.trio_group("g", timeout=10)
async def test_fails(resource):
    await BOTH_RUNNING.wait()
    assert False, "first failure"

@pytest.mark.trio_group("g", timeout=10)
async def test_long_b(resource):
    await run_forever("b")

@pytest.mark.trio_group("g", timeout=10)
async def test_not_started():
    raise AssertionError("must not run")

def test_after_group():
    raise AssertionError("must not run")
"""


def test_exitfirst_cancels_running_siblings(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(EXIT_FIRST)
    pytester.makeconftest(
        """
        def pytest_sessionfinish(session):
            import test_exitfirst_cancels_running_siblings as mod
            print("torn down:", sorted(mod.TORN_DOWN))
        """
    )
    result = pytester.runpytest("-x", "-rs", "-v", "--trio-group-limit=3")
    result.assert_outcomes(failed=1, skipped=2)
    reason = "cancelled: the run is stopping (stopping after 1 failures)"
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *: {reason}"])
    assert result.stdout.str().count(reason) == 2
    result.stdout.no_fnmatch_line("*test_not_started*")
    result.stdout.no_fnmatch_line("*test_after_group*")
    assert "torn down: ['test_fails', 'test_long_a', 'test_long_b']" in result.stdout.str()
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_stop_during_an_async_fixtures_setup_cancels_the_test_not_a_protocol_error(
    pytester: pytest.Pytester,
) -> None:
    # The other member's failure, reported with -x, wakes this member's
    # async fixture and cancels the member in one step: the fixture reaches
    # no checkpoint after that, so it never sees (and never swallows) the
    # cancellation, and it is torn down with the cancelled test.
    pytester.makeconftest(
        """
        import trio

        WAITING = trio.Event()
        FAILED = trio.Event()
        LOG = []

        def pytest_runtest_logreport(report):
            if report.failed:
                FAILED.set()

        def pytest_sessionfinish():
            print("log:", LOG)
        """
    )
    pytester.makepyfile(
        """
        import pytest, trio
        from conftest import FAILED, LOG, WAITING

        @pytest.fixture
        async def resource():
            WAITING.set()
            await FAILED.wait()
            LOG.append("up")
            yield
            LOG.append("down")

        @pytest.mark.trio_group("g", timeout=10)
        async def test_cancelled(resource):
            await trio.sleep_forever()

        @pytest.mark.trio_group("g", timeout=10)
        async def test_fails():
            await WAITING.wait()
            assert False
        """
    )
    result = pytester.runpytest("-x", "-rs", "-s")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] *: cancelled: the run is stopping (stopping after 1 failures)"]
    )
    result.stdout.no_fnmatch_line("*FixtureProtocolError*")
    assert "log: ['up', 'down']" in result.stdout.str()


def test_maxfail_two(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        GATE = trio.Event()
        FAILED = []

        @pytest.mark.trio_group("g", timeout=10)
        async def test_fail_one():
            await trio.sleep(0.05)
            assert False

        @pytest.mark.trio_group("g", timeout=10)
        async def test_fail_two():
            await trio.sleep(0.1)
            assert False

        @pytest.mark.trio_group("g", timeout=10)
        async def test_running():
            await trio.sleep_forever()

        def test_after():
            pass
        """
    )
    result = pytester.runpytest("--maxfail=2", "-rs")
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED *: cancelled: the run is stopping (stopping after 2 failures)"]
    )


def test_keyboard_interrupt_cancels_tears_down_and_exits_2(pytester: pytest.Pytester) -> None:
    marker = pytester.path / "running"
    torn_down = pytester.path / "torn_down"
    pytester.makepyfile(
        f"""
        import pathlib, pytest, trio

        @pytest.fixture
        def resource():
            yield
            with open({str(torn_down)!r}, "a") as f:
                f.write("teardown\\n")

        @pytest.mark.trio_group("g")
        async def test_quick():
            pass

        @pytest.mark.trio_group("g")
        async def test_hangs(resource):
            await trio.sleep(0.2)
            pathlib.Path({str(marker)!r}).touch()
            await trio.sleep_forever()

        def test_after():
            pass
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the test never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, output
    assert torn_down.read_text() == "teardown\n"
    lines = output.splitlines()
    assert any(line.startswith("test_") and "::test_quick PASSED" in line for line in lines), output
    assert any("::test_hangs SKIPPED" in line for line in lines), output
    assert "cancelled: the run was interrupted (KeyboardInterrupt)" in output
    assert any("KeyboardInterrupt" in line and line.startswith("!!!") for line in lines), output
    assert "test_after" not in output
