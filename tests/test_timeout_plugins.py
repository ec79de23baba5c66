"""pytest-timeout's limit and faulthandler_timeout are each member's own (P6)."""

from __future__ import annotations

import sys

import pytest

# A member past its limit while every member waits: trio's loop sits in its
# I/O wait, with no task running, when the limit runs out.
WAITING_SUITE = """
    import pytest, trio

    CANCELLED = trio.Event()

    @pytest.mark.trio_group("g")
    {stuck_mark}
    async def test_stuck():
        try:
            await trio.sleep_forever()
        finally:
            CANCELLED.set()

    @pytest.mark.trio_group("g")
    @pytest.mark.timeout(60)
    async def test_sibling():
        await CANCELLED.wait()

    @pytest.mark.trio_group("other")
    async def test_later_group():
        await trio.sleep(0)

    def test_later():
        pass
"""

LIMIT_FAILURE = "FAILED *::test_stuck - Failed: Timeout: test exceeded pytest-timeout's limit of 0.3s (trio_group 'g')"


@pytest.mark.parametrize("where", ["mark", "option", "ini", "env"])
def test_limit_from_each_setting_is_the_members_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    pytester.makepyfile(
        WAITING_SUITE.format(stuck_mark="@pytest.mark.timeout(0.3)" if where == "mark" else "")
    )
    args = []
    if where == "option":
        args = ["--timeout=0.3"]
    elif where == "ini":
        pytester.makeini("[pytest]\ntimeout = 0.3\n")
    elif where == "env":
        monkeypatch.setenv("PYTEST_TIMEOUT", "0.3")
    result = pytester.runpytest("-rA", "-vv", *args)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_stuck _*",
            ">           await trio.sleep_forever()",
            "E           Failed: Timeout: test exceeded pytest-timeout's limit of 0.3s (trio_group 'g')",
        ]
    )
    result.stdout.fnmatch_lines([LIMIT_FAILURE])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    assert result.ret == 1


def test_thread_method_cancels_the_member_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(WAITING_SUITE.format(stuck_mark="@pytest.mark.timeout(0.3)"))
    result = pytester.runpytest_subprocess("-rA", "-vv", "--timeout-method=thread")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([LIMIT_FAILURE])
    result.stdout.no_fnmatch_line("*+++ Timeout +++*")


def test_each_member_has_its_own_limit_even_after_a_sibling_failed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        DONE = {"short": trio.Event(), "long": trio.Event()}

        @pytest.mark.trio_group("g")
        @pytest.mark.timeout(0.2)
        async def test_short():
            try:
                await trio.sleep_forever()
            finally:
                DONE["short"].set()

        @pytest.mark.trio_group("g")
        @pytest.mark.timeout(0.5)
        async def test_long():
            await DONE["short"].wait()
            try:
                await trio.sleep_forever()
            finally:
                DONE["long"].set()

        @pytest.mark.trio_group("g")
        async def test_no_limit():
            await DONE["long"].wait()
        """
    )
    result = pytester.runpytest("-vv")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_short FAILED*",
            "*::test_long FAILED*",
            "*::test_no_limit PASSED*",
            "FAILED *::test_short - Failed: Timeout: test exceeded pytest-timeout's limit of 0.2s (trio_group 'g')",
            "FAILED *::test_long - Failed: Timeout: test exceeded pytest-timeout's limit of 0.5s (trio_group 'g')",
        ]
    )


def test_the_earlier_of_the_two_deadlines_fails_the_test_and_is_named(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g", timeout=0.2)
        @pytest.mark.timeout(30)
        async def test_group_deadline_first():
            await trio.sleep_forever()

        @pytest.mark.trio_group("g", timeout=30)
        @pytest.mark.timeout(0.2)
        async def test_pytest_timeout_first():
            await trio.sleep_forever()
        """
    )
    result = pytester.runpytest("-rf", "-vv")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED *::test_group_deadline_first - Failed: Timeout: test exceeded 0.2s (trio_group 'g')",
            "FAILED *::test_pytest_timeout_first - Failed: Timeout: test exceeded pytest-timeout's limit of 0.2s (trio_group 'g')",
        ],
        consecutive=False,
    )


def test_func_only_limit_starts_with_the_call(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        async def slow_setup():
            await trio.sleep(0.5)

        @pytest.mark.trio_group("g")
        @pytest.mark.timeout(0.3, func_only=True)
        async def test_setup_not_counted(slow_setup):
            pass

        @pytest.mark.trio_group("g")
        @pytest.mark.timeout(0.3, func_only=True)
        async def test_call_counted():
            await trio.sleep_forever()
        """
    )
    result = pytester.runpytest("-rf", "-vv")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "FAILED *::test_call_counted - Failed: Timeout: test exceeded pytest-timeout's limit of 0.3s*"
        ]
    )


def test_thread_method_never_ends_a_run_whose_tests_are_within_their_limits(
    pytester: pytest.Pytester,
) -> None:
    # One at a time, the group takes longer than the limit; no test does.
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(3))
        async def test_member(n):
            await trio.sleep(0.5)
        """
    )
    result = pytester.runpytest_subprocess(
        "--timeout=1", "--timeout-method=thread", "--trio-group-limit=1"
    )
    result.assert_outcomes(passed=3)
    assert result.ret == 0


