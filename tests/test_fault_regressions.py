"""Faults that once hung the run, crashed pytest or lost reports: each pinned here."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import time

import pytest

# Runs that could hang are made in a subprocess with a bound, so that a
# regression fails the test instead of stalling the suite.
HANG_BOUND = 60


def test_interrupt_in_a_sync_finalizer_over_an_async_fixture_ends_the_run(
    pytester: pytest.Pytester,
) -> None:
    log = pytester.path / "log"
    pytester.makepyfile(
        f"""
        import pytest

        def note(line):
            with open({str(log)!r}, "a") as f:
                f.write(line + "\\n")

        @pytest.fixture
        async def outer():
            yield 1
            note("outer down")

        @pytest.fixture
        def inner(request, outer):
            def fin():
                note("inner fin")
                raise KeyboardInterrupt("from a finalizer")
            request.addfinalizer(fin)
            return 1

        @pytest.mark.trio_group("g", timeout=5)
        async def test_it(inner):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=HANG_BOUND)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*!!! KeyboardInterrupt: from a finalizer !!!*", "*= 1 passed in *"]
    )
    # The async fixture it depends on is still torn down, after it.
    assert log.read_text() == "inner fin\nouter down\n"


def test_interrupt_in_teardown_keeps_the_earlier_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def fx():
            yield
            raise KeyboardInterrupt

        @pytest.mark.trio_group("g", timeout=5)
        async def test_it(fx):
            pass

        def test_after():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider", timeout=HANG_BOUND)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*::test_it PASSED*", "*!!! KeyboardInterrupt !!!*", "*= 1 passed in *"]
    )
    result.stdout.no_fnmatch_line("*test_after*")


def test_fixture_that_swallows_cancelled_in_setup_is_an_error_and_torn_down(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        LOG = []

        @pytest.fixture
        async def swallower():
            try:
                await trio.sleep(10)
            except trio.Cancelled:
                pass
            yield 1
            LOG.append("torn down")

        @pytest.mark.trio_group("g", timeout=0.2)
        async def test_it(swallower):
            LOG.append("call ran")

        def test_after():
            assert LOG == ["torn down"]
        """
    )
    result = pytester.runpytest_subprocess("-rE", "-p", "no:cacheprovider", timeout=HANG_BOUND)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_it _*",
            ">   async def swallower():",
            "*",
            "E   pytest_trio_groups.FixtureProtocolError: async fixture 'swallower' swallowed"
            " trio.Cancelled during setup and yielded a value anyway; let trio.Cancelled"
            " propagate",
        ]
    )
    result.stdout.no_fnmatch_line("*Cancelled: cancelled due to deadline*")


def test_errors_from_async_fixtures_show_the_users_frames_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        async def coroutine_fixture():
            raise ValueError("boom in a coroutine fixture")

        @pytest.fixture
        async def stuck_teardown():
            yield
            await trio.sleep_forever()

        @pytest.fixture
        async def no_yield():
            if False:
                yield

        @pytest.mark.trio_group("g", timeout=5)
        async def test_setup_error(coroutine_fixture):
            pass

        @pytest.mark.trio_group("g", timeout=5)
        async def test_stuck(stuck_teardown):
            pass

        @pytest.mark.trio_group("g", timeout=5)
        async def test_no_yield(no_yield):
            pass
        """
    )
    result = pytester.runpytest("--trio-group-teardown-timeout=0.2", "-rE")
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_setup_error _*",
            "",
            "    @pytest.fixture",
            "    async def coroutine_fixture():",
            '>       raise ValueError("boom in a coroutine fixture")',
            "E       ValueError: boom in a coroutine fixture",
            "",
            "test_errors_from_async_fixtures_show_the_users_frames_only.py:5: ValueError",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at teardown of test_stuck _*",
            "",
            "    @pytest.fixture",
            "    async def stuck_teardown():",
            "        yield",
            ">       await trio.sleep_forever()",
            "E       Failed: Timeout: teardown of fixture 'stuck_teardown' exceeded the 0.2s"
            " grace period and was cancelled",
            "",
            "test_errors_from_async_fixtures_show_the_users_frames_only.py:10: Failed",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_no_yield _*",
            "",
            ">   async def no_yield():",
            "*",
            "E   pytest_trio_groups.FixtureProtocolError: async fixture 'no_yield' did not"
            " yield a value",
            "",
            "test_errors_from_async_fixtures_show_the_users_frames_only.py:13: FixtureProtocolError",
        ]
    )
    for hidden in (
        "*AwaitFixture*",
        "*pytest_trio_groups/*.py*",
        "*trio/_core*",
        "*During handling*",
    ):
        result.stdout.no_fnmatch_line(hidden)


