"""Each concurrent test's output, logs and warnings are its own (P5)."""

from __future__ import annotations

import pytest

from conftest import TrioEnv

INTERLEAVED = """
import pytest, trio

N = 10
TURNS = [trio.Event() for _ in range(N * 3 + 1)]
TURNS[0].set()

async def take_turn(turn):
    await TURNS[turn].wait()
    TURNS[turn + 1].set()

@pytest.mark.trio_group("g", timeout=10)
@pytest.mark.parametrize("n", range(N))
async def test_member(n):
    # The members print in strict rotation: line k of every test is printed
    # before line k + 1 of any.
    for line in range(3):
        await take_turn(line * N + n)
        print(f"test {n} line {line}")
    raise AssertionError(f"fail {n}")
"""


def test_interleaved_prints_land_in_their_own_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(INTERLEAVED)
    result = pytester.runpytest()
    result.assert_outcomes(failed=10)
    text = result.stdout.str()
    for n in range(10):
        section = text.split(f"_ test_member[{n}] _")[1].split("short test summary")[0]
        captured = section.split("- Captured stdout call -")[1].split("\n", 1)[1]
        own = [line for line in captured.splitlines() if line.startswith("test ")]
        assert own == [f"test {n} line {line}" for line in range(3)]
    # Nothing was printed to the terminal outside the report sections.
    before_failures = text.split("= FAILURES =")[0]
    assert "line 0" not in before_failures


def test_prints_in_setup_call_and_teardown_sections(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys, pytest, trio

        @pytest.fixture
        async def resource(request):
            print(f"setting up {request.node.name}")
            yield
            print(f"tearing down {request.node.name}", file=sys.stderr)

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(3))
        async def test_member(n, resource):
            await trio.sleep(0.01 * n)
            print(f"body {n}")
            await trio.to_thread.run_sync(print, f"thread {n}")
        """
    )
    result = pytester.runpytest("-rP")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*_ test_member[[]1[]] _*",
            "*- Captured stdout setup -*",
            "setting up test_member[[]1[]]",
            "*- Captured stdout call -*",
            "body 1",
            "thread 1",
            "*- Captured stderr teardown -*",
            "tearing down test_member[[]1[]]",
        ]
    )


def test_capture_no_passes_output_through(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio_group("g")
        async def test_a():
            print("straight to the terminal a")

        @pytest.mark.trio_group("g")
        async def test_b():
            print("straight to the terminal b")
        """
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*straight to the terminal a*"])
    result.stdout.fnmatch_lines(["*straight to the terminal b*"])


@pytest.mark.parametrize("method", ["sys", "fd"])
def test_capture_sys_and_fd_attribute_prints(pytester: pytest.Pytester, method: str) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g")
        async def test_a():
            print("from a")
            await trio.sleep(0.01)
            assert False

        @pytest.mark.trio_group("g")
        async def test_b():
            print("from b")
        """
    )
    result = pytester.runpytest_subprocess(f"--capture={method}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*- Captured stdout call -*", "from a"])
    result.stdout.no_fnmatch_line("from b")


def test_fd_level_output_is_captured_for_the_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import subprocess, sys, pytest, trio

        @pytest.mark.trio_group("g")
        async def test_subprocess():
            await trio.run_process([sys.executable, "-c", "print('from a subprocess')"])

        @pytest.mark.trio_group("g")
        async def test_fails():
            assert False
        """
    )
    result = pytester.runpytest_subprocess("--capture=fd")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- trio_group 'g': captured stdout not attributed to a test -*",
            "from a subprocess",
        ]
    )
    # It did not reach the terminal while the tests ran.
    assert "from a subprocess" not in result.stdout.str().split("= FAILURES =")[0]