STUCK_IN_SYNC_CODE = """
    import time
    import pytest, trio

    @pytest.mark.trio_group("g")
    async def test_first():
        await trio.sleep(0)

    @pytest.mark.trio_group("g")
    @pytest.mark.timeout(0.2)
    async def test_blocks():
        await trio.sleep(0)
        time.sleep(30)

    def test_later():
        pass
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGALRM")
def test_signal_method_interrupts_a_member_stuck_in_synchronous_code(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(STUCK_IN_SYNC_CODE)
    result = pytester.runpytest_subprocess("-rf", "-vv", "--timeout-method=signal")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       time.sleep(30)",
            "E       Failed: Timeout: test exceeded pytest-timeout's limit of 0.2s (trio_group 'g'), "
            "and it was stuck in synchronous code, out of trio's reach, 1s later",
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_thread_method_ends_a_run_stuck_in_synchronous_code_naming_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(STUCK_IN_SYNC_CODE)
    result = pytester.runpytest_subprocess("--timeout-method=thread")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*+ Timeout +*",
            "*::test_blocks: Timeout: test exceeded pytest-timeout's limit of 0.2s (trio_group 'g'), "
            "and it could not be cancelled 1s later; ending the run (timeout method 'thread')",
            "*~ Stack of the test's task ~*",
            "*time.sleep(30)*",
        ]
    )
    result.stdout.no_fnmatch_line("*passed*")


def test_faulthandler_timeout_dumps_for_the_member_that_exceeded_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nfaulthandler_timeout = 0.3\n")
    pytester.makepyfile(
        """
        import pytest, trio

        async def wait_a_while():
            await trio.sleep(0.8)

        @pytest.mark.trio_group("g")
        async def test_quick():
            await trio.sleep(0)

        @pytest.mark.trio_group("g")
        async def test_slow():
            await wait_a_while()
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    result.stderr.fnmatch_lines(
        [
            "Timeout (0:00:00.300000)! *::test_slow (trio_group 'g') exceeded faulthandler_timeout=0.3s",
            "Stack of its task (most recent call last):",
            "*",
            "*await wait_a_while()",
            "*await trio.sleep(0.8)",
        ]
    )
    assert sum("Timeout (" in line for line in result.stderr.lines) == 1


def test_faulthandler_timeout_never_times_the_group_as_a_whole(pytester: pytest.Pytester) -> None:
    exit_on_timeout = (
        "faulthandler_exit_on_timeout = true\n" if pytest.version_tuple >= (9,) else ""
    )
    pytester.makeini(f"[pytest]\nfaulthandler_timeout = 0.5\n{exit_on_timeout}")
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(3))
        async def test_member(n):
            await trio.sleep(0.25)
        """
    )
    result = pytester.runpytest_subprocess("--trio-group-limit=1")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    assert not any("Timeout" in line for line in result.stderr.lines)


def test_no_limit_strikes_once_the_debugger_was_entered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g")
        async def test_debugged():
            breakpoint()
            await trio.sleep(0.6)

        @pytest.mark.trio_group("g")
        async def test_sibling():
            await trio.sleep(0.6)
        """
    )
    result = pytester.run(
        sys.executable, "-m", "pytest", "-p", "no:randomly", "--timeout=0.3", stdin=b"c\n"
    )
    result.stdout.fnmatch_lines(["*PDB continue*"])
    result.assert_outcomes(passed=2)


def test_a_limit_says_where_the_test_waited(pytester: pytest.Pytester) -> None:
    # The cancellation unwinds through nurseries and cleanup code, which
    # can end the traceback elsewhere; the message keeps where the test and
    # its tasks were when the limit struck.
    pytester.makepyfile(
        test_parked="""
        import pytest, trio

        async def receive(channel):
            return await channel.receive()

        @pytest.mark.trio_group("g")
        @pytest.mark.timeout(0.3)
        async def test_parked():
            send, recv = trio.open_memory_channel(0)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever, name="background")
                await receive(recv)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*Timeout: test exceeded pytest-timeout's limit of 0.3s (trio_group 'g')",
            "E*",
            "E*Where the test waited:",
            "E*test_parked.py:12 in test_parked",
            "E*await receive(recv)",
            "E*test_parked.py:4 in receive",
            "E*return await channel.receive()",
            "E*waiting in MemoryReceiveChannel.receive (*trio*)",
            "E*in task 'background':",
            "E*waiting in sleep_forever (*trio*)",
        ]
    )
