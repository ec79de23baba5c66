"""pytest-trio's marks, trio_mode, runners, clocks and Hypothesis, with and without it (P6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import TrioEnv

# -- the trio mark ------------------------------------------------------------


def test_marked_async_tests_run(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        ran = []

        @pytest.fixture
        async def greeting():
            await trio.sleep(0)
            return "hello"

        @pytest.mark.trio
        async def test_function():
            await trio.sleep(0)
            ran.append("function")

        class TestMethods:
            @pytest.mark.trio
            async def test_method(self, greeting):
                assert greeting == "hello"
                await trio.sleep(0)
                ran.append("method")

        def test_both_ran():
            assert sorted(ran) == ["function", "method"]
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=3)


def test_skip_and_xfail_from_inside_tasks(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    dropin_env.skip_where_pytest_cannot_show_pytest_trio_groups()
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        async def call(function):
            function()

        async def crash():
            raise RuntimeError("a sibling task crashed")

        @pytest.mark.trio
        async def test_xfails():
            pytest.xfail("not yet")

        @pytest.mark.trio
        async def test_skips():
            pytest.skip("not here")

        @pytest.mark.trio
        async def test_xfail_beside_a_crash():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, pytest.xfail)
                nursery.start_soon(crash)

        @pytest.mark.trio
        async def test_skip_beside_a_crash():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, pytest.skip)
                nursery.start_soon(crash)

        @pytest.mark.trio
        async def test_skip_beside_an_xfail():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, pytest.skip)
                nursery.start_soon(call, pytest.xfail)
        """,
    )
    result = pytester.runpytest(*dropin_env.args, "-rA")
    result.assert_outcomes(skipped=1, xfailed=1, failed=3)
    # pytest-trio 0.8 on pytest 9 loses the skip's reason; this plugin keeps it.
    skip_line = "SKIPPED * not here" if dropin_env.ours else "SKIPPED *"
    result.stdout.fnmatch_lines_random(
        [
            "XFAIL *::test_xfails*",
            skip_line,
            "FAILED *::test_xfail_beside_a_crash*",
            "FAILED *::test_skip_beside_a_crash*",
            "FAILED *::test_skip_beside_an_xfail*",
        ]
    )


