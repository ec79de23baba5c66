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
            "cache (the cacheprovider plugin is disabled) or --trio-group-alone-file"
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


def test_a_test_run_on_its_own_gets_its_reruns_again(pytester: pytest.Pytester) -> None:
    # test_a fails whenever test_b runs beside it, and on its first run on
    # its own as well (flaky on its own too, as its reruns allow for): run
    # alone as a test without a group would be, its reruns let it pass.
    pytester.makepyfile(
        """
        import pytest, trio

        STATE = {"b_running": False, "alone": 0}

        @pytest.mark.trio_group("g")
        async def test_a():
            await trio.sleep(0.01)
            assert not STATE["b_running"], "conflict: test_b is running"
            STATE["alone"] += 1
            assert STATE["alone"] > 1, "flaky: the first run on its own fails"

        @pytest.mark.trio_group("g")
        async def test_b():
            STATE["b_running"] = True
            await trio.sleep(0.3)
            STATE["b_running"] = False
        """
    )
    result = pytester.runpytest("-v", "--reruns", "2", "--trio-group-pass-alone")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes.get("failed", 0)) == (2, 0), outcomes
    result.stdout.fnmatch_lines(["*::test_a (trio_group 'g') passed on its own; *"])
    # Without reruns its first run on its own is its only one: it fails, as
    # it would run alone.
    result = pytester.runpytest("-v", "--reruns", "0", "--trio-group-pass-alone")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"]) == (1, 1), outcomes
    result.stdout.fnmatch_lines(["*failed again when run on its own after the group*"])


# test_e's fixture fails at teardown only when test_f still runs; alone it passes.
TEARDOWN_ONLY = """
    RUNNING = []
    E_TORN_DOWN = {"yes": False}

    @pytest.fixture
    async def nobody_else_at_teardown(request):
        RUNNING.append(request.node.name)
        yield
        RUNNING.remove(request.node.name)
        E_TORN_DOWN["yes"] = True
        assert not RUNNING, f"still running: {RUNNING}"

    @pytest.mark.trio_group("g")
    async def test_e_fails_only_at_teardown(nobody_else_at_teardown):
        await trio.sleep(0)

    @pytest.mark.trio_group("g")
    async def test_f_outlives_e():
        RUNNING.append("test_f_outlives_e")
        for _ in range(50):
            if E_TORN_DOWN["yes"]:
                break
            await trio.sleep(0)
        RUNNING.remove("test_f_outlives_e")
"""


def test_pass_alone_reports_concurrency_failures_as_passed_with_a_warning(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(RESOURCE.replace("WAIT_FOR_C", "True") + TEARDOWN_ONLY)
    result = pytester.runpytest("-v", "-rA", "--trio-group-pass-alone")
    result.assert_outcomes(passed=4, warnings=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_b_needs_it_alone PASSED*",
            "*::test_e_fails_only_at_teardown PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "*::test_b_needs_it_alone",
            "*test_pass_alone_*.py:*: PytestWarning: *::test_b_needs_it_alone failed at call in trio_group 'g' "
            "(AssertionError: the resource is busy*) and passed when run again on its own: "
            "reported as passed (--trio-group-pass-alone). It ran at the same time as: "
            "*::test_a_holds_the_resource*",
            "*::test_e_fails_only_at_teardown",
            "*PytestWarning: *::test_e_fails_only_at_teardown failed at teardown in "
            "trio_group 'g' (AssertionError: still running: *test_f_outlives_e*) and "
            "passed when run again on its own*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= trio_group: failed only when run concurrently =*",
            "*::test_b_needs_it_alone (trio_group 'g') passed on its own; it overlapped with: *",
            "*::test_e_fails_only_at_teardown (trio_group 'g') passed on its own; it "
            "overlapped with: *::test_f_outlives_e*",
            "2 tests passed only on their own: reported as passed (--trio-group-pass-alone)",
            "--trio-group-remember-alone remembers them (with --trio-group-alone-file, in a "
            "file to commit)",
            "or mark each @pytest.mark.trio_alone to run it on its own for good",
            "*= trio_group summary =*",
            "trio_group 'g': 4 tests (4 passed)*",
        ]
    )
    # Each test is reported once.
    lines = result.stdout.lines
    assert sum("::test_e_fails_only_at_teardown PASSED" in line for line in lines) == 1
    assert not any("ERROR" in line or "FAILED" in line for line in lines)

    # Without the setting the outcome stays what it was in the group.
    plain = pytester.runpytest("--trio-group-rerun-alone")
    # (test_e passed its call and errors at teardown, as in plain pytest.)
    plain.assert_outcomes(passed=3, failed=1, errors=1)
    plain.stdout.fnmatch_lines(
        [
            "*::test_e_fails_only_at_teardown failed in trio_group 'g' and passed when run "
            "again on its own after the group: it fails only when run concurrently.",
        ]
    )


def test_pass_alone_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_group_pass_alone = true\n")
    pytester.makepyfile(RESOURCE.replace("WAIT_FOR_C", "True"))
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        ["1 test passed only on its own: reported as passed (--trio-group-pass-alone)"]
    )


