"""--trio-group-rerun-alone and --trio-group-remember-alone tell concurrency failures (P8)."""

from __future__ import annotations

import pytest

# test_b fails when test_a holds the resource at the same time, and passes
# alone. test_a lets go once test_b has checked, or after a bounded number
# of scheduling rounds when test_b is not in the group.
RESOURCE = """
    import pytest, trio

    STATE = {"busy": False}
    B_CHECKED = trio.Event()
    C_STARTED = trio.Event()

    @pytest.mark.trio_group("g")
    async def test_a_holds_the_resource():
        STATE["busy"] = True
        for _ in range(50):
            if B_CHECKED.is_set() and (WAIT_FOR_C or C_STARTED.is_set()):
                break
            await trio.sleep(0)
        STATE["busy"] = False

    @pytest.mark.trio_group("g")
    async def test_b_needs_it_alone():
        try:
            assert not STATE["busy"], "the resource is busy"
        finally:
            B_CHECKED.set()
"""

BROKEN = """
    @pytest.mark.trio_group("g")
    async def test_c_always_fails():
        C_STARTED.set()
        assert False, "broken"
"""


def test_rerun_alone_says_which_failures_come_from_concurrency(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RESOURCE.replace("WAIT_FOR_C", "False") + BROKEN)
    result = pytester.runpytest("-vv", "--trio-group-rerun-alone")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_b_needs_it_alone _*",
            "E *AssertionError: the resource is busy",
            "*- trio_group: failed only when run concurrently -*",
            "*::test_b_needs_it_alone failed in trio_group 'g' and passed when run again on its "
            "own after the group: it fails only when run concurrently.",
            "Tests that ran at the same time as it:",
            "    *::test_a_holds_the_resource",
            "*_ test_c_always_fails _*",
            "*- trio_group: failed on its own too -*",
            "*::test_c_always_fails failed again when run on its own after the group.",
            "*= trio_group: failed only when run concurrently =*",
            "*::test_b_needs_it_alone (trio_group 'g') passed on its own; it overlapped with: "
            "*::test_a_holds_the_resource*",
            "FAILED *::test_b_needs_it_alone - AssertionError: the resource is busy*",
            "FAILED *::test_c_always_fails - AssertionError: broken*",
        ]
    )
    # Each test is reported once: the runs alone are not reported.
    assert sum("::test_b_needs_it_alone FAILED" in line for line in result.stdout.lines) == 1


def test_remember_alone_runs_such_tests_on_their_own_until_forgotten(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(RESOURCE.replace("WAIT_FOR_C", "True"))
    first = pytester.runpytest("--trio-group-remember-alone")
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines(
        [
            "*::test_b_needs_it_alone (trio_group 'g') passed on its own; it overlapped with: *",
            "remembered: later runs with --trio-group-remember-alone run these on their own "
            "(--trio-group-forget-alone to forget them)",
        ]
    )

    second = pytester.runpytest("--trio-group-remember-alone")
    second.assert_outcomes(passed=2)
    second.stdout.fnmatch_lines(
        [
            "trio_group: 1 test runs on its own, outside its group: it failed only when run "
            "concurrently before (--trio-group-forget-alone to group it again)",
            "trio_group 'g': 1 test (1 passed)*",
            "trio_group of test_b_needs_it_alone: 1 test (1 passed)*",
        ]
    )

    third = pytester.runpytest("--trio-group-forget-alone")
    third.assert_outcomes(passed=1, failed=1)
    third.stdout.no_fnmatch_line("*runs on its own*")


def test_the_run_alone_has_fresh_function_fixtures_and_the_same_module_ones(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
    import pytest, trio

    STATE = {"busy": False}
    D_CHECKED = trio.Event()

    @pytest.mark.trio_group("g")
    async def test_a_holds_the_resource():
        STATE["busy"] = True
        for _ in range(50):
            if D_CHECKED.is_set():
                break
            await trio.sleep(0)
        STATE["busy"] = False

    LOG = []

    @pytest.fixture(scope="module")
    def shared():
        LOG.append("module setup")
        yield
        LOG.append("module teardown")

    @pytest.fixture
    async def per_test(shared):
        LOG.append("function setup")
        async with trio.open_nursery():
            yield
        LOG.append("function teardown")

    @pytest.mark.trio_group("g")
    async def test_d_uses_fixtures(per_test):
        try:
            assert not STATE["busy"], "the resource is busy"
        finally:
            D_CHECKED.set()

    def test_log():
        # The module stays set up for the run alone (and for this test).
        assert LOG == ["module setup"] + ["function setup", "function teardown"] * 2
    """
    )
    result = pytester.runpytest("--trio-group-rerun-alone")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*::test_d_uses_fixtures (trio_group 'g') passed on its own; it overlapped with: *"]
    )


def test_remembering_needs_the_cache(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--trio-group-remember-alone", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --trio-group-remember-alone and --trio-group-forget-alone need pytest's "
            "cache (the cacheprovider plugin is disabled)"
        ]
    )


def test_rerun_alone_after_reruns_in_the_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        STATE = {"busy": False, "checks": 0}

        @pytest.mark.trio_group("g")
        async def test_a_holds_the_resource():
            STATE["busy"] = True
            for _ in range(100):
                if STATE["checks"] == 2:
                    break
                await trio.sleep(0)
            STATE["busy"] = False

        @pytest.mark.trio_group("g")
        @pytest.mark.flaky(reruns=1)
        async def test_b_needs_it_alone():
            STATE["checks"] += 1
            assert not STATE["busy"], "the resource is busy"
        """
    )
    result = pytester.runpytest("-v", "--trio-group-rerun-alone")
    assert result.parseoutcomes() == {"passed": 1, "failed": 1, "rerun": 1}
    result.stdout.fnmatch_lines(
        [
            "*::test_b_needs_it_alone RERUN*",
            "*::test_b_needs_it_alone FAILED*",
            "*::test_b_needs_it_alone failed in trio_group 'g' and passed when run again on its "
            "own after the group: it fails only when run concurrently.",
        ]
    )
