"""Async fixtures wider than a test live their pytest scope, across groups (P4)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from conftest import HAVE_PYTEST_TRIO

#: Seconds within which a run that should end does end.
HANG_BOUND = 60
_NO_PLUGINS = ["-p", "no:randomly", "-p", "no:trio"]

# A session fixture that records each setup and teardown, and the tests that saw it.
_SESSION_CONFTEST = """
import pytest, trio

EVENTS = []

@pytest.fixture(scope="session")
async def resource():
    EVENTS.append("setup")
    yield {"users": []}
    await trio.sleep(0)
    EVENTS.append("teardown")

@pytest.fixture(scope="module")
async def per_module(request):
    name = request.module.__name__
    EVENTS.append(f"module setup {name}")
    yield name
    await trio.sleep(0)
    EVENTS.append(f"module teardown {name}")

def pytest_sessionfinish():
    print()
    print("EVENTS", EVENTS)
"""


def _module(group: str) -> str:
    return f"""
import pytest, trio
from conftest import EVENTS

@pytest.mark.trio_group("{group}", timeout=5)
async def test_one(resource, per_module):
    resource["users"].append("{group}-one")
    assert EVENTS.count("setup") == 1
    assert per_module == __name__

@pytest.mark.trio_group("{group}", timeout=5)
async def test_two(resource, per_module):
    resource["users"].append("{group}-two")
    await trio.sleep(0)
"""


def test_session_fixture_set_up_once_for_groups_in_three_modules(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(_SESSION_CONFTEST)
    pytester.makepyfile(
        test_a=_module("a"),
        test_b=_module("b"),
        test_c=_module("c")
        + """
@pytest.mark.trio
async def test_alone(resource):
    resource["users"].append("alone")

def test_sync_between():
    assert EVENTS.count("teardown") == 0

@pytest.mark.trio
async def test_last(resource):
    assert resource["users"] == [
        "a-one", "a-two", "b-one", "b-two", "c-one", "c-two", "alone"
    ]
    assert EVENTS.count("setup") == 1
""",
    )
    result = pytester.runpytest("-s", "-p", "no:trio")
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(
        [
            "EVENTS ['setup', 'module setup test_a', 'module teardown test_a', "
            "'module setup test_b', 'module teardown test_b', "
            "'module setup test_c', 'module teardown test_c', 'teardown']"
        ]
    )


def test_module_fixture_once_per_module_across_groups(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(_SESSION_CONFTEST)
    # Two groups and an ungrouped trio test in each module.
    body = """
import pytest
from conftest import EVENTS

@pytest.mark.trio_group("first-{name}")
async def test_first(per_module):
    assert per_module == __name__

@pytest.mark.trio_group("second-{name}")
async def test_second(per_module):
    assert EVENTS.count(f"module setup {{__name__}}") == 1

@pytest.mark.trio
async def test_alone(per_module):
    assert EVENTS.count(f"module setup {{__name__}}") == 1
"""
    pytester.makepyfile(test_x=body.format(name="x"), test_y=body.format(name="y"))
    result = pytester.runpytest("-s", "-p", "no:trio")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "EVENTS ['module setup test_x', 'module teardown test_x', "
            "'module setup test_y', 'module teardown test_y']"
        ]
    )


def test_server_in_a_session_fixture_answers_every_group(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from functools import partial
        import pytest, trio

        @pytest.fixture(scope="session")
        async def server():
            async def echo(stream):
                async for data in stream:
                    await stream.send_all(b"echo " + data)

            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
                yield listeners[0].socket.getsockname()[1]
                nursery.cancel_scope.cancel()

        async def ask(port, text):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(text.encode())
                return (await stream.receive_some(100)).decode()
        """
    )
    module = """
import pytest
from conftest import ask

@pytest.mark.trio_group("{name}", timeout=10)
@pytest.mark.parametrize("n", range(3))
async def test_asks(server, n):
    assert await ask(server, "{name}-%d" % n) == "echo {name}-%d" % n
"""
    pytester.makepyfile(
        test_a=module.format(name="a"),
        test_b=module.format(name="b")
        + """
@pytest.mark.trio
async def test_alone(server):
    assert await ask(server, "alone") == "echo alone"
""",
        test_c=module.format(name="c"),
    )
    pytester.runpytest("-p", "no:trio").assert_outcomes(passed=10)


