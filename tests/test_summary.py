"""The per-group summary at the end of the run (P7)."""

from __future__ import annotations

import re

import pytest

SUITE = """
import pytest, trio

@pytest.mark.trio_group("io")
@pytest.mark.parametrize("n", range(4))
async def test_wait(n):
    await trio.sleep(0.2)
    assert n != 3

@pytest.mark.trio_group("io")
@pytest.mark.skip(reason="not today")
async def test_skipped():
    pass

@pytest.mark.trio_group("other")
async def test_other():
    pass
"""

LINE = re.compile(
    r"^trio_group 'io': 5 tests \(1 failed, 3 passed, 1 skipped\) in (?P<wall>[\d.]+)s wall, "
    r"5 at once at most, CPU (?P<busy>\d+)% of wall$"
)


def test_summary_line_per_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "trio_group summary" in line)
    io_line, other_line = lines[start + 1], lines[start + 2]
    match = LINE.match(io_line)
    assert match, io_line
    # Four members slept 0.2 s each, side by side: the group took at least
    # that long, and waiting is not CPU work, so it is not called CPU-bound.
    assert float(match["wall"]) >= 0.2
    assert int(match["busy"]) < 90
    assert "speed-up" not in result.stdout.str()
    assert other_line.startswith("trio_group 'other': 1 test (1 passed) in ")
    assert ", 1 at once at most, CPU " in other_line


def test_errors_are_counted_as_pytest_counts_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup failed")

        @pytest.mark.trio_group("one")
        async def test_a(broken):
            pass

        @pytest.mark.trio_group("two")
        async def test_b(broken):
            pass

        @pytest.mark.trio_group("two")
        async def test_c(broken):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        ["trio_group 'one': 1 test (1 error) in *", "trio_group 'two': 2 tests (2 errors) in *"]
    )


def test_a_stopped_group_says_how_many_members_never_started(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio_group("g")
        async def test_fails():
            assert False

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(3))
        async def test_later(n):
            pass
        """
    )
    result = pytester.runpytest("-x", "--trio-group-limit", "1")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            r"^trio_group 'g': 1 test \(1 failed\) and 3 not started \(the group stopped\) "
            r"in [\d.]+s wall, 1 at once at most, CPU \d+% of wall$"
        ]
    )


def test_a_rerun_member_is_listed_once_among_the_slowest_with_all_its_time(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        ATTEMPTS = []

        @pytest.mark.trio_group("g")
        @pytest.mark.flaky(reruns=1)
        async def test_flaky():
            ATTEMPTS.append(1)
            await trio.sleep(0.3)
            assert len(ATTEMPTS) > 1

        @pytest.mark.trio_group("g")
        async def test_steady():
            await trio.sleep(0.4)
        """
    )
    result = pytester.runpytest("-v")
    assert result.parseoutcomes() == {"passed": 2, "rerun": 1}
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "trio_group summary" in line)
    assert lines[start + 1].startswith("trio_group 'g': 2 tests (2 passed, 1 rerun) in ")
    slowest = lines[start + 2 : start + 4]
    # Its two runs, 0.3 s each, add up: listed first, once.
    assert [line.split()[-1].rsplit("::", 1)[-1] for line in slowest] == [
        "test_flaky",
        "test_steady",
    ], lines[start:]
    assert float(slowest[0].split()[0].rstrip("s")) >= 0.6


def test_cpu_bound_group_is_called_so(pytester: pytest.Pytester) -> None:
    # The process's CPU clock is made to advance with the wall clock, as it
    # does when the process has a CPU to itself and its tests keep it busy:
    # the outcome then does not depend on how loaded the machine is.
    pytester.makeconftest(
        """
        import time

        real_process_time = time.process_time

        def pytest_configure():
            time.process_time = time.perf_counter

        def pytest_unconfigure():
            time.process_time = real_process_time
        """
    )
    pytester.makepyfile(
        """
        import time, pytest, trio

        @pytest.mark.trio_group("crunch")
        @pytest.mark.parametrize("n", range(3))
        async def test_busy_loop(n):
            end = time.perf_counter() + 0.6
            while time.perf_counter() < end:
                await trio.sleep(0)
        """
    )
    result = pytester.runpytest("--trio-group-blocked-threshold=off")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "trio_group 'crunch': 3 tests (3 passed) in *s wall, 3 at once at most, "
            "CPU 100% of wall -- CPU-bound: its tests compete for one CPU, so running them "
            "concurrently saves little; try --trio-group-limit or pytest-xdist",
        ]
    )


def test_a_short_group_shows_at_most_one_core(pytester: pytest.Pytester) -> None:
    # The process's CPU clock runs at twice the wall clock's pace: over a
    # run too short to tell, the CPU time around it (start, end, the
    # watchdog thread) makes a one-test group look busier than one core.
    pytester.makeconftest(
        """
        import time

        real_process_time = time.process_time

        def pytest_configure():
            time.process_time = lambda: 2 * time.perf_counter()

        def pytest_unconfigure():
            time.process_time = real_process_time
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio_group("tiny")
        async def test_quick():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["trio_group 'tiny': 1 test (1 passed) in *s wall, 1 at once at most, CPU 100% of wall"]
    )


def test_verbose_summary_lists_slowest_members(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        [
            "trio_group 'io': 5 tests*",
            # The three waits are the slowest (how slow depends on the machine's load).
            "    *s test_verbose_summary_lists_slowest_members.py::test_wait[[]*[]]",
            "    *s test_verbose_summary_lists_slowest_members.py::test_wait[[]*[]]",
            "    *s test_verbose_summary_lists_slowest_members.py::test_wait[[]*[]]",
            "trio_group 'other': 1 test*",
        ]
    )


@pytest.mark.parametrize("args", [["-q"], ["--no-trio-group-summary"]])
def test_summary_can_be_silenced(pytester: pytest.Pytester, args: list[str]) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    result.stdout.no_fnmatch_line("*trio_group summary*")
    result.stdout.no_fnmatch_line("trio_group 'io'*")
