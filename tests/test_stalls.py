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