def test_session_tasks_are_paused_while_sync_tests_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import select, socket
        from functools import partial
        import pytest, trio

        CONNECTION = []

        @pytest.fixture(scope="session")
        async def port():
            async def echo(stream):
                async for data in stream:
                    await stream.send_all(b"echo " + data)

            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
                yield listeners[0].socket.getsockname()[1]
                nursery.cancel_scope.cancel()

        @pytest.mark.trio_group("before")
        async def test_before(port):
            CONNECTION.append(port)

        def test_sync_asks():
            sock = socket.create_connection(("127.0.0.1", CONNECTION[0]))
            CONNECTION.append(sock)
            sock.sendall(b"ping")
            # The kernel accepted the connection; the server, paused, never reads it.
            # (poll, not select: the fd may be above select's limit of 1024.)
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            assert poller.poll(200) == []

        @pytest.mark.trio_group("after")
        async def test_after(port):
            sock = CONNECTION[1]
            sock.setblocking(False)
            # The next trio test drives the run again: the request is answered.
            await trio.lowlevel.wait_readable(sock)
            assert sock.recv(100) == b"echo ping"
            sock.close()
        """
    )
    pytester.runpytest("-p", "no:trio").assert_outcomes(passed=3)


def test_clock_and_wider_async_fixture_cannot_meet(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture(scope="session")
        async def shared():
            yield "shared"

        @pytest.mark.trio_group("g")
        async def test_uses_shared(shared):
            assert shared == "shared"

        @pytest.mark.trio_group("g")
        async def test_clock_and_shared(autojump_clock, shared):
            pass

        @pytest.mark.trio_group("g")
        async def test_clock_alone(autojump_clock):
            await trio.sleep(3600)

        @pytest.mark.trio
        async def test_mock_clock(mock_clock, shared):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:trio")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_clock_and_shared*",
            "*test_clock_and_wider_async_fixture_cannot_meet.py::test_clock_and_shared uses "
            "autojump_clock and the wider-scoped async fixture 'shared': a trio run has one "
            "clock, fixed when it starts, and wider-scoped async fixtures live in the "
            "session's trio run, which runs on trio's own clock. Drop autojump_clock, or give "
            "the test function-scoped fixtures",
            "*ERROR at setup of test_mock_clock*",
            "*::test_mock_clock uses mock_clock and the wider-scoped async fixture 'shared'*",
        ]
    )


def test_teardown_errors_land_on_the_test_that_ends_the_scope(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest, trio

        @pytest.fixture(scope="session")
        async def broken_session():
            yield
            await trio.sleep(0)
            raise RuntimeError("session teardown broke")
        """
    )
    pytester.makepyfile(
        test_a="""
import pytest, trio

@pytest.fixture(scope="module")
async def broken_module():
    yield
    await trio.sleep(0)
    raise RuntimeError("module teardown broke")

@pytest.mark.trio_group("a")
async def test_uses(broken_module, broken_session):
    pass

def test_sync_after():
    pass
""",
        test_b="""
import pytest

@pytest.mark.trio_group("b")
async def test_last(broken_session):
    pass
""",
    )
    result = pytester.runpytest("-p", "no:trio")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_sync_after*",
            "*RuntimeError: module teardown broke",
            "*ERROR at teardown of test_last*",
            "*RuntimeError: session teardown broke",
        ]
    )


def test_a_session_fixtures_crash_fails_the_test_of_a_later_group_using_it(
    pytester: pytest.Pytester,
) -> None:
    # Set up by group "a"; its task crashes while group "b" runs.
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture(scope="session")
        async def background():
            async with trio.open_nursery() as nursery:
                yield nursery
                nursery.cancel_scope.cancel()

        async def crash():
            await trio.sleep(0.02)
            raise ValueError("boom")

        @pytest.mark.trio_group("a", timeout=5)
        async def test_sets_it_up(background):
            pass

        @pytest.mark.trio_group("b", timeout=5)
        async def test_starts_the_crash(background):
            background.start_soon(crash)
            await trio.sleep(2)

        @pytest.mark.trio_group("b", timeout=5)
        async def test_unrelated():
            await trio.sleep(0.1)
        """
    )
    result = pytester.runpytest("-p", "no:trio", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*_ test_starts_the_crash _*", "*", "*ValueError: boom", "*= short test summary info =*"]
    )
    result.stdout.fnmatch_lines(["FAILED *::test_starts_the_crash*"])
    result.stdout.fnmatch_lines(["PASSED *::test_unrelated"])


def test_ctrl_c_during_a_group_still_tears_the_session_fixture_down(
    pytester: pytest.Pytester,
) -> None:
    running = pytester.path / "running"
    torn_down = pytester.path / "torn_down"
    pytester.makeconftest(
        f"""
        import pathlib, pytest, trio

        @pytest.fixture(scope="session")
        async def shared():
            yield
            await trio.sleep(0)
            with open({str(torn_down)!r}, "a") as file:
                file.write("torn down\\n")
        """
    )
    pytester.makepyfile(
        test_a=f"""