def test_the_alone_file_is_written_once_and_read_by_every_run_without_a_cache(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntrio_group_alone_file = ci/trio-alone.txt\n")
    pytester.makepyfile(RESOURCE.replace("WAIT_FOR_C", "True"))
    first = pytester.runpytest("-p", "no:cacheprovider", "--trio-group-remember-alone")
    first.assert_outcomes(passed=1, failed=1)
    alone_file = pytester.path / "ci" / "trio-alone.txt"
    first.stdout.fnmatch_lines(
        [f"remembered in {alone_file}: every later run runs these on their own*"]
    )
    lines = alone_file.read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == [
        "test_the_alone_file_is_written_once_and_read_by_every_run_without_a_cache.py"
        "::test_b_needs_it_alone"
    ]

    # A fresh machine: no cache, no option, only the committed file.
    second = pytester.runpytest("-p", "no:cacheprovider")
    second.assert_outcomes(passed=2)
    second.stdout.fnmatch_lines(
        [
            "trio_group: 1 test runs on its own, outside its group: it failed only when run "
            f"concurrently before (listed in {alone_file}; --trio-group-forget-alone to group "
            "it again)",
        ]
    )

    forgot = pytester.runpytest("-p", "no:cacheprovider", "--trio-group-forget-alone")
    forgot.assert_outcomes(passed=1, failed=1)
    assert [line for line in alone_file.read_text().splitlines() if not line.startswith("#")] == []


def test_remember_alone_under_xdist_keeps_what_every_worker_found(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    pytester.makeini("[pytest]\ntrio_group_alone_file = trio-alone.txt\n")
    # One group per module, so that each worker gets one.
    for name in ("first", "second"):
        pytester.makepyfile(
            **{f"test_{name}": RESOURCE.replace("WAIT_FOR_C", "True").replace('"g"', f'"{name}"')}
        )
    first = pytester.runpytest("-n", "2", "--trio-group-remember-alone", "-v")
    first.assert_outcomes(passed=2, failed=2)
    workers = {
        line.split("]")[0]
        for line in first.stdout.lines
        if "test_b_needs_it_alone" in line and line.startswith("[gw")
    }
    assert workers == {"[gw0", "[gw1"}
    first.stdout.fnmatch_lines(
        [
            "*= trio_group: failed only when run concurrently =*",
            "test_*.py::test_b_needs_it_alone (trio_group '*') passed on its own;*",
            "test_*.py::test_b_needs_it_alone (trio_group '*') passed on its own;*",
            "remembered in *trio-alone.txt: every later run runs these on their own*",
        ]
    )
    remembered = (pytester.path / "trio-alone.txt").read_text().splitlines()
    assert [line for line in remembered if not line.startswith("#")] == [
        "test_first.py::test_b_needs_it_alone",
        "test_second.py::test_b_needs_it_alone",
    ]

    second = pytester.runpytest("-n", "2")
    second.assert_outcomes(passed=4)
    second.stdout.fnmatch_lines(
        ["trio_group: 2 tests run on their own, outside their groups: they failed only*"]
    )


def test_the_run_alone_starts_without_the_patches_the_group_left_behind(
    pytester: pytest.Pytester,
) -> None:
    # test_a patches, test_b patches over it, test_a undoes, test_b undoes:
    # test_a's value stays until the group ends. test_c, which needs the
    # original, fails beside them; run again on its own it must see the
    # original, not that leftover.
    pytester.makepyfile(
        settings="""
        MODE = "original"
        """,
        test_leftover="""
        import pytest, trio
        import settings

        A_PATCHED, B_PATCHED, A_DONE = trio.Event(), trio.Event(), trio.Event()

        @pytest.fixture
        async def a_done():
            yield
            A_DONE.set()

        @pytest.mark.trio_group("g")
        async def test_a(a_done, monkeypatch):
            monkeypatch.setattr(settings, "MODE", "a")
            A_PATCHED.set()
            await B_PATCHED.wait()

        @pytest.mark.trio_group("g")
        async def test_b(monkeypatch):
            await A_PATCHED.wait()
            monkeypatch.setattr(settings, "MODE", "b")
            B_PATCHED.set()
            await A_DONE.wait()

        @pytest.mark.trio_group("g")
        async def test_c():
            await A_PATCHED.wait()
            assert settings.MODE == "original"
        """,
    )
    result = pytester.runpytest("--trio-group-rerun-alone", "--trio-group-hazards=off")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "test_leftover.py::test_c failed in trio_group 'g' and passed when run again on "
            "its own after the group: it fails only when run concurrently."
        ]
    )


def test_a_test_that_passed_on_its_own_is_named_on_one_short_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        RUNNING = set()

        @pytest.mark.trio_group("g")
        async def test_needs_it_alone():
            await trio.sleep(0.05)
            assert not RUNNING, "others are running: " + "x" * 500

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(12))
        async def test_other(n):
            RUNNING.add(n)
            await trio.sleep(0.2)
            RUNNING.discard(n)
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--trio-group-pass-alone")
    result.assert_outcomes(passed=13, warnings=1)
    shown = ", ".join(f"test_a_test_that_passed_on_*.py::test_other[[]{n}[]]" for n in range(5))
    result.stdout.fnmatch_lines(
        [
            "*PytestWarning: *::test_needs_it_alone failed at call in trio_group 'g' "
            "(AssertionError: others are running: xxx*...) and passed when run again on its own: "
            f"reported as passed (--trio-group-pass-alone). It ran at the same time as: {shown}, "
            "7 more",
            "*::test_needs_it_alone (trio_group 'g') passed on its own; it overlapped with: "
            f"{shown}, 7 more",
        ]
    )
    # The failure's message is cut short in the one-line warning.
    assert "x" * 300 not in result.stdout.str()
