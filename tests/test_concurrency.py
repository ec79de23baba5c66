"""Groups run their members as sibling tasks in one nursery (P2)."""

from __future__ import annotations

import pytest


def test_members_overlap(pytester: pytest.Pytester) -> None:
    # test_waiter can only pass if test_setter runs while it waits.
    pytester.makepyfile(
        """
        import pytest, trio

        EVENTS = {}

        def event(name):
            return EVENTS.setdefault(name, trio.Event())

        @pytest.mark.trio_group("g", timeout=5)
        async def test_waiter():
            await event("set").wait()

        @pytest.mark.trio_group("g", timeout=5)
        async def test_setter():
            event("set").set()
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)


# Eight members each hold a slot for a while; the last test reads how many
# ran at once at most.
LIMITED = """
import pytest, trio

RUNNING = []
PEAK = []

@pytest.mark.parametrize("n", range(8))
@pytest.mark.trio_group("g", timeout=5)
async def test_member(n):
    RUNNING.append(n)
    PEAK.append(len(RUNNING))
    await trio.sleep(0.05)
    RUNNING.remove(n)

def test_peak():
    assert max(PEAK) == {peak}, PEAK
"""


def test_limit_bounds_how_many_run_at_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(LIMITED.format(peak=2))
    result = pytester.runpytest("--trio-group-limit=2")
    result.assert_outcomes(passed=9)


def test_limit_from_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_group_limit = 3\n")
    pytester.makepyfile(LIMITED.format(peak=3))
    pytester.runpytest().assert_outcomes(passed=9)


def test_unlimited_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        RUNNING = []
        ALL_RUNNING = trio.Event()

        @pytest.mark.parametrize("n", range(20))
        @pytest.mark.trio_group("g", timeout=10)
        async def test_member(n):
            # Passes only if all 20 run at the same time.
            RUNNING.append(n)
            if len(RUNNING) == 20:
                ALL_RUNNING.set()
            await ALL_RUNNING.wait()
        """
    )
    pytester.runpytest().assert_outcomes(passed=20)


def test_group_spans_modules_and_classes(pytester: pytest.Pytester) -> None:
    # Each member waits until all three have started: only one nursery
    # holding members from two modules and a class lets that happen.
    pytester.makeconftest(
        """
        import trio

        STARTED = []
        ALL_STARTED = trio.Event()

        async def arrive(name):
            STARTED.append(name)
            if len(STARTED) == 3:
                ALL_STARTED.set()
            await ALL_STARTED.wait()
        """
    )
    pytester.makepyfile(
        test_one="""
        import pytest
        from conftest import arrive

        @pytest.mark.trio_group("shared", timeout=5)
        async def test_function():
            await arrive("function")

        @pytest.mark.trio_group("shared", timeout=5)
        class TestClass:
            async def test_method(self):
                await arrive("method")
        """,
        test_two="""
        import pytest
        from conftest import arrive

        pytestmark = pytest.mark.trio_group("shared", timeout=5)

        async def test_module_marked():
            await arrive("module")
        """,
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)
    # Members are reported in the order they finish.
    for line in [
        "test_one.py::test_function PASSED*",
        "test_one.py::TestClass::test_method PASSED*",
        "test_two.py::test_module_marked PASSED*",
    ]:
        result.stdout.fnmatch_lines([line])


def test_group_runs_at_its_first_member_and_plain_tests_keep_their_order(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        ORDER = []

        def test_first():
            ORDER.append("first")

        @pytest.mark.trio_group("g")
        async def test_member_a():
            await trio.sleep(0.05)
            ORDER.append("a")

        def test_middle():
            ORDER.append("middle")

        @pytest.mark.trio_group("g")
        async def test_member_b():
            ORDER.append("b")

        def test_last():
            assert ORDER == ["first", "b", "a", "middle"]
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=5)
    lines = [line for line in result.outlines if " PASSED " in line]
    assert [line.split()[0].split("::")[1] for line in lines] == [
        "test_first",
        "test_member_b",
        "test_member_a",
        "test_middle",
        "test_last",
    ]


def test_parametrized_members_each_run_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        SEEN = []

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("x", [1, 2, 3])
        async def test_p(x):
            SEEN.append(x)
            await trio.sleep(0)

        def test_seen():
            assert sorted(SEEN) == [1, 2, 3]
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=4)
    for n in (1, 2, 3):
        result.stdout.fnmatch_lines([f"*test_p[[]{n}[]] PASSED*"])


def test_deselected_members_are_absent(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g")
        async def test_keep_one():
            pass

        @pytest.mark.trio_group("g")
        async def test_drop():
            raise AssertionError("deselected")

        @pytest.mark.trio_group("g")
        async def test_keep_two():
            pass
        """
    )
    result = pytester.runpytest("-v", "-k", "keep")
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.no_fnmatch_line("*test_drop*")


def test_mark_expression_selects_members(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio_group("g")
        async def test_in_group():
            pass

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("-m", "trio_group")
    result.assert_outcomes(passed=1, deselected=1)


def test_collect_only_lists_members(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("x", [1, 2])
        async def test_p(x):
            raise AssertionError("collect only")
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*::test_p[[]1[]]", "*::test_p[[]2[]]", "2 tests collected*"])


def test_two_groups_run_one_after_another(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        LOG = []

        @pytest.mark.trio_group("one")
        async def test_one_a():
            LOG.append("one_a")
            await trio.sleep(0.05)
            LOG.append("one_a done")

        @pytest.mark.trio_group("two")
        async def test_two_a():
            LOG.append("two_a")

        @pytest.mark.trio_group("one")
        async def test_one_b():
            LOG.append("one_b")

        def test_log():
            # Both members of "one" start before either ends; "two" runs after.
            assert sorted(LOG[:2]) == ["one_a", "one_b"]
            assert LOG[2:] == ["one_a done", "two_a"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)