import pathlib, pytest, trio

@pytest.mark.trio_group("a")
async def test_quick(shared):
    pass

@pytest.mark.trio_group("a")
async def test_waits(shared):
    pathlib.Path({str(running)!r}).touch()
    await trio.sleep_forever()
""",
        test_b="""
import pytest

@pytest.mark.trio_group("b")
async def test_never(shared):
    pass
""",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", *_NO_PLUGINS],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + HANG_BOUND
    while not running.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the test never ran"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=HANG_BOUND)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "INTERNALERROR" not in output, output
    assert torn_down.read_text() == "torn down\n", output
    assert "test_a.py::test_quick PASSED" in output, output
    assert "test_a.py::test_waits SKIPPED" in output, output
    assert "test_never" not in output, output


def test_parametrized_session_fixture_one_instance_per_parameter(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest, trio

        EVENTS = []

        @pytest.fixture(scope="session", params=[1, 2])
        async def numbered(request):
            EVENTS.append(f"setup {request.param}")
            await trio.sleep(0)
            yield request.param
            await trio.sleep(0)
            EVENTS.append(f"teardown {request.param}")

        def pytest_sessionfinish():
            print()
            print("EVENTS", EVENTS)
        """
    )
    pytester.makepyfile(
        test_a="""
import pytest, trio
from conftest import EVENTS

BOTH = trio.Event()
SEEN = []

# Both parameters run at the same time: each has its own instance.
@pytest.mark.trio_group("g", timeout=5)
async def test_concurrent(numbered):
    SEEN.append(numbered)
    if len(SEEN) == 2:
        BOTH.set()
    await BOTH.wait()
    assert sorted(SEEN) == [1, 2]
""",
        test_b="""
import pytest
from conftest import EVENTS

# One at a time, as pytest runs them: a new parameter tears down the other.
@pytest.mark.trio
async def test_one_at_a_time(numbered):
    assert EVENTS[-1] != f"teardown {numbered}"
""",
    )
    result = pytester.runpytest("-s", "-v", "-p", "no:trio")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "test_b.py::test_one_at_a_time[1] PASSED",
            "test_b.py::test_one_at_a_time[2] PASSED",
            "EVENTS ['setup 1', 'setup 2', 'teardown 2', 'teardown 1', 'setup 2', 'teardown 2']",
        ]
    )


def test_a_clock_group_runs_on_its_own_beside_the_session_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
import pytest, trio

EVENTS = []

@pytest.fixture(scope="module")
async def per_module():
    EVENTS.append("setup")
    yield
    await trio.sleep(0)
    EVENTS.append("teardown")

@pytest.mark.trio_group("uses")
async def test_uses(per_module):
    pass

# Its own trio run, with its own clock, while the session's run holds
# per_module; the module ends with it, so its teardown tears per_module down.
@pytest.mark.trio_group("clocked")
async def test_clocked(autojump_clock):
    await trio.sleep(3600)
    assert EVENTS == ["setup"]
""",
        test_b="""
import pytest
from test_a import EVENTS

@pytest.mark.trio
async def test_after():
    assert EVENTS == ["setup", "teardown"]