def test_class_scoped_fixture_outside_a_class_is_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        LOG = []
        SECOND_RUNNING = trio.Event()

        @pytest.fixture(scope="class")
        def per_class():
            LOG.append("class up")
            yield
            LOG.append("class down")

        @pytest.fixture
        def per_test(per_class):
            LOG.append("test up")
            yield
            LOG.append("test down")

        @pytest.mark.trio_group("g", timeout=5)
        async def test_first(per_test):
            await SECOND_RUNNING.wait()

        @pytest.mark.trio_group("g", timeout=5)
        async def test_second(per_test):
            SECOND_RUNNING.set()
            # Let the first finish and be torn down while this one runs.
            for _ in range(20):
                await trio.sleep(0)
            assert LOG == [
                "class up", "test up", "class up", "test up", "test down", "class down"
            ], LOG

        def test_after():
            assert LOG.count("test down") == 2 and LOG.count("class down") == 2, LOG
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("timeout", "outcome"),
    [
        ("10**400", "passed"),
        ("float('inf')", "passed"),
        ("Decimal('1e500')", "passed"),
        ("Decimal('30')", "passed"),
        ("Fraction(61, 2)", "passed"),
        ("Fraction(10**400, 3)", "passed"),
        ("-10**400", "timeout must be a positive number of seconds, got -1000000000000000000*"),
        (
            "-10**5000",
            "timeout must be a positive number of seconds, got <int that cannot be shown>",
        ),
        ("Decimal('NaN')", "timeout must be a positive number of seconds, got Decimal('NaN')"),
        ("Decimal('sNaN')", "timeout must be a positive number of seconds, got Decimal('sNaN')"),
        ("Fraction(0)", "timeout must be a positive number of seconds, got Fraction(0, 1)"),
        ("1j", "timeout must be a positive number of seconds, got 1j"),
    ],
)
def test_huge_and_odd_timeouts_are_accepted_or_refused_clearly(
    pytester: pytest.Pytester, timeout: str, outcome: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest, trio
        from decimal import Decimal
        from fractions import Fraction

        @pytest.mark.trio_group("g", timeout={timeout})
        async def test_it():
            await trio.sleep(0)

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("-rE")
    if outcome == "passed":
        result.assert_outcomes(passed=2)
        return
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"invalid trio_group mark on *::test_it: {outcome}"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def _wait_for(path: pathlib.Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + HANG_BOUND
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def _pytest_process(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_second_ctrl_c_cuts_teardown_short_and_says_so(pytester: pytest.Pytester) -> None:
    running = pytester.path / "running"
    tearing_down = pytester.path / "tearing_down"
    pytester.makepyfile(
        f"""
        import pathlib, pytest, trio

        @pytest.fixture
        async def slow_to_close():
            yield
            pathlib.Path({str(tearing_down)!r}).touch()
            await trio.sleep(60)

        @pytest.fixture(scope="module")
        async def shared():
            yield
            await trio.sleep(60)

        @pytest.mark.trio_group("g")
        async def test_quick():
            pass

        @pytest.mark.trio_group("g")
        async def test_waits(slow_to_close, shared):
            pathlib.Path({str(running)!r}).touch()
            await trio.sleep_forever()

        @pytest.mark.trio_group("g")
        async def test_waits_too(shared):
            await trio.sleep_forever()

        def test_after():
            pass
        """
    )
    proc = _pytest_process(pytester, "-v", "-rs")
    _wait_for(running, proc)
    proc.send_signal(signal.SIGINT)
    _wait_for(tearing_down, proc)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=HANG_BOUND)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "INTERNALERROR" not in output, output
    lines = output.splitlines()
    for name, outcome in (
        ("test_quick", "PASSED"),
        ("test_waits", "SKIPPED"),
        ("test_waits_too", "SKIPPED"),
    ):
        reported = [line for line in lines if line.startswith("test_") and f"::{name} " in line]
        assert len(reported) == 1 and outcome in reported[0], output
    assert any(line.startswith("!!!") and "KeyboardInterrupt" in line for line in lines), output
    assert (
        "a second KeyboardInterrupt cut short the teardown of trio_group 'g': the teardown of"
        " test_second_ctrl_c_cuts_teardown_short_and_says_so.py::test_waits did not finish"
        " and is not reported; their fixtures may not be torn down"
    ) in output, output
    assert "test_after" not in output


def test_a_test_can_expect_keyboard_interrupt_from_its_own_code(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import os, signal
        import pytest, trio

        @pytest.mark.trio_group("g", timeout=5)
        async def test_direct():
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                await trio.sleep(5)

        @pytest.mark.trio_group("g", timeout=5)
        async def test_in_a_nursery():
            with pytest.RaisesGroup(KeyboardInterrupt):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(trio.sleep_forever)
                    os.kill(os.getpid(), signal.SIGINT)
                    await trio.sleep(5)

        @pytest.mark.trio_group("g", timeout=5)
        async def test_sibling():
            await trio.sleep(0.05)

        def test_after():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=HANG_BOUND)
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.OK


def test_uncaught_keyboard_interrupt_from_a_test_stops_the_session(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import os, signal
        import pytest, trio

        @pytest.mark.trio_group("g", timeout=5)
        async def test_signals_itself():
            await trio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            await trio.sleep(5)

        @pytest.mark.trio_group("g", timeout=5)
        async def test_sibling():
            await trio.sleep_forever()

        def test_after():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-v", "-rs", "-p", "no:randomly", timeout=HANG_BOUND)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*::test_sibling SKIPPED*",
            "SKIPPED [[]1] *: cancelled: KeyboardInterrupt in *::test_signals_itself",
            "*!!! KeyboardInterrupt !!!*",
            "*test_uncaught_keyboard_interrupt_from_a_test_stops_the_session.py:7: KeyboardInterrupt",
        ]
    )
    result.stdout.no_fnmatch_line("*test_after*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


ASYNCIO_BESIDE_GROUPS = """
    import asyncio
    import pytest, trio

    @pytest.fixture
    async def trio_resource():
        await trio.sleep(0)
        yield "generator"

    @pytest.fixture
    async def trio_value():
        await trio.sleep(0)
        return "coroutine"

    @pytest.mark.trio_group("g", timeout=5)
    async def test_grouped(trio_resource, trio_value):
        await trio.sleep(0)
        assert (trio_resource, trio_value) == ("generator", "coroutine")

    @pytest.mark.trio_group("g", timeout=5)
    async def test_grouped_too(trio_resource):
        assert trio_resource == "generator"

    @pytest.mark.asyncio
    async def test_asyncio():
        await asyncio.sleep(0)
"""


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_group_members_keep_their_fixtures_beside_pytest_asyncio(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    pytest.importorskip("pytest_asyncio")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(ASYNCIO_BESIDE_GROUPS)
    pytester.makepyfile(
        test_asyncio_fixtures="""
        import asyncio
        import pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def asyncio_value():
            await asyncio.sleep(0)
            return 1

        @pytest.mark.asyncio
        async def test_asyncio_fixture(asyncio_value):
            assert asyncio_value == 1
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)
    result.stdout.re_match_lines([rf"(?i)asyncio: mode=(mode\.)?{mode},"])


def test_group_members_keep_their_fixtures_beside_anyio(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("anyio")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly -p no:asyncio")
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        async def trio_resource():
            await trio.sleep(0)
            yield "mine"

        @pytest.mark.trio_group("g", timeout=5)
        async def test_grouped(trio_resource):
            assert trio_resource == "mine"

        @pytest.fixture
        def anyio_backend():
            return "trio"

        @pytest.fixture
        async def anyio_resource():
            yield "anyio's"

        @pytest.mark.anyio
        async def test_anyio(anyio_resource):
            assert anyio_resource == "anyio's"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)


def test_several_teardown_errors_say_the_first_and_show_no_plugin_frame(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_td="""
        import pytest, trio

        @pytest.fixture
        def first():
            yield
            raise ValueError("first teardown failed")

        @pytest.fixture
        async def second():
            yield
            raise RuntimeError("second teardown failed")

        @pytest.mark.trio_group("g")
        async def test_a(first, second):
            await trio.sleep(0)
        """
    )
    result = pytester.runpytest("-rE", "--tb=short")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ExceptionGroup: ValueError: first teardown failed (and 1 more error while "
            "tearing down <Function test_a>) (2 sub-exceptions)",
            "*ValueError: first teardown failed",
            "*RuntimeError: second teardown failed",
            "ERROR test_td.py::test_a - ExceptionGroup: ValueError: first teardown failed*",
        ]
    )
    result.stdout.no_fnmatch_line("*pytest_trio_groups*")


def test_each_fixture_teardown_has_its_own_grace_period(pytester: pytest.Pytester) -> None:
    log = pytester.path / "log"
    pytester.makepyfile(
        test_grace=f"""
        import pytest, trio

        def note(line):
            with open({str(log)!r}, "a") as f:
                f.write(line + "\\n")

        @pytest.fixture(scope="session")
        async def slow_to_close():
            yield
            await trio.sleep(0.6)
            note("session fixture closed")

        @pytest.fixture
        async def stuck():
            yield
            await trio.sleep_forever()

        @pytest.mark.trio_group("g")
        async def test_a(slow_to_close, stuck):
            pass
        """
    )
    result = pytester.runpytest("--trio-group-teardown-timeout=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*Timeout: teardown of fixture 'stuck' exceeded the 1s grace period and was cancelled"]
    )
    result.stdout.no_fnmatch_line("*'slow_to_close' exceeded*")
    assert log.read_text() == "session fixture closed\n"


def test_members_from_two_modules_leave_a_module_fixture_to_its_module_end(
    pytester: pytest.Pytester,
) -> None:
    # The group's members are put together at the first one's place, before
    # a sync test of the first module: the module's fixtures stay set up
    # for it (once), and a teardown error is that test's, as pytest reports
    # it at the module's end -- not an INTERNALERROR between members.
    pytester.makeconftest(
        """
        import pytest, trio

        SET_UP = []

        @pytest.fixture(scope="module")
        async def shared(request):
            await trio.sleep(0)
            SET_UP.append(request.module.__name__)
            def fin():
                raise RuntimeError("module fixture teardown failed")
            request.addfinalizer(fin)
            return 1
        """
    )
    pytester.makepyfile(
        test_m0="""
        import pytest, trio
        from conftest import SET_UP

        @pytest.mark.trio_group("g", timeout=60)
        async def test_t0(shared):
            await trio.sleep(0)

        @pytest.mark.trio_group("g", timeout=60)
        async def test_t1():
            await trio.sleep(0)

        def test_sync(shared):
            assert SET_UP == ["test_m0"]
        """,
        test_m1="""
        import pytest, trio

        @pytest.mark.trio_group("g", timeout=60)
        async def test_t2():
            await trio.sleep(0)
        """,
    )
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider", timeout=HANG_BOUND)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at teardown of test_sync _*",
            "E       RuntimeError: module fixture teardown failed",
        ]
    )


def test_wider_fixture_error_before_the_run_is_each_members_setup_error(
    pytester: pytest.Pytester,
) -> None:
    # A module-scoped sync fixture that fails while the group's members from
    # two modules are set up before the run: each member's setup reports
    # it, as pytest would, rather than an INTERNALERROR for the second
    # module's copy of the fixture.
    pytester.makeconftest(
        """
        import pytest, trio

        @pytest.fixture(scope="module")
        def broken():
            raise RuntimeError("module fixture setup failed")

        @pytest.fixture
        async def uses_it(broken):
            await trio.sleep(0)
        """
    )
    for module in ("test_m0", "test_m1"):
        pytester.makepyfile(
            **{
                module: """
                import pytest, trio

                @pytest.mark.trio_group("g", timeout=60)
                async def test_it(uses_it):
                    await trio.sleep(0)
                """
            }
        )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=HANG_BOUND)
    result.assert_outcomes(errors=2)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.fnmatch_lines(
        [
            "ERROR test_m0.py::test_it - RuntimeError: module fixture setup failed",
            "ERROR test_m1.py::test_it - RuntimeError: module fixture setup failed",
        ]
    )


def _run_interrupted(pytester: pytest.Pytester) -> tuple[pytest.RunResult, str]:
    """Run the suite, which a KeyboardInterrupt stops: no raw traceback anywhere."""
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=HANG_BOUND)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback (most recent call last)" not in output, output
    return result, output


def test_teardown_errors_after_an_interrupt_are_warnings_not_a_raw_traceback(
    pytester: pytest.Pytester,
) -> None:
    # After a Ctrl-C, what the session still holds is torn down with no test
    # to report to. pytest alone lets a teardown error escape as a raw
    # traceback after its summary; here each one is a warning, shown at the
    # code that raised it, and every fixture is still torn down.
    log = pytester.path / "log"
    pytester.makepyfile(
        f"""
        import pytest, trio

        def note(line):
            with open({str(log)!r}, "a") as f:
                f.write(line + "\\n")

        @pytest.fixture(scope="session")
        async def service():
            yield
            note("service down")
            raise RuntimeError("service teardown failed")

        @pytest.fixture(scope="module")
        def database(request):
            def close():
                note("database down")
                raise ValueError("database teardown failed")
            request.addfinalizer(close)

        @pytest.mark.trio_group("g", timeout=60)
        async def test_grouped(service, database):
            await trio.sleep(0)

        def test_interrupted(database):
            raise KeyboardInterrupt
        """
    )
    result, output = _run_interrupted(pytester)
    result.stdout.fnmatch_lines_random(
        [
            "*test_teardown_errors_after_an_interrupt_are_warnings_not_a_raw_traceback.py:17:"
            " PytestWarning: error while tearing down after the run was interrupted:"
            " ValueError('database teardown failed')",
            "*test_teardown_errors_after_an_interrupt_are_warnings_not_a_raw_traceback.py:11:"
            " PytestWarning: error while tearing down after the run was interrupted:"
            " RuntimeError('service teardown failed')",
        ]
    )
    last = [line for line in result.stdout.lines if line.strip()][-1]
    assert last.startswith("=") and " in " in last and "1 passed" in last, output
    assert sorted(log.read_text().splitlines()) == ["database down", "service down"]


def test_ctrl_c_as_a_group_run_starts_leaves_its_fixtures_to_be_torn_down(
    pytester: pytest.Pytester,
) -> None:
    # A Ctrl-C can land after a group's wider-scoped sync fixtures are set up
    # and before its trio run starts (while trio adds its instruments). The
    # session then gets its own stack back with those fixtures on it, for
    # pytest to tear down as it ends -- not the group's, whose teardown
    # refuses pytest and used to escape as a raw traceback.
    log = pytester.path / "log"
    pytester.makeconftest(
        f"""
        import pytest, trio

        real_run = trio.run

        def run_interrupted_as_it_starts(*args, **kwargs):
            if kwargs.get("instruments"):  # the group's run
                raise KeyboardInterrupt
            return real_run(*args, **kwargs)

        trio.run = run_interrupted_as_it_starts

        @pytest.fixture(scope="module")
        def database():
            yield
            with open({str(log)!r}, "a") as f:
                f.write("database down\\n")
        """
    )
    pytester.makepyfile(
        test_m0="""
        import pytest, trio

        @pytest.mark.trio_group("g", timeout=60)
        async def test_a(database):
            await trio.sleep(0)

        @pytest.mark.trio_group("g", timeout=60)
        async def test_b(database):
            await trio.sleep(0)
        """,
        test_m1="""
        def test_after():
            pass
        """,
    )
    result, output = _run_interrupted(pytester)
    assert "INTERNALERROR" not in output, output
    # Nothing was cut short: no member had started.
    assert "second KeyboardInterrupt" not in output, output
    result.stdout.fnmatch_lines(["*!!! KeyboardInterrupt !!!*", "*= no tests ran in *"])
    assert log.read_text() == "database down\n"


def test_keyboard_interrupt_in_a_teardown_after_an_interrupt_ends_it_with_a_warning(
    pytester: pytest.Pytester,
) -> None:
    # A KeyboardInterrupt from a teardown (or a second Ctrl-C) while the
    # session's leftovers are torn down after the first: that teardown ends
    # there, as pytest's does, and the run still ends with its summary, the
    # warning saying so at the line that raised it.
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture(scope="module")
        def stubborn():
            yield
            raise KeyboardInterrupt

        @pytest.mark.trio_group("g", timeout=60)
        async def test_grouped(stubborn):
            await trio.sleep(0)

        def test_interrupted(stubborn):
            raise KeyboardInterrupt
        """
    )
    result, output = _run_interrupted(pytester)
    result.stdout.fnmatch_lines(
        [
            "*test_keyboard_interrupt_in_a_teardown_after_an_interrupt_ends_it_with_a_warning.py:6:"
            " PytestWarning: a KeyboardInterrupt cut short the teardown after the run was"
            " interrupted: fixtures not torn down by then are left as they are",
        ]
    )
    last = [line for line in result.stdout.lines if line.strip()][-1]
    assert last.startswith("=") and "1 passed" in last, output


def test_ctrl_c_while_a_sync_fixture_steps_out_of_the_run_stops_the_group(
    pytester: pytest.Pytester,
) -> None:
    # A member's sync fixture runs with trio's run context set aside. A Ctrl-C
    # that lands while the plugin sets it aside (here: right as it takes the
    # signal wakeup fd away) is held off and stops the group, instead of
    # leaving the context half cleared for trio to fail on
    # (TrioInternalError, an INTERNALERROR).
    pytester.makeconftest(
        """
        import os, signal, sys
        import pytest

        real_set_wakeup_fd = signal.set_wakeup_fd
        sent = []

        def set_wakeup_fd(fd, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if not sent and caller.endswith("_trio_compat.py"):
                sent.append(True)
                os.kill(os.getpid(), signal.SIGINT)
            return real_set_wakeup_fd(fd, **kwargs)

        signal.set_wakeup_fd = set_wakeup_fd

        @pytest.fixture
        def plain():
            return 1
        """
    )
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g", timeout=60)
        async def test_uses_it(plain):
            await trio.sleep(0)

        @pytest.mark.trio_group("g", timeout=60)
        async def test_waits():
            await trio.sleep(5)
        """
    )
    result, output = _run_interrupted(pytester)
    assert "INTERNALERROR" not in output, output
    result.stdout.fnmatch_lines(["*!!! KeyboardInterrupt !!!*"])
    last = [line for line in result.stdout.lines if line.strip()][-1]
    assert last.startswith("=") and " in " in last, output


def test_interrupt_from_a_teardown_hook_keeps_the_tests_reports(
    pytester: pytest.Pytester,
) -> None:
    # As pytest and pytest-trio report it: the test passed, then the
    # session stops. The test's own fixtures are still torn down.
    log = pytester.path / "log"
    pytester.makeconftest(
        f"""
        import pytest

        def pytest_runtest_teardown(item, nextitem):
            if item.name == "test_it":
                raise KeyboardInterrupt("from a teardown hook")

        @pytest.fixture
        async def resource():
            yield 1
            with open({str(log)!r}, "a") as f:
                f.write("resource down\\n")
        """
    )
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g", timeout=5)
        async def test_it(resource):
            pass

        @pytest.mark.trio_group("g", timeout=5)
        async def test_waits():
            await trio.sleep(5)

        def test_after():
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-v", "-rs", "-p", "no:cacheprovider", timeout=HANG_BOUND
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*::test_it PASSED*"])
    result.stdout.fnmatch_lines(
        [
            "SKIPPED *: cancelled: KeyboardInterrupt in *::test_it",
            "*!!! KeyboardInterrupt: from a teardown hook !!!*",
            "*= 1 passed, 1 skipped in *",
        ]
    )
    result.stdout.no_fnmatch_line("*cut short*")
    result.stdout.no_fnmatch_line("*test_after*")
    assert log.read_text() == "resource down\n"


def test_a_crash_in_the_test_bodys_nursery_is_reported_once(pytester: pytest.Pytester) -> None:
    # The call fails with the crash; its teardown passes. Each way a test
    # body holds a nursery, beside fixtures of every kind and a sibling.
    log = pytester.path / "reports"
    pytester.makeconftest(
        f"""
        def pytest_runtest_logreport(report):
            with open({str(log)!r}, "a") as f:
                name = report.nodeid.split("::")[-1]
                f.write(f"{{name}} {{report.when}} {{report.outcome}}\\n")
        """
    )
    pytester.makepyfile(
        """
        import pytest, trio

        async def crash():
            await trio.sleep(0)
            raise ValueError("boom")

        @pytest.fixture
        async def async_yield():
            yield 1

        @pytest.fixture(scope="module")
        async def module_async_yield():
            yield 1

        @pytest.fixture
        def sync_yield():
            yield 1

        @pytest.mark.trio_group("g", timeout=5)
        async def test_own_nursery(async_yield, module_async_yield, sync_yield):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(crash)
                await trio.sleep_forever()

        @pytest.mark.trio_group("g", timeout=5)
        async def test_nursery_fixture(nursery, async_yield, sync_yield):
            nursery.start_soon(crash)
            await trio.sleep_forever()

        @pytest.mark.trio_group("g", timeout=5)
        @pytest.mark.xfail(reason="crashes")
        async def test_xfail(async_yield):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(crash)
                await trio.sleep_forever()

        @pytest.mark.trio_group("g", timeout=5)
        async def test_sibling(module_async_yield):
            await trio.sleep(0.2)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=HANG_BOUND)
    result.assert_outcomes(passed=1, failed=2, xfailed=1)
    assert sorted(log.read_text().splitlines()) == sorted(
        f"{name} {when} {outcome}"
        for name, call in [
            ("test_own_nursery", "failed"),
            ("test_nursery_fixture", "failed"),
            ("test_xfail", "skipped"),
            ("test_sibling", "passed"),
        ]
        for when, outcome in [("setup", "passed"), ("call", call), ("teardown", "passed")]
    )
    # One traceback of the crash for each failed test: none for a teardown.
    assert sum('raise ValueError("boom")' in line for line in result.outlines) == 2


@pytest.mark.parametrize("with_async_fixture", [False, True], ids=["plain", "async-fixture"])
def test_a_test_that_leaves_a_nursery_open_fails_with_its_group_and_the_session_goes_on(
    pytester: pytest.Pytester, with_async_fixture: bool
) -> None:
    # An async generator that yields inside a nursery, abandoned: trio's run
    # cannot go on (pytest-trio fails that test's own trio.run). The group's
    # tests not yet reported get an error naming the culprit; the session
    # goes on.
    fixture = "resource" if with_async_fixture else ""
    pytester.makepyfile(
        f"""
        import pytest, trio

        @pytest.fixture
        async def resource():
            yield 1

        async def agen():
            async with trio.open_nursery():
                yield 1

        @pytest.mark.trio_group("g")
        async def test_quick():
            pass

        @pytest.mark.trio_group("g")
        async def test_leaves_it_open({fixture}):
            await trio.sleep(0.01)
            await agen().__anext__()

        @pytest.mark.trio_group("g")
        async def test_waits():
            await trio.sleep(5)

        def test_after():
            pass

        @pytest.mark.trio_group("later")
        async def test_later_group():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=HANG_BOUND)
    result.assert_outcomes(passed=3, errors=2)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*::test_leaves_it_open left a trio nursery open in its task (typically an async "
            "generator that yields inside 'async with trio.open_nursery()' and is left "
            "unfinished, or a nursery entered by hand); trio cannot go on with the run of "
            "trio_group 'g': *",
            "not run to its end: *::test_leaves_it_open left a trio nursery open, which "
            "ended the trio run of trio_group 'g'",
        ]
    )
