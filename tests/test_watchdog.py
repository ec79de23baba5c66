"""A blocked event loop is blamed on the test and the line that blocked it (P8)."""

from __future__ import annotations

import pytest

BLOCKING = """
import time, pytest, trio

pytestmark = pytest.mark.trio_group("g", timeout=30)

async def test_waits():
    await trio.sleep(0.01)

async def test_sleeps():
    await trio.sleep(0)
    time.sleep(1)
"""


def test_blocking_member_is_blamed_with_its_frame(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_blocking=BLOCKING)
    result = pytester.runpytest("--trio-group-blocked-threshold", "0.1")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "test_blocking.py::test_sleeps",
            "  *test_blocking.py:10: BlockedLoopWarning: the event loop was blocked for 1.*s "
            "at test_blocking.py:10 in test_sleeps: no other test of trio_group 'g' could run "
            "meanwhile (threshold 0.1s). A blocking call (time.sleep, a synchronous socket or "
            "HTTP call) holds up the whole group: await trio's equivalent, or run it in "
            "trio.to_thread.run_sync.",
            "  Stack (most recent call last):",
            '    File "*test_blocking.py", line 10, in test_sleeps',
            "      time.sleep(1)",
        ]
    )
    result.stdout.fnmatch_lines(
        ["trio_group 'g': 2 tests (2 passed) in *, event loop blocked once (1.*s)"]
    )
    # The blame is the test's alone: its sibling's report carries no warning.
    result.stdout.no_fnmatch_line("test_blocking.py::test_waits")


def test_warning_shows_in_the_blamed_tests_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import json

        def pytest_warning_recorded(warning_message, nodeid):
            with open("recorded.json", "a") as file:
                name = type(warning_message.message).__name__
                file.write(json.dumps([nodeid, name]) + "\\n")
        """
    )
    pytester.makepyfile(test_blocking=BLOCKING)
    pytester.runpytest("--trio-group-blocked-threshold", "0.1").assert_outcomes(
        passed=2, warnings=1
    )
    recorded = (pytester.path / "recorded.json").read_text().splitlines()
    assert recorded == ['["test_blocking.py::test_sleeps", "BlockedLoopWarning"]']


@pytest.mark.parametrize("how", ["mark", "option"])
def test_filters_silence_the_warning(pytester: pytest.Pytester, how: str) -> None:
    mark = '@pytest.mark.filterwarnings("ignore::pytest_trio_groups.BlockedLoopWarning")'
    pytester.makepyfile(
        test_blocking=f"""
        import time, pytest, trio

        @pytest.mark.trio_group("g")
        {mark if how == "mark" else ""}
        async def test_sleeps():
            time.sleep(1)

        @pytest.mark.trio_group("g")
        async def test_sleeps_and_is_blamed():
            time.sleep(1)
        """
    )
    args = ["--trio-group-blocked-threshold=0.1"]
    if how == "option":
        args += ["-W", "ignore::pytest_trio_groups.BlockedLoopWarning"]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2, warnings=1 if how == "mark" else 0)
    result.stdout.no_fnmatch_line("test_blocking.py::test_sleeps")
    # Silenced or not, the block is counted.
    result.stdout.fnmatch_lines(["trio_group 'g': 2 tests *, event loop blocked 2 times (2.*s)"])


def test_healthy_group_has_no_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("healthy")
        @pytest.mark.parametrize("n", range(20))
        async def test_polls(n):
            for _ in range(5):
                await trio.sleep(0.01)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=20)
    result.stdout.no_fnmatch_line("*BlockedLoopWarning*")
    result.stdout.no_fnmatch_line("*event loop blocked*")


def test_deadline_missed_while_blocked_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_late="""
        import time, pytest, trio

        @pytest.mark.trio_group("late", timeout=0.2)
        async def test_blocks_past_deadline():
            await trio.sleep(0.05)  # its sibling starts meanwhile
            time.sleep(1)
            await trio.sleep(0)

        @pytest.mark.trio_group("late", timeout=0.2)
        async def test_waits_behind_it():
            await trio.sleep(0.5)
        """
    )
    result = pytester.runpytest("--trio-group-blocked-threshold", "0.1")
    result.assert_outcomes(failed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "E   *Failed: Timeout: test exceeded 0.2s (trio_group 'late'); the deadline was "
            "missed because the event loop was blocked at test_late.py:6 in "
            "test_blocks_past_deadline for 1.*s, and a test cannot be cancelled while it "
            "blocks",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E   *Failed: Timeout: test exceeded 0.2s (trio_group 'late'); the deadline passed "
            "while test_late.py::test_blocks_past_deadline blocked the event loop at "
            "test_late.py:6 in test_blocks_past_deadline, so the test was cancelled *s late",
        ]
    )


@pytest.mark.parametrize("args, ini", [(["--trio-group-blocked-threshold", "off"], ""), ([], "0")])
def test_watchdog_can_be_turned_off(pytester: pytest.Pytester, args: list[str], ini: str) -> None:
    if ini:
        pytester.makeini(f"[pytest]\ntrio_group_blocked_threshold = {ini}\n")
    pytester.makepyfile(
        test_blocking="""
        import time, pytest

        @pytest.mark.trio_group("g")
        async def test_sleeps():
            time.sleep(0.3)
        """
    )
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*BlockedLoopWarning*")


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_bad_threshold_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(f"--trio-group-blocked-threshold={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --trio-group-blocked-threshold must be a number of seconds "
            f"(0 or 'off' to disable), got '{value}'"
        ]
    )


FIXED_WAIT = """
import time, pytest, trio