""",
    )
    pytester.runpytest("-p", "no:trio").assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("stop", "args"),
    [
        ("assert False", ["-x"]),
        ("pytest.exit('enough')", []),
    ],
)
def test_a_stopped_session_still_tears_the_session_fixture_down(
    pytester: pytest.Pytester, stop: str, args: list[str]
) -> None:
    log = pytester.path / "log"
    pytester.makeconftest(
        f"""
        import pytest, trio

        def note(text):
            with open({str(log)!r}, "a") as file:
                file.write(text + "\\n")

        @pytest.fixture(scope="session")
        async def shared():
            note("setup")
            yield
            await trio.sleep(0)
            note("teardown")
        """
    )
    pytester.makepyfile(
        test_a=f"""
import pytest, trio

@pytest.mark.trio_group("a")
async def test_stops(shared):
    {stop}

@pytest.mark.trio_group("a")
async def test_waits(shared):
    await trio.sleep_forever()
""",
        test_b="""
import pytest

@pytest.mark.trio_group("b")
async def test_never(shared):
    pass
""",
    )
    result = pytester.runpytest("-v", "-p", "no:trio", *args)
    assert log.read_text() == "setup\nteardown\n"
    result.stdout.no_fnmatch_line("*test_never*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.skipif(not HAVE_PYTEST_TRIO, reason="needs pytest-trio")
def test_pytest_trio_runs_its_own_tests_beside_the_session_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        EVENTS = []

        @pytest.fixture(scope="session")
        async def shared():
            EVENTS.append("setup")
            yield "value"
            await trio.sleep(0)
            EVENTS.append("teardown")

        @pytest.mark.trio_group("g")
        async def test_member(shared):
            assert shared == "value"

        # pytest-trio's own test, in a trio.run of pytest-trio's while the
        # session's trio run holds shared.
        @pytest.mark.trio
        async def test_pytest_trios(nursery):
            nursery.start_soon(trio.sleep, 0)
            await trio.sleep(0)

        # pytest-trio's rule for its own tests: function-scoped async fixtures only.
        @pytest.mark.trio
        async def test_pytest_trios_with_shared(shared):
            pass

        @pytest.mark.trio_group("h")
        async def test_member_again(shared):
            assert EVENTS == ["setup"]
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_pytest_trios_with_shared*",
            "*::test_pytest_trios_with_shared is run by pytest-trio, whose async fixtures must"
            " be function-scoped, and requests the wider-scoped async 'shared': those live in"
            " pytest-trio-groups' session trio run, for trio_group members (mark the test"
            " trio_group, or set trio_group_by, to use them)",
        ]
    )


def test_under_xdist_once_per_worker(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import os, pytest, trio

        def note(text):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            with open(f"log-{worker}", "a") as file:
                file.write(text + "\\n")

        @pytest.fixture(scope="session")
        async def shared():
            note("setup")
            yield "value"
            await trio.sleep(0)
            note("teardown")
        """
    )
    module = """
import pytest

@pytest.mark.trio_group("{name}")
@pytest.mark.parametrize("n", range(3))
async def test_uses(shared, n):
    assert shared == "value"
"""
    pytester.makepyfile(**{f"test_{name}": module.format(name=name) for name in "abcd"})
    pytester.runpytest("-n", "2", "-p", "no:trio").assert_outcomes(passed=12)
    # Each worker that ran a group set the fixture up once, and tore it down once.
    logs = sorted(pytester.path.glob("log-*"))
    assert logs
    assert {log.read_text() for log in logs} == {"setup\nteardown\n"}


def test_a_stuck_session_teardown_is_bounded_by_the_grace_period(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture(scope="session")
        async def stuck():
            yield
            await trio.sleep_forever()

        @pytest.mark.trio_group("g")
        async def test_uses(stuck):
            pass

        def test_last():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:trio", "--trio-group-teardown-timeout", "0.2")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_last*",
            "*await trio.sleep_forever()",
            "*Timeout: teardown of fixture 'stuck' exceeded the 0.2s grace period and was "
            "cancelled",
        ]
    )


def test_module_fixture_per_module_in_a_group_across_modules(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(_SESSION_CONFTEST)
    body = """
import pytest, trio
from conftest import EVENTS

@pytest.mark.trio_group("across")
async def test_across(per_module):
    await trio.sleep(0)
    # Each module's own instance, though both modules' tests run at once.
    assert per_module == __name__
    assert EVENTS.count(f"module setup {__name__}") == 1
"""
    pytester.makepyfile(test_x=body, test_y=body)
    pytester.runpytest("-p", "no:trio").assert_outcomes(passed=2)