def test_capsys_caplog_and_recwarn_see_only_their_own(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import logging, sys, warnings, pytest, trio

        N = 10
        ALL_READY = trio.Event()
        READY = []

        async def everyone_here():
            READY.append(1)
            if len(READY) == N:
                ALL_READY.set()
            await ALL_READY.wait()

        @pytest.mark.trio_group("g", timeout=10)
        @pytest.mark.parametrize("n", range(N))
        async def test_member(n, capsys, caplog, recwarn):
            await everyone_here()
            print(f"out {n}")
            print(f"err {n}", file=sys.stderr)
            logging.getLogger("app").warning("log %d", n)
            warnings.warn(UserWarning(f"warn {n}"))
            await trio.sleep(0.01)
            out, err = capsys.readouterr()
            assert out == f"out {n}\\n"
            assert err == f"err {n}\\n"
            assert [r.getMessage() for r in caplog.records] == [f"log {n}"]
            assert caplog.text.strip().endswith(f"log {n}")
            assert [str(w.message) for w in recwarn] == [f"warn {n}"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=10)


def test_capsysbinary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys, pytest, trio

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(3))
        async def test_member(n, capsysbinary):
            sys.stdout.buffer.write(f"bytes {n}".encode())
            await trio.sleep(0.01)
            assert capsysbinary.readouterr().out == f"bytes {n}".encode()
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_caplog_set_level_does_not_change_what_a_sibling_captures(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import logging, pytest, trio

        LOWERED = trio.Event()

        @pytest.mark.trio_group("g", timeout=5)
        async def test_lowers(caplog):
            caplog.set_level(logging.DEBUG)
            LOWERED.set()
            logging.getLogger("app").debug("debug from test_lowers")
            await trio.sleep(0.05)
            assert [r.getMessage() for r in caplog.records] == ["debug from test_lowers"]

        @pytest.mark.trio_group("g", timeout=5)
        async def test_default(caplog):
            await LOWERED.wait()
            logging.getLogger("app").debug("debug from test_default")
            logging.getLogger("app").warning("warning from test_default")
            assert [r.getMessage() for r in caplog.records] == ["warning from test_default"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_log_report_sections_are_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import logging, pytest, trio

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(3))
        async def test_member(n):
            logging.getLogger("app").warning("record of %d", n)
            await trio.sleep(0.01)
            assert n != 1
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*- Captured log call -*", "WARNING *app*record of 1*"])
    result.stdout.no_fnmatch_line("*record of 0*")
    result.stdout.no_fnmatch_line("*record of 2*")


def test_capfd_is_a_clear_error_in_a_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio_group("g")
        async def test_uses_capfd(capfd):
            pass

        @pytest.mark.trio_group("g")
        async def test_uses_capfdbinary(capfdbinary):
            pass

        def test_plain_capfd(capfd):
            print("hello")
            assert capfd.readouterr().out == "hello\\n"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "capfd cannot be used in a trio_group test: file descriptors 1 and 2 are shared "
            "by every test running at the same time*"
        ]
    )
    result.stdout.fnmatch_lines(["capfdbinary cannot be used in a trio_group test*"])


