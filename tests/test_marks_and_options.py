"""The marker, the options, and every bad input of the mark (P1)."""

from __future__ import annotations

import pytest


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.trio_group(name=None, *, timeout=None): run this async test concurrently*"]
    )


def test_options_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*--trio-group-limit=N*",
            "*--trio-group-timeout=SECONDS*",
            "*--trio-group-teardown-timeout=SECONDS*",
            "*trio_group_limit (string):*",
            "*trio_group_timeout (string):*",
        ]
    )


@pytest.mark.parametrize("value", ["0", "-3", "abc", "1.5"])
def test_bad_limit_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(f"--trio-group-limit={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --trio-group-limit must be a positive integer, got '{value}'"]
    )


def test_bad_ini_limit_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_group_limit = none\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: trio_group_limit must be a positive integer, got 'none'"])


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_bad_default_timeout_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(f"--trio-group-timeout={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --trio-group-timeout must be a positive number of seconds, got '{value}'"]
    )


BAD_MARKS = [
    ('trio_group("")', "the group name must be a non-empty string, got ''"),
    ("trio_group(42)", "the group name must be a non-empty string, got 42"),
    ('trio_group(name="")', "the group name must be a non-empty string, got ''"),
    ('trio_group("g", timeout=-1)', "timeout must be a positive number of seconds, got -1"),
    ('trio_group("g", timeout=0)', "timeout must be a positive number of seconds, got 0"),
    (
        'trio_group("g", timeout=float("nan"))',
        "timeout must be a positive number of seconds, got nan",
    ),
    ('trio_group("g", timeout="5")', "timeout must be a positive number of seconds, got '5'"),
    ('trio_group("g", timeout=True)', "timeout must be a positive number of seconds, got True"),
    (
        'trio_group("g", timout=5)',
        "unknown keyword argument(s) 'timout'; trio_group accepts name= and timeout=",
    ),
    (
        'trio_group("g", "h")',
        "takes at most one positional argument (the group name), got 2",
    ),
    (
        'trio_group("g", name="h")',
        "the group name is given both positionally and as name=",
    ),
]


@pytest.mark.parametrize(("mark", "message"), BAD_MARKS)
def test_bad_mark_errors_that_test_only(pytester: pytest.Pytester, mark: str, message: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest, trio

        @pytest.mark.{mark}
        async def test_bad():
            raise AssertionError("must not run")

        @pytest.mark.trio_group("g")
        async def test_good():
            await trio.sleep(0)

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("-rE")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_bad*",
            f"invalid trio_group mark on test_bad_mark_errors_that_test_only.py::test_bad: {message}",
        ]
    )
    result.stdout.no_fnmatch_line("*must not run*")


@pytest.mark.parametrize(
    ("definition", "kind"),
    [
        ("def test_bad():\n    pass", "a synchronous function"),
        ("async def test_bad():\n    yield", "an async generator function"),
    ],
)
def test_non_async_test_in_a_group_is_an_error(
    pytester: pytest.Pytester, definition: str, kind: str
) -> None:
    pytester.makepyfile(
        "import pytest\n\n"
        f'@pytest.mark.trio_group("g")\n{definition}\n\n'
        '@pytest.mark.trio_group("g")\nasync def test_good():\n    pass\n'
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "invalid trio_group mark on *::test_bad: the test is "
            f"{kind}; trio_group tests must be 'async def' functions"
        ]
    )


def test_generator_test_in_a_group_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio_group("g")
        def test_gen():
            yield

        @pytest.mark.trio_group("g")
        async def test_good():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "invalid trio_group mark on *::test_gen: the test is a generator function; "
            "trio_group tests must be 'async def' functions"
        ]
    )


def test_mark_without_name_runs_alone_with_its_deadline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group(timeout=0.2)
        async def test_alone():
            await trio.sleep(10)

        @pytest.mark.trio_group(timeout=0.2)
        async def test_other():
            await trio.sleep(0)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["E * Failed: Timeout: test exceeded 0.2s (trio_group of test_alone)"]
    )


