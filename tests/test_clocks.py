"""autojump_clock and mock_clock in groups: one clock per trio run, deadlines in real seconds (P6)."""

from __future__ import annotations

import pytest

from conftest import TrioEnv


def test_autojump_clock_tests_share_a_run_with_that_clock(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = module\n")
    pytester.makepyfile(
        """
        import trio

        EVENT = trio.Event()
        SEEN = []

        async def test_sleeps_an_hour(autojump_clock):
            start = trio.current_time()
            await trio.sleep(3600)
            assert trio.current_time() - start == 3600
            EVENT.set()

        async def test_waits_for_the_sibling(autojump_clock):
            # Same run, same clock: the sibling's virtual hour ends this wait.
            SEEN.append(autojump_clock)
            await EVENT.wait()

        async def test_real_clock():
            # Not in the autojump run: its clock is trio's own.
            assert not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)
        """
    )
    result = pytester.runpytest(*trio_env.args, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "trio_group 'test_autojump_clock_tests_share_a_run_with_that_clock.py'"
            " [[]autojump_clock[]] (trio_group_by = module): 2 tests",
            "trio_group 'test_autojump_clock_tests_share_a_run_with_that_clock.py'"
            " (trio_group_by = module): 1 test",
        ]
    )


def test_the_clock_fixture_is_the_runs_clock(pytester: pytest.Pytester, trio_env: TrioEnv) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        def clock(autojump_clock):
            return autojump_clock

        async def test_direct(autojump_clock):
            assert trio.lowlevel.current_clock() is autojump_clock

        async def test_through_a_fixture(clock):
            assert trio.lowlevel.current_clock() is clock

        @pytest.mark.trio_group("g")
        async def test_in_a_group(mock_clock):
            assert trio.lowlevel.current_clock() is mock_clock
            mock_clock.jump(10)
            assert trio.current_time() == 10
        """
    )
    result = pytester.runpytest(*trio_env.args)
    result.assert_outcomes(passed=3)


def test_mock_clock_tests_run_alone(pytester: pytest.Pytester, trio_env: TrioEnv) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = module\n")
    pytester.makepyfile(
        """
        import trio

        RUNNING = []

        async def test_jumps_a(mock_clock):
            assert RUNNING == []
            RUNNING.append("a")
            mock_clock.jump(5)
            assert trio.current_time() == 5
            await trio.sleep(0)
            RUNNING.remove("a")

        async def test_jumps_b(mock_clock):
            assert RUNNING == []
            mock_clock.jump(7)
            assert trio.current_time() == 7
        """
    )
    result = pytester.runpytest(*trio_env.args, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "test_mock_clock_tests_run_alone.py::test_jumps_a runs alone: it uses mock_clock"
            " (not with trio_group 'test_mock_clock_tests_run_alone.py')",
            "test_mock_clock_tests_run_alone.py::test_jumps_b runs alone: *",
        ]
    )


def test_deadlines_stay_in_real_seconds_under_autojump(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    pytester.makepyfile(
        """
        import threading
        import pytest, trio

        RELEASE = threading.Event()

        @pytest.mark.trio_group("g", timeout=0.5)
        async def test_virtual_hours_are_not_real(autojump_clock):
            # Days of virtual time pass at once: no real deadline is near.
            await trio.sleep(10 ** 6)

        @pytest.mark.trio_group("g", timeout=0.5)
        async def test_real_wait_times_out(autojump_clock):
            # Waits on a thread that never finishes: only real time passes.
            await trio.to_thread.run_sync(RELEASE.wait, abandon_on_cancel=True)

        def test_release():
            RELEASE.set()
        """
    )
    result = pytester.runpytest(*trio_env.args)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*Failed: Timeout: test exceeded 0.5s (trio_group 'g' [[]autojump_clock[]])"]
    )


def test_both_clocks_is_an_error(pytester: pytest.Pytester, trio_env: TrioEnv) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio
        async def test_both(autojump_clock, mock_clock):
            pass
        """
    )
    result = pytester.runpytest(*trio_env.args, "-o", "trio_group_by=module")
    if trio_env.pytest_trio:
        # Ungrouped beside pytest-trio: pytest-trio's own refusal.
        result = pytester.runpytest(*trio_env.args, "-p", "no:randomly", "-o", "trio_group_by=none")
        result.assert_outcomes(failed=1)
        return
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_both_clocks_is_an_error.py::test_both: the test"
            " uses both autojump_clock and mock_clock; a trio run has one clock"
        ]
    )


def test_a_clock_from_another_fixture_is_refused(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from trio.testing import MockClock

        @pytest.fixture
        def my_clock():
            return MockClock(autojump_threshold=0)

        @pytest.mark.trio_group("g")
        async def test_it(my_clock):
            pass
        """
    )
    result = pytester.runpytest(*trio_env.args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*fixture 'my_clock' gives a trio Clock, but the test's trio run was started before"
            " its fixtures and cannot use it; make the fixture return (or depend on)"
            " autojump_clock or mock_clock, whose clock the run starts with"
        ]
    )