def test_trio_mark_on_a_sync_test(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest

        @pytest.mark.trio
        def test_not_async():
            pass

        def test_unmarked():
            pass
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    if not dropin_env.ours:
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*is marked trio but is not async*"])
        return
    # A trio test must be async: the test gets a clear error naming it (P1).
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1
    result.stdout.fnmatch_lines(["*test_not_async*"])
    output = result.stdout.str()
    if dropin_env.pytest_trio:
        # Grouped beside pytest-trio, either plugin may refuse it.
        assert "is marked trio but is not async" in output or "async def" in output
    else:
        result.stdout.fnmatch_lines(["*async def*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


# -- trio_mode ----------------------------------------------------------------


def test_trio_mode_runs_every_async_test(
    pytester: pytest.Pytester, dropin_env: TrioEnv, trio_mode_way: str
) -> None:
    pytest.importorskip("hypothesis")
    dropin_env.enable_trio_mode(pytester, trio_mode_way)
    dropin_env.makepyfile(
        pytester,
        """
        import trio
        from hypothesis import given, settings, strategies

        async def test_passes():
            await trio.sleep(0)

        async def test_fails():
            await trio.sleep(0)
            assert 1 == 2

        @settings(deadline=None, max_examples=5)
        @given(strategies.text())
        async def test_examples_pass(text):
            await trio.sleep(0)
            assert isinstance(text, str)

        @settings(deadline=None, max_examples=5)
        @given(strategies.text())
        async def test_examples_fail(text):
            await trio.sleep(0)
            assert isinstance(text, bytes)

        def test_sync_still_runs():
            pass
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines_random(["FAILED *::test_fails*", "FAILED *::test_examples_fail*"])


# A stand-in for qtrio (a Qt host for trio): records that its run was used.
_FAKE_QTRIO = """
import trio

used = False

def run(*args, **kwargs):
    global used
    used = True
    return trio.run(*args, **kwargs)
"""


def _check_ini_runner(result: pytest.RunResult, dropin_env: TrioEnv, runner: str) -> None:
    if dropin_env.pytest_trio:
        # A test on another runner is pytest-trio's business, grouped or not.
        result.assert_outcomes(passed=1)
        return
    # Only trio.run is understood without pytest-trio: the session refuses
    # the setting at once rather than run tests on the wrong runner.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: trio_run = {runner}: without pytest-trio, trio tests are run with "
            "trio.run only (install pytest-trio for other runners)"
        ]
    )


@pytest.mark.parametrize(
    "ini",
    ["trio_mode = true\ntrio_run = qtrio\n", "trio_run = qtrio\n"],
    ids=["trio-mode", "mark-only"],
)
def test_trio_run_names_another_runner(
    pytester: pytest.Pytester, dropin_env: TrioEnv, ini: str
) -> None:
    pytester.makeini("[pytest]\n" + ini)
    pytester.makepyfile(qtrio=_FAKE_QTRIO)
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import qtrio
        import trio

        @pytest.mark.trio
        async def test_on_qtrio():
            await trio.sleep(0)
            assert qtrio.used
        """,
    )
    _check_ini_runner(pytester.runpytest(*dropin_env.args), dropin_env, "qtrio")


def test_unknown_trio_run(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_run = no_such_runner\n")
    dropin_env.makepyfile(
        pytester,
        """
        async def test_anything():
            pass
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    if dropin_env.pytest_trio:
        result.assert_outcomes()
        result.stdout.fnmatch_lines(
            [
                "*ValueError: 'no_such_runner' not valid for 'trio_run' config.  "
                "Must be one of: trio, qtrio"
            ]
        )
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["ERROR: trio_run = no_such_runner: without pytest-trio, *"])


@pytest.mark.parametrize(
    "marks",
    [
        ["@pytest.mark.trio(run=qtrio.run)"],
        ["@pytest.mark.trio(run='never used')", "@pytest.mark.trio(run=qtrio.run)"],
    ],
    ids=["mark-run", "closest-mark-run-wins"],
)
def test_runner_chosen_by_the_mark(
    pytester: pytest.Pytester,
    dropin_env: TrioEnv,
    marks: list[str],
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_run = trio\n")
    pytester.makepyfile(qtrio=_FAKE_QTRIO)
    dropin_env.makepyfile(
        pytester,
        "import pytest\nimport qtrio\nimport trio\n\n"
        + "\n".join(marks)
        + "\nasync def test_on_qtrio():\n    await trio.sleep(0)\n    assert qtrio.used\n",
    )
    result = pytester.runpytest(*dropin_env.args)
    if dropin_env.pytest_trio:
        # pytest-trio's business, grouped or not: the closest mark's runner.
        result.assert_outcomes(passed=1)
        return
    # Refused with a message that names the runner the test asked for.
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "invalid trio mark on *::test_on_qtrio: the test asks to be run by qtrio.run; "
            "pytest-trio-groups runs trio tests with trio.run (install pytest-trio for other runners)"
        ]
    )


# -- clock fixtures -----------------------------------------------------------


def test_autojump_clock_jumps_over_sleeps(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        @pytest.mark.trio
        async def test_sleeps(autojump_clock):
            assert trio.current_time() == 0
            for seconds in range(10):
                before = trio.current_time()
                await trio.sleep(seconds)
                assert trio.current_time() - before == seconds

        @pytest.mark.trio
        async def test_a_day(autojump_clock):
            await trio.sleep(24 * 3600)
            assert trio.current_time() == 24 * 3600
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=2)


def test_mock_clock_moves_when_told(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        @pytest.mark.trio
        async def test_jump(mock_clock):
            assert trio.current_time() == 0
            mock_clock.jump(7)
            assert trio.current_time() == 7

        @pytest.mark.trio
        async def test_autojump_when_asked(mock_clock):
            mock_clock.autojump_threshold = 0
            await trio.sleep(100)
            assert trio.current_time() == 100
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=2)


def test_deadlines_stay_in_real_seconds_under_a_virtual_clock(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    # Hours of virtual time pass in no real time: a 5 s deadline must not
    # fire, whichever clock the test's run has.
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        @pytest.mark.trio
        async def test_autojump(autojump_clock):
            await trio.sleep(3 * 3600)
            assert trio.current_time() == 3 * 3600

        @pytest.mark.trio
        async def test_mock(mock_clock):
            mock_clock.autojump_threshold = 0
            await trio.sleep(3 * 3600)
        """,
    )
    pytester.runpytest(*dropin_env.args, "-o", "trio_group_timeout=5").assert_outcomes(passed=2)


def test_who_shares_a_run(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    # Tests that saw the same root task ran in the same trio run.
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        runs = {}

        def note(name):
            runs[name] = (trio.lowlevel.current_root_task(), trio.lowlevel.current_clock())

        @pytest.mark.trio
        async def test_plain_one():
            note("plain_one")

        @pytest.mark.trio
        async def test_plain_two():
            note("plain_two")

        @pytest.mark.trio
        async def test_jumping_one(autojump_clock):
            note("jumping_one")
            assert trio.lowlevel.current_clock() is autojump_clock

        @pytest.mark.trio
        async def test_jumping_two(autojump_clock):
            note("jumping_two")
            assert trio.lowlevel.current_clock() is autojump_clock

        @pytest.mark.trio
        async def test_mocked_one(mock_clock):
            note("mocked_one")
            assert trio.lowlevel.current_clock() is mock_clock

        @pytest.mark.trio
        async def test_mocked_two(mock_clock):
            note("mocked_two")
            assert trio.lowlevel.current_clock() is mock_clock

        def test_runs():
            def same_run(a, b):
                return runs[a][0] is runs[b][0]

            assert len(runs) == 6
            assert same_run("plain_one", "plain_two") is GROUPED
            assert same_run("jumping_one", "jumping_two") is GROUPED
            assert runs["jumping_one"][1] is runs["jumping_two"][1] or not GROUPED
            # A clock belongs to one run: clocked tests never join the plain
            # tests' run, and mock_clock tests run alone.
            assert not same_run("plain_one", "jumping_one")
            assert not same_run("mocked_one", "mocked_two")
            assert not same_run("mocked_one", "plain_one")
            assert not same_run("mocked_one", "jumping_one")
        """.replace("GROUPED", str(dropin_env.grouped)),
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=7)


# -- Hypothesis ---------------------------------------------------------------


def test_hypothesis_with_the_trio_mark(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    pytest.importorskip("hypothesis")
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio
        from hypothesis import given, settings, strategies

        few = settings(deadline=None, max_examples=5)
        examples = []

        @few
        @given(strategies.integers())
        @pytest.mark.trio
        async def test_mark_below_given(n):
            await trio.sleep(0)
            examples.append(("below", n))
            assert isinstance(n, int)

        @few
        @pytest.mark.trio
        @given(strategies.integers())
        async def test_mark_above_given(n):
            await trio.sleep(0)
            examples.append(("above", n))
            assert isinstance(n, int)

        @few
        @pytest.mark.parametrize("y", [1, 2])
        @given(x=strategies.none())
        @pytest.mark.trio
        async def test_with_parametrize(x, y):
            await trio.sleep(0)
            examples.append(("parametrized", y))
            assert x is None and y in (1, 2)

        def test_every_example_ran():
            kinds = {kind for kind, _ in examples}
            assert kinds == {"below", "above", "parametrized"}
            assert sum(kind == "below" for kind, _ in examples) >= 1
            assert {y for kind, y in examples if kind == "parametrized"} == {1, 2}
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=5)


# -- auto-grouping: what a pytest-trio suite gains ----------------------------


def test_tests_of_a_module_share_one_run_only_when_grouped(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    # Each test waits until every task of its run is blocked, then looks at
    # who has started: grouped, both have; ungrouped, each is alone.
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio
        from trio.testing import wait_all_tasks_blocked

        started = []
        seen = {}

        @pytest.mark.trio
        async def test_first():
            started.append("first")
            await wait_all_tasks_blocked()
            seen["first"] = sorted(started)

        @pytest.mark.trio
        async def test_second():
            started.append("second")
            await wait_all_tasks_blocked()
            seen["second"] = sorted(started)

        def test_seen():
            if GROUPED:
                assert seen == {"first": ["first", "second"], "second": ["first", "second"]}
            else:
                assert seen == {"first": ["first"], "second": ["first", "second"]}
        """.replace("GROUPED", str(dropin_env.grouped)),
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=3)


def test_trio_alone_mark_keeps_a_test_out_of_the_group(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        roots = {}

        @pytest.mark.trio
        async def test_member_one():
            roots["one"] = trio.lowlevel.current_root_task()

        @pytest.mark.trio
        async def test_member_two():
            roots["two"] = trio.lowlevel.current_root_task()

        @pytest.mark.trio_alone
        @pytest.mark.trio
        async def test_loner():
            roots["loner"] = trio.lowlevel.current_root_task()

        def test_roots():
            assert (roots["one"] is roots["two"]) is GROUPED
            assert roots["loner"] is not roots["one"]
            assert roots["loner"] is not roots["two"]
        """.replace("GROUPED", str(dropin_env.grouped)),
    )
    # The mark is this plugin's, known whether or not anything is grouped.
    pytester.runpytest(*dropin_env.args, "--strict-markers").assert_outcomes(passed=4)


def test_trio_mode_suite_in_pytest_trio_style(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    # A suite as pytest-trio users write it: trio_mode, a server in the
    # nursery fixture, async yield fixtures, virtual time.
    dropin_env.enable_trio_mode(pytester, "ini")
    dropin_env.makepyfile(
        pytester,
        """
        from functools import partial

        import pytest
        import trio
        import trio.testing

        async def upper_echo(stream):
            while data := await stream.receive_some(64):
                await stream.send_all(data.upper())

        @pytest.fixture
        async def listener(nursery):
            listeners = await nursery.start(partial(trio.serve_tcp, upper_echo, 0, host="127.0.0.1"))
            return listeners[0]

        @pytest.fixture
        async def client(listener):
            stream = await trio.testing.open_stream_to_socket_listener(listener)
            async with stream:
                yield stream

        @pytest.mark.parametrize("word", [b"alpha", b"beta", b"gamma"])
        async def test_shouts_back(client, word):
            await client.send_all(word)
            assert await client.receive_some(64) == word.upper()

        async def test_polls_with_virtual_time(autojump_clock):
            ticks = 0
            while ticks < 60:
                await trio.sleep(1)
                ticks += 1
            assert trio.current_time() == 60

        async def test_background_work(nursery):
            results = []

            async def worker(n):
                await trio.sleep(0)
                results.append(n)

            for n in range(5):
                nursery.start_soon(worker, n)
            await trio.testing.wait_all_tasks_blocked()
            assert sorted(results) == list(range(5))

        def test_sync_tests_are_left_alone(tmp_path):
            assert tmp_path.exists()
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=6)


_GROUPING_LAYOUT = {
    "test_alpha.py": """
        import pytest
        import trio

        from roots import note

        @pytest.mark.trio
        async def test_top_one():
            note("alpha top one")

        @pytest.mark.trio
        async def test_top_two():
            note("alpha top two")

        class TestKind:
            @pytest.mark.trio
            async def test_in_class_one(self):
                note("alpha class one")

            @pytest.mark.trio
            async def test_in_class_two(self):
                note("alpha class two")

        @pytest.mark.trio_group("chosen")
        async def test_explicit(request):
            note("alpha explicit")
        """,
    "test_beta.py": """
        import pytest
        import trio

        from roots import note

        @pytest.mark.trio
        async def test_other_module():
            note("beta")

        @pytest.mark.trio_group("chosen")
        async def test_explicit_too():
            note("beta explicit")
        """,
    "roots.py": """
        import trio

        ROOTS = {}

        def note(name):
            ROOTS[name] = trio.lowlevel.current_root_task()
        """,
}

_GROUPING_CHECK = """
    from roots import ROOTS

    def same_run(a, b):
        return ROOTS[a] is ROOTS[b]

    def test_groups():
        assert len(ROOTS) == 7
        # An explicit trio_group mark wins over the automatic group.
        assert same_run("alpha explicit", "beta explicit")
        assert not same_run("alpha explicit", "alpha top one")
        assert same_run("alpha class one", "alpha class two") is (BY != "none")
        if BY != "class":
            # (Grouped by class, tests outside a class are the plugin's choice.)
            assert same_run("alpha top one", "alpha top two") is (BY in ("module", "session"))
        assert same_run("alpha top one", "alpha class one") is (BY in ("module", "session"))
        assert same_run("alpha top one", "beta") is (BY == "session")
    """


@pytest.mark.parametrize("group_by", ["none", "module", "class", "session"])
@pytest.mark.parametrize("how", ["ini", "option"])
def test_trio_group_by_names_the_automatic_group(
    pytester: pytest.Pytester, trio_env: TrioEnv, group_by: str, how: str
) -> None:
    for name, source in _GROUPING_LAYOUT.items():
        pytester.makepyfile(**{name.removesuffix(".py"): source})
    pytester.makepyfile(test_zcheck=_GROUPING_CHECK.replace("BY", repr(group_by)))
    if how == "ini":
        pytester.makeini(f"[pytest]\ntrio_group_by = {group_by}\n")
        args = trio_env.args
    else:
        args = (*trio_env.args, f"--trio-group-by={group_by}")
    pytester.runpytest(*args).assert_outcomes(passed=8)


@pytest.mark.parametrize("asked_by", ["mark", "ini"])
def test_a_trio_group_mark_refuses_a_test_that_asks_for_another_runner(
    pytester: pytest.Pytester, dropin_env: TrioEnv, asked_by: str
) -> None:
    # An automatic group leaves such a test to pytest-trio; an explicit
    # group would run it in its plain trio.run, so the mark is refused,
    # naming the runner. The other tests still run.
    if asked_by == "ini" and not dropin_env.pytest_trio:
        pytest.skip("without pytest-trio, trio_run = qtrio is refused for the whole session")
    ini_runner = "qtrio" if asked_by == "ini" else "trio"
    pytester.makeini(f"[pytest]\ntrio_mode = true\ntrio_run = {ini_runner}\n")
    pytester.makepyfile(qtrio=_FAKE_QTRIO)
    mark = "@pytest.mark.trio(run=qtrio.run)\n" if asked_by == "mark" else ""
    dropin_env.makepyfile(
        pytester,
        "import pytest\nimport qtrio\nimport trio\n\n"
        f'{mark}@pytest.mark.trio_group("g")\n'
        "async def test_grouped():\n    pass\n\n"
        "@pytest.mark.trio(run=trio.run)\n"
        '@pytest.mark.trio_group("g")\n'
        "async def test_grouped_on_trio():\n    assert not qtrio.used\n\n"
        "def test_sync():\n    pass\n",
    )
    result = pytester.runpytest(*dropin_env.args)
    result.assert_outcomes(passed=2, errors=1)
    # (pytest-trio's trio_mode marks each test with the ini's runner.)
    result.stdout.fnmatch_lines(
        [
            "invalid trio_group mark on *::test_grouped: the test asks to be run by qtrio.run, "
            "but a trio_group runs its tests in one trio.run; remove the trio_group mark, or "
            "mark the test @pytest.mark.trio(run=trio.run) if trio.run can run it"
        ]
    )


def test_the_summary_counts_the_trio_tests_left_to_pytest_trio_for_their_runner(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    # A suite adopted with trio_group_by whose tests all ask for qtrio would
    # otherwise group nothing and say nothing.
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(qtrio=_FAKE_QTRIO)
    dropin_env.makepyfile(
        pytester,
        "import pytest\nimport qtrio\nimport trio\n\n"
        "@pytest.mark.trio(run=qtrio.run)\nasync def test_one():\n    pass\n\n"
        "@pytest.mark.trio(run=qtrio.run)\nasync def test_two():\n    pass\n\n"
        "async def test_plain():\n    pass\n",
    )
    result = pytester.runpytest(*dropin_env.args)
    line = (
        "trio_group_by = module: 2 trio tests ask for another runner (qtrio.run), so no "
        "automatic group takes them; pytest-trio runs each in a run of its own"
    )
    if dropin_env.pytest_trio and dropin_env.grouped:
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(["*= trio_group summary =*", "*: 1 test (1 passed)*", line])
    else:
        # Not grouped: nothing to say; without pytest-trio: refused, as documented.
        assert line not in result.stdout.lines