def test_default_timeout_from_ini_and_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_group_timeout = 30\n")
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g")
        async def test_default():
            await trio.sleep(10)

        @pytest.mark.trio_group("g", timeout=None)
        async def test_no_deadline():
            await trio.sleep(0.3)
        """
    )
    result = pytester.runpytest("--trio-group-timeout=0.1")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Timeout: test exceeded 0.1s (trio_group 'g')"])


def test_closest_mark_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        pytestmark = pytest.mark.trio_group("module", timeout=0.1)

        @pytest.mark.trio_group("function", timeout=5)
        async def test_function_mark():
            await trio.sleep(0.3)

        async def test_module_mark():
            await trio.sleep(0.3)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Timeout: test exceeded 0.1s (trio_group 'module')"])


def test_a_bad_module_mark_errors_each_test_it_marks(pytester: pytest.Pytester) -> None:
    # One mark object, read for many tests: every one of them gets the error
    # under its own name, and a closer mark still wins over it.
    pytester.makepyfile(
        test_shared="""
        import pytest, trio

        pytestmark = pytest.mark.trio_group("g", timeout=-1)

        async def test_a():
            raise AssertionError("must not run")

        async def test_b():
            raise AssertionError("must not run")

        @pytest.mark.trio_group("own")
        async def test_own():
            await trio.sleep(0)

        class TestClass:
            pytestmark = pytest.mark.trio_group("class")

            async def test_in_class(self):
                await trio.sleep(0)
        """
    )
    result = pytester.runpytest("-p", "no:trio", "-rE")
    result.assert_outcomes(passed=2, errors=2)
    message = "timeout must be a positive number of seconds, got -1"
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_a*",
            f"invalid trio_group mark on test_shared.py::test_a: {message}",
            "*ERROR at setup of test_b*",
            f"invalid trio_group mark on test_shared.py::test_b: {message}",
        ],
        consecutive=True,
    )
    result.stdout.no_fnmatch_line("*must not run*")


def test_a_module_mark_shared_by_tests_with_different_clocks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mark_clocks="""
        import pytest, trio

        pytestmark = pytest.mark.trio_group("g", timeout=5)

        async def test_one():
            await trio.sleep(0)

        async def test_two():
            await trio.sleep(0)

        async def test_autojump(autojump_clock):
            await trio.sleep(100)

        async def test_mock(mock_clock):
            await trio.sleep(0)

        class TestAlone:
            pytestmark = pytest.mark.trio_alone

            async def test_alone(self):
                await trio.sleep(0)
        """
    )
    collected = pytester.runpytest("-p", "no:trio", "--collect-only")
    collected.stdout.fnmatch_lines(
        [
            "trio_group 'g': 2 tests",
            "trio_group 'g' [autojump_clock]: 1 test",
            "test_mark_clocks.py::test_mock runs alone: it uses mock_clock (not with trio_group 'g')",
        ],
        consecutive=True,
    )
    result = pytester.runpytest("-p", "no:trio")
    result.assert_outcomes(passed=5)


def test_a_trio_mark_on_a_class_joins_its_tests_to_the_module_group(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_auto="""
        import pytest, trio

        class TestTrio:
            pytestmark = pytest.mark.trio

            async def test_x(self):
                await trio.sleep(0)

            async def test_y(self):
                await trio.sleep(0)

        def test_sync():
            pass
        """
    )
    args = ("-p", "no:trio", "-o", "trio_group_by=module")
    collected = pytester.runpytest(*args, "--collect-only")
    collected.stdout.fnmatch_lines(["trio_group 'test_auto.py' (trio_group_by = module): 2 tests"])
    pytester.runpytest(*args).assert_outcomes(passed=3)


def test_a_module_or_class_mark_leaves_sync_tests_ungrouped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        pytestmark = pytest.mark.trio_group("module")

        RAN = []

        async def test_async():
            RAN.append("async")
            await trio.sleep(0)

        def test_sync():
            with pytest.raises(RuntimeError):
                trio.lowlevel.current_task()
            RAN.append("sync")

        class TestClass:
            pytestmark = pytest.mark.trio_group("class")

            def test_sync_in_class(self):
                RAN.append("sync in class")

        @pytest.mark.trio_group("own")
        def test_explicitly_marked_sync():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-v")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "trio_group 'module': 1 test",
            "*::test_async PASSED*",
            "*::test_sync PASSED*",
            "*::TestClass::test_sync_in_class PASSED*",
            "*::test_explicitly_marked_sync ERROR*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*invalid trio_group mark on *::test_explicitly_marked_sync: the test is a "
            "synchronous function; trio_group tests must be 'async def' functions"
        ]
    )
    result.stdout.no_fnmatch_line("trio_group 'class'*")