WAITING = trio.Event()
BLOCKED = trio.Event()

@pytest.mark.trio_group("g")
async def test_generates_a_key():
    await WAITING.wait()
    time.sleep(0.3)  # synchronous work
    BLOCKED.set()

@pytest.mark.trio_group("g")
async def test_waits_a_fixed_time():
    WAITING.set()
    await BLOCKED.wait()
    assert False, "the peer did not answer in time"

@pytest.mark.trio_group("g")
async def test_passes():
    await BLOCKED.wait()
"""


def test_failed_member_is_told_which_siblings_blocked_the_loop_while_it_ran(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_fixed=FIXED_WAIT)
    result = pytester.runpytest("--trio-group-blocked-threshold", "0.1")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- trio_group: other tests blocked the event loop while this test ran -*",
            "While test_fixed.py::test_waits_a_fixed_time ran (*s), other tests of "
            "trio_group 'g' held the event loop for 0.*s in all; none of its awaits could "
            "resume meanwhile:",
            "    test_fixed.py::test_generates_a_key: 0.*s at test_fixed.py:9 in "
            "test_generates_a_key",
            "A fixed wait (trio.sleep) for work another task does, or a limit on elapsed time, "
            "can fail for that reason alone: wait for the event itself, or see whether the "
            "test passes on its own (--trio-group-rerun-alone, @pytest.mark.trio_alone).",
        ],
        consecutive=True,
    )
    # Only the failed test's report says so.
    assert result.stdout.str().count("other tests blocked the event loop") == 1


def test_no_word_of_blocks_that_did_not_overlap_the_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_apart="""
        import time, pytest, trio

        @pytest.mark.trio_group("g")
        async def test_blocks_first():
            time.sleep(0.3)

        @pytest.mark.trio_group("g")
        async def test_fails_after():
            await trio.sleep(0)
            assert False
        """
    )
    # One at a time: the block is over before the failing test starts.
    result = pytester.runpytest("--trio-group-blocked-threshold", "0.1", "--trio-group-limit", "1")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.no_fnmatch_line("*other tests blocked the event loop*")


def test_tests_installed_with_their_package_are_blamed_in_its_code(
    pytester: pytest.Pytester,
) -> None:
    # Run with --pyargs from site-packages, the package's tests and its code
    # are all installed code: the blame goes to the package's innermost frame,
    # not to the standard library call that blocked.
    site = pytester.mkdir("site")
    pytester.makeconftest(
        f"""
        import sysconfig

        _get_paths = sysconfig.get_paths

        def get_paths(*args, **kwargs):
            paths = dict(_get_paths(*args, **kwargs))
            paths["purelib"] = paths["platlib"] = {str(site)!r}
            return paths

        sysconfig.get_paths = get_paths
        """
    )
    package = site / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "impl.py").write_text(
        "import threading\n\ndef shut_down():\n    threading.Event().wait(0.6)\n"
    )
    (package / "test_impl.py").write_text(
        "import pytest, trio\nfrom pkg.impl import shut_down\n\n"
        "pytestmark = pytest.mark.trio_group('g', timeout=30)\n\n"
        "async def test_waits():\n    await trio.sleep(0.01)\n\n"
        "async def test_shuts_down():\n    await trio.sleep(0)\n    shut_down()\n"
    )
    result = pytester.runpytest_subprocess(
        "--trio-group-blocked-threshold", "0.1", "-p", "no:cacheprovider", str(package)
    )
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*BlockedLoopWarning: the event loop was blocked for 0.*s at *pkg?impl.py:4 in shut_down:*"
        ]
    )