def test_capfd_tests_leave_automatic_groups_and_capture_their_descriptors(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = module\n")
    pytester.makepyfile(
        """
        import os, subprocess, sys
        import trio

        RUNNING = []

        async def test_sibling():
            RUNNING.append("sibling")
            await trio.sleep(0.05)
            RUNNING.remove("sibling")

        async def test_subprocess_output(capfd):
            assert RUNNING == []
            subprocess.run([sys.executable, "-c", "print('from the child')"], check=True)
            os.write(2, b"raw fd 2\\n")
            print("from the test")
            await trio.sleep(0)
            out, err = capfd.readouterr()
            assert out == "from the child\\nfrom the test\\n"
            assert err == "raw fd 2\\n"

        async def test_binary(capfdbinary):
            assert RUNNING == []
            os.write(1, b"bytes")
            assert capfdbinary.readouterr().out == b"bytes"
        """
    )
    result = pytester.runpytest(*trio_env.args, "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    name = "test_capfd_tests_leave_automatic_groups_and_capture_their_descriptors.py"
    result.stdout.fnmatch_lines(
        [
            f"{name}::test_subprocess_output runs alone: it uses capfd (not with trio_group '{name}')",
            f"{name}::test_binary runs alone: it uses capfdbinary (not with trio_group '{name}')",
        ]
    )


def test_live_log_lines_name_their_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import logging, pytest, trio

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(2))
        async def test_member(n):
            logging.getLogger("app").warning("live %d", n)
            await trio.sleep(0)
        """
    )
    result = pytester.runpytest("--log-cli-level=WARNING")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["[[]test_live_log_lines_name_their_test.py::test_member[[]0[]][]] *live 0*"]
    )
    result.stdout.fnmatch_lines(
        ["[[]test_live_log_lines_name_their_test.py::test_member[[]1[]][]] *live 1*"]
    )


def test_warnings_are_attributed_and_w_error_fails_only_that_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import warnings, pytest, trio

        @pytest.mark.trio_group("g")
        async def test_quiet():
            await trio.sleep(0.01)

        @pytest.mark.trio_group("g")
        async def test_warns():
            await trio.sleep(0)
            warnings.warn(UserWarning("careful"))

        @pytest.mark.trio_group("g")
        @pytest.mark.filterwarnings("ignore:careful")
        async def test_warns_but_filtered():
            warnings.warn(UserWarning("careful"))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(["*warnings summary*", "*::test_warns", "*UserWarning: careful"])
    result.stdout.no_fnmatch_line("*::test_quiet")
    result = pytester.runpytest("-W", "error::UserWarning", "-vv")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED *::test_warns - UserWarning: careful"])


def test_filterwarnings_marks_of_a_class_or_module_apply_to_their_members_only(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_marked_module="""
        import warnings, pytest, trio

        pytestmark = pytest.mark.filterwarnings("ignore:module-wide")

        @pytest.mark.trio_group("g")
        async def test_in_marked_module():
            await trio.sleep(0)
            warnings.warn(UserWarning("module-wide"))
        """,
        test_plain_module="""
        import warnings, pytest, trio

        @pytest.mark.filterwarnings("error:class-wide")
        class TestMarked:
            @pytest.mark.trio_group("g")
            async def test_in_marked_class(self):
                await trio.sleep(0)
                warnings.warn(UserWarning("class-wide"))

        class TestUnmarked:
            @pytest.mark.trio_group("g")
            async def test_in_unmarked_class(self):
                await trio.sleep(0)
                warnings.warn(UserWarning("class-wide"))
                warnings.warn(UserWarning("module-wide"))
        """,
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1, warnings=2)
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "*::TestUnmarked::test_in_unmarked_class",
            "*UserWarning: class-wide",
            "*UserWarning: module-wide",
            "FAILED *::TestMarked::test_in_marked_class - UserWarning*",
        ]
    )
    result.stdout.no_fnmatch_line("*::test_in_marked_module")


@pytest.mark.parametrize(
    ("leak", "warning"),
    [
        pytest.param("Raises()", "PytestUnraisableExceptionWarning", id="unraisable"),
        pytest.param(
            "t = threading.Thread(target=boom); t.start(); t.join()",
            "PytestUnhandledThreadExceptionWarning",
            id="thread",
        ),
    ],
)
def test_unraisable_and_thread_exceptions_are_the_warnings_of_the_member_that_left_them(
    pytester: pytest.Pytester, leak: str, warning: str
) -> None:
    pytester.makepyfile(
        f"""
        import threading
        import pytest, trio

        class Raises:
            def __del__(self):
                raise ValueError("from __del__")

        def boom():
            raise RuntimeError("in a thread")

        @pytest.mark.trio_group("g")
        async def test_quiet():
            await trio.sleep(0.01)

        @pytest.mark.trio_group("g")
        async def test_leaks():
            await trio.sleep(0)
            {leak}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*warnings summary*", "*::test_leaks", f"*{warning}: *"])
    result.stdout.no_fnmatch_line("*::test_quiet")
    # As in plain pytest: an error in the phase that left it, here the call.
    result = pytester.runpytest("-W", f"error::pytest.{warning}", "-vv")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"FAILED *::test_leaks - pytest.{warning}*"])


def test_pytest_warns_across_awaits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import warnings, pytest, trio

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(5))
        async def test_member(n):
            with pytest.warns(UserWarning) as record:
                await trio.sleep(0.01)
                warnings.warn(UserWarning(f"w{n}"))
                await trio.sleep(0.01)
            assert [str(w.message) for w in record] == [f"w{n}"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=5)
