"""The stall report: where each running test of a group waits when none makes progress (P3, P8)."""

from __future__ import annotations

import pytest

STALLING = """
import pytest, trio

GATE = trio.Event()  # nobody sets it

async def wait_for_gate():
    await GATE.wait()

@pytest.mark.trio_group("g", timeout=1)
async def test_waits_on_a_gate():
    await wait_for_gate()

async def keep_alive():
    # A background task woken by its timer, as a library's: no progress.
    while True:
        await trio.sleep(0.02)

@pytest.mark.trio_group("g", timeout=1)
async def test_waits_in_a_child_task():
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keep_alive)
        nursery.start_soon(wait_for_gate, name="helper")
"""


def test_a_stalled_group_says_where_each_test_waits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stall=STALLING)
    result = pytester.runpytest("--trio-group-stall-report=0.2")
    result.assert_outcomes(failed=2)
    # Printed while the group hangs, before any test is reported.
    result.stdout.fnmatch_lines(
        [
            "*- trio_group: no test of the group made progress -*",
            "trio_group 'g': no test has made progress for *s (no test's own task ran, none "
            "finished). "
            "Where each running test waits:",
            "  test_stall.py::test_waits_on_a_gate (call, running *s):",
            "    test_stall.py:10 in test_waits_on_a_gate",
            "        await wait_for_gate()",
            "    test_stall.py:6 in wait_for_gate",
            "        await GATE.wait()",
            "    waiting in Event.wait (*trio*_sync.py:*)",
            "  test_stall.py::test_waits_in_a_child_task (call, running *s):",
            "    test_stall.py:19 in test_waits_in_a_child_task",
            "        async with trio.open_nursery() as nursery:",
            "    waiting in NurseryManager.__aexit__ (*trio*)",
            "    in task 'helper':",
            "      test_stall.py:6 in wait_for_gate",
            "          await GATE.wait()",
            "      waiting in Event.wait (*trio*_sync.py:*)",
            "test_stall.py FF*",
        ]
    )
    # Each failure keeps the last report it was part of, and a timeout says
    # where the other running tests waited.
    result.stdout.fnmatch_lines(
        [
            "*_ test_waits_on_a_gate _*",
            "E*Timeout: test exceeded 1s (trio_group 'g')",
            "E*Where the other running tests of the group waited:",
            "E*  test_stall.py::test_waits_in_a_child_task (call, running *s):",
            "*- trio_group: no test of the group made progress -*",
            "trio_group 'g': no test has made progress for *s (no test's own task ran, none "
            "finished). Where it waited:",
            "  test_stall.py::test_waits_on_a_gate (call, running *s):",
            "    test_stall.py:10 in test_waits_on_a_gate",
            "*_ test_waits_in_a_child_task _*",
        ]
    )


def test_the_stall_report_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stall=STALLING)
    result = pytester.runpytest("-o", "trio_group_stall_report=off")
    result.assert_outcomes(failed=2)
    result.stdout.no_fnmatch_line("*no test has made progress*")


def test_a_bad_stall_report_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--trio-group-stall-report=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --trio-group-stall-report must be a number of seconds (0 or 'off' to "
            "disable), got 'soon'"
        ]
    )


def test_a_workers_stall_report_is_printed_by_the_controller(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_stall=STALLING)
    result = pytester.runpytest("-n", "1", "--trio-group-stall-report=0.2")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*- [[]gw0] trio_group: no test of the group made progress -*",
            "trio_group 'g': no test has made progress for *s (no test's own task ran, none "
            "finished). "
            "Where each running test waits:",
            "  test_stall.py::test_waits_on_a_gate (call, running *s):",
        ]
    )


# Tests that assume they run alone: beside another one, each waits for a
# message that never comes (as a subscriber does whose subscription was not
# seen in time).
ASSUME_ALONE = """
import pytest, trio

RUNNING = []

async def exchange():
    RUNNING.append(1)
    try:
        await trio.sleep(0.05)
        if len(RUNNING) > 1:
            await trio.sleep_forever()  # the reply went to the other test
    finally:
        RUNNING.pop()

@pytest.mark.trio_group("g", timeout=60)
async def test_first():
    await exchange()

@pytest.mark.trio_group("g", timeout=60)
async def test_second():
    await exchange()
"""


def test_under_pass_alone_a_stalled_group_is_cancelled_and_its_tests_run_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_alone=ASSUME_ALONE)
    result = pytester.runpytest(
        "--trio-group-stall-report=0.3", "--trio-group-pass-alone", "-W", "default"
    )
    # Ended at the first report, not at the 60 s deadline.
    result.assert_outcomes(passed=2, warnings=2)
    assert result.duration < 30
    result.stdout.fnmatch_lines(
        [
            "*- trio_group: no test of the group made progress -*",
            "trio_group 'g': no test has made progress for *s*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_alone.py::test_first failed at call in trio_group 'g' (*Stalled: no test of "
            "trio_group 'g' made progress for *s; --trio-group-pass-alone cancels the tests "
            "of a stalled group that ran beside others, to run each again on its own) and "
            "passed when run again on its own*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= trio_group: failed only when run concurrently =*",
            "*2 tests passed only on their own*",
        ]
    )


def test_without_pass_alone_a_stalled_group_waits_for_its_deadline(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_alone=ASSUME_ALONE.replace("timeout=60", "timeout=1"))
    result = pytester.runpytest("--trio-group-stall-report=0.3", "--trio-group-rerun-alone")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["E*Timeout: test exceeded 1s (trio_group 'g')"])
    result.stdout.no_fnmatch_line("*Stalled:*")


def test_under_pass_alone_a_test_that_ran_beside_no_other_is_not_cancelled(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_one="""
        import pytest, trio

        @pytest.mark.trio_group("g")
        async def test_waits_a_while():
            await trio.sleep(1)
        """
    )
    result = pytester.runpytest("--trio-group-stall-report=0.2", "--trio-group-pass-alone")
    result.assert_outcomes(passed=1)
    # Reported, not cancelled: its wait is its own.
    result.stdout.fnmatch_lines(["trio_group 'g': no test has made progress for *s*"])
    result.stdout.no_fnmatch_line("*Stalled:*")
