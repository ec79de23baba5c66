"""pytest-trio suites as they are: trio_group_by, trio_alone, clocks, beside pytest-trio or not (P6)."""

from __future__ import annotations

import pytest

from conftest import TrioEnv

# test_waiter passes only if test_setter runs while it waits: proof that the
# two ran in one group.
PAIR = """
import pytest, trio

EVENTS = {{}}

def event(name):
    return EVENTS.setdefault(name, trio.Event())

{mark}
async def test_waiter():
    with trio.fail_after({wait}):
        await event("set").wait()

{mark}
async def test_setter():
    event("set").set()
"""


def test_trio_group_by_module_groups_marked_trio_tests(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    pytester.makepyfile(PAIR.format(mark="@pytest.mark.trio", wait=5))
    result = pytester.runpytest(*trio_env.args, "-o", "trio_group_by=module", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "trio_group 'test_trio_group_by_module_groups_marked_trio_tests.py'"
            " (trio_group_by = module): 2 tests",
        ]
    )


def test_without_trio_group_by_trio_tests_run_one_at_a_time(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    pytester.makepyfile(PAIR.format(mark="@pytest.mark.trio", wait=0.2))
    # No group: the waiter waits for a setter that runs only after it.
    result = pytester.runpytest(*trio_env.args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED *::test_waiter*"])


def test_trio_mode_tests_are_trio_tests(pytester: pytest.Pytester, trio_env: TrioEnv) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = module\n")
    pytester.makepyfile(
        PAIR.format(mark="", wait=5)
        + """
def test_plain_sync():
    pass
"""
    )
    result = pytester.runpytest(*trio_env.args)
    result.assert_outcomes(passed=3)


def test_trio_group_by_class(pytester: pytest.Pytester, trio_env: TrioEnv) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = class\n")
    pytester.makepyfile(
        """
        import trio

        EVENTS = {}

        def event(name):
            return EVENTS.setdefault(name, trio.Event())

        class TestA:
            async def test_waiter(self):
                with trio.fail_after(5):
                    await event("a").wait()

            async def test_setter(self):
                event("a").set()

        class TestB:
            async def test_one(self):
                pass

        async def test_module_level():
            pass
        """
    )
    result = pytester.runpytest(*trio_env.args, "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "trio_group 'test_trio_group_by_class.py::TestA' (trio_group_by = class): 2 tests",
            "trio_group 'test_trio_group_by_class.py::TestB' (trio_group_by = class): 1 test",
            "trio_group 'test_trio_group_by_class.py' (trio_group_by = class): 1 test",
        ]
    )


def test_trio_group_by_session_joins_modules(pytester: pytest.Pytester, trio_env: TrioEnv) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = session\n")
    pytester.makepyfile(
        test_one="""
        import trio
        import shared

        async def test_waiter():
            with trio.fail_after(5):
                await shared.EVENT.wait()
        """,
        test_two="""
        import shared

        async def test_setter():
            shared.EVENT.set()
        """,
    )
    pytester.makepyfile(shared="import trio\nEVENT = trio.Event()\n")
    pytester.syspathinsert()
    result = pytester.runpytest(*trio_env.args, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["trio_group 'session' (trio_group_by = session): 2 tests"])


def test_an_explicit_mark_wins_over_trio_group_by(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = module\n")
    pytester.makepyfile(
        """
        import pytest

        async def test_auto():
            pass

        @pytest.mark.trio_group("mine")
        async def test_explicit():
            pass
        """
    )
    result = pytester.runpytest(*trio_env.args, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "trio_group 'test_an_explicit_mark_wins_over_trio_group_by.py'"
            " (trio_group_by = module): 1 test",
            "trio_group 'mine': 1 test",
        ]
    )


def test_trio_alone_keeps_a_test_out_of_its_group(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = module\n")
    pytester.makepyfile(
        """
        import pytest, trio

        RUNNING = []

        async def test_grouped_a():
            RUNNING.append("a")
            await trio.sleep(0.05)
            RUNNING.remove("a")

        async def test_grouped_b():
            RUNNING.append("b")
            await trio.sleep(0.05)
            RUNNING.remove("b")

        @pytest.mark.trio_alone
        async def test_alone():
            # Runs on its own: nothing else is running.
            assert RUNNING == []
            RUNNING.append("alone")
            await trio.sleep(0.05)
            RUNNING.remove("alone")
        """
    )
    result = pytester.runpytest(*trio_env.args, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["trio_group 'test_trio_alone_keeps_a_test_out_of_its_group.py' (*): 2 tests"]
    )


def test_trio_alone_takes_no_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio_alone(timeout=3)
        async def test_it():
            pass

        @pytest.mark.trio
        async def test_other():
            pass
        """
    )
    result = pytester.runpytest("-o", "trio_group_by=module", "-p", "no:trio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*invalid trio_alone mark on test_trio_alone_takes_no_arguments.py::test_it:"
            " trio_alone takes no arguments"
        ]
    )


@pytest.mark.parametrize("where", ["ini", "cli"])
def test_bad_trio_group_by_is_a_usage_error(pytester: pytest.Pytester, where: str) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    if where == "ini":
        pytester.makeini("[pytest]\ntrio_group_by = file\n")
        result = pytester.runpytest()
        name = "trio_group_by"
    else:
        result = pytester.runpytest("--trio-group-by=file")
        name = "--trio-group-by"
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {name} must be one of none, module, class, session, got 'file'"]
    )


def test_nothing_grouped_leaves_async_tests_alone(pytester: pytest.Pytester) -> None:
    # No trio mark, no trio_mode: an async test is nobody's, as without the plugin.
    pytester.makepyfile("async def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:trio", "-o", "trio_group_by=module")
    result.stdout.fnmatch_lines(["*async def functions are not natively supported*"])


needs_pytest_trio = pytest.mark.skipif(
    not __import__("conftest").HAVE_PYTEST_TRIO, reason="pytest-trio is not installed"
)

COEXIST = """
import pytest, trio
from pytest_trio import trio_fixture

@trio_fixture
def started_at():
    # A trio fixture: runs inside the test's trio run.
    return trio.current_time()

@pytest.fixture
async def server(nursery):
    await nursery.start(serve)
    yield "address"

async def serve(task_status=trio.TASK_STATUS_IGNORED):
    task_status.started()
    await trio.sleep_forever()

@pytest.mark.trio_group("g")
async def test_member(nursery, server, started_at):
    assert isinstance(nursery, trio.Nursery)
    assert server == "address"
    assert started_at <= trio.current_time()

@pytest.mark.trio
async def test_pytest_trios_own(nursery, server, started_at):
    assert isinstance(nursery, trio.Nursery)
    assert server == "address"
"""


@needs_pytest_trio
def test_beside_pytest_trio_members_are_ours_and_the_rest_is_its(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(COEXIST)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["trio_group 'g': 1 test (1 passed) in *"])


@needs_pytest_trio
def test_beside_pytest_trio_its_rules_stay_for_its_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="class")
        async def shared():
            return 1

        @pytest.fixture(scope="class")
        async def shared_too():
            return 2

        @pytest.mark.trio
        class TestPytestTrio:
            async def test_theirs(self, shared):
                pass

        @pytest.mark.trio_group("g")
        class TestOurs:
            async def test_ours(self, shared_too):
                assert shared_too == 2
        """
    )
    result = pytester.runpytest()
    # pytest-trio refuses wider-scoped async fixtures for its tests; group
    # members have them.
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: Trio fixtures must be function-scope"])


@needs_pytest_trio
def test_installed_it_changes_nothing_for_a_suite_that_groups_nothing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        async def value(nursery):
            nursery.start_soon(trio.sleep_forever)
            yield 1

        async def test_passes(value, autojump_clock):
            await trio.sleep(100)
            assert value == 1

        async def test_fails():
            assert False

        def test_sync_uses_async_fixture(value):
            pass
        """
    )
    with_plugin = pytester.runpytest("-p", "no:randomly")
    without = pytester.runpytest("-p", "no:randomly", "-p", "no:trio_groups")
    with_plugin.assert_outcomes(passed=1, failed=1, errors=1)
    without.assert_outcomes(passed=1, failed=1, errors=1)
    with_plugin.stdout.fnmatch_lines(["*Trio fixtures can only be used by Trio tests*"])


def test_hypothesis_given_tests_run_grouped_and_alone(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = module\n")
    pytester.makepyfile(
        """
        import contextvars
        import pytest, trio
        from hypothesis import HealthCheck, given, settings, strategies as st

        VAR = contextvars.ContextVar("var")
        EXAMPLES = []

        @pytest.fixture
        async def context():
            VAR.set("from the fixture")
            yield

        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(st.integers())
        async def test_every_example_runs_in_trio(context, x):
            await trio.sleep(0)
            assert VAR.get() == "from the fixture"
            EXAMPLES.append(x)

        @settings(max_examples=15, deadline=None)
        @given(st.integers(min_value=0))
        async def test_a_failing_example_fails_the_test(x):
            await trio.sleep(0)
            assert x < 5

        @pytest.mark.trio_alone
        @settings(max_examples=5, deadline=None)
        @given(st.booleans())
        async def test_alone(flag):
            await trio.sleep(0)

        def test_examples_ran():
            assert len(EXAMPLES) == 15
        """
    )
    result = pytester.runpytest(*trio_env.args, "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*: test_a_failing_example_fails_the_test(", "*x=5,"])


def test_another_trio_runner_without_pytest_trio_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntrio_run = qtrio\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:trio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: trio_run = qtrio: without pytest-trio, trio tests are run with trio.run"
            " only (install pytest-trio for other runners)"
        ]
    )


def test_a_trio_mark_with_another_runner_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def my_run(fn, *args, **kwargs):
            raise AssertionError("not called")

        @pytest.mark.trio(run=my_run)
        async def test_other_runner():
            pass

        @pytest.mark.trio
        async def test_plain():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:trio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*invalid trio mark on *::test_other_runner: the test asks to be run by"
            " test_a_trio_mark_with_another_runner_is_an_error.my_run;"
            " pytest-trio-groups runs trio tests with trio.run (install pytest-trio for other"
            " runners)"
        ]
    )


def test_a_sync_trio_test_is_an_error_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio
        def test_sync():
            pass

        @pytest.mark.trio
        async def test_async():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:trio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*invalid trio mark on test_a_sync_trio_test_is_an_error_naming_it.py::test_sync:"
            " the test is a synchronous function; trio tests must be 'async def' functions"
        ]
    )


def test_trio_fixture_without_pytest_trio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio
        from pytest_trio_groups import trio_fixture

        @trio_fixture
        def now():
            return trio.current_time()

        @pytest.mark.trio
        async def test_trio(now):
            assert now <= trio.current_time()

        def test_sync(now):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:trio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_sync requested trio fixture 'now', but is not a trio test: *"]
    )


# A suite written for pytest-trio, as its users write them: trio_mode, async
# yield fixtures that start servers in their nursery, autojump_clock,
# mock_clock, a trio_fixture, contextvars and a class of tests.
PYTEST_TRIO_STYLE_SUITE = """
import contextvars
import functools
import pytest, trio
{trio_fixture_import}

REQUEST_ID = contextvars.ContextVar("request_id", default=None)
LOG = []


@pytest.fixture
async def echo_server(nursery):
    async def handler(stream):
        async with stream:
            async for data in stream:
                await stream.send_all(data)

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    yield port
    LOG.append("server down")


@pytest.fixture
async def client(echo_server):
    stream = await trio.open_tcp_stream("127.0.0.1", echo_server)
    async with stream:
        yield stream


@pytest.fixture
async def request_id():
    REQUEST_ID.set("r-1")
    yield "r-1"
    assert REQUEST_ID.get() == "r-1"


@trio_fixture
def started():
    return trio.current_time()


async def test_echo(client):
    await client.send_all(b"ping")
    assert await client.receive_some(4) == b"ping"


async def test_contextvar(request_id):
    assert REQUEST_ID.get() == request_id


async def test_timeout_with_autojump(autojump_clock):
    with trio.move_on_after(3600) as scope:
        await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_mock_clock(mock_clock):
    mock_clock.jump(30)
    assert trio.current_time() == 30


async def test_trio_fixture(started):
    assert started <= trio.current_time()


class TestMany:
    @pytest.mark.parametrize("n", range(5))
    async def test_parallel_clients(self, client, n):
        message = b"m%d" % n
        await client.send_all(message)
        assert await client.receive_some(len(message)) == message


def test_sync_still_works():
    assert True


def test_servers_were_torn_down():
    assert LOG.count("server down") == 6
"""


@pytest.mark.parametrize("group_by", ["none", "module"])
def test_a_pytest_trio_style_suite_passes_unchanged(
    pytester: pytest.Pytester, trio_env: TrioEnv, group_by: str
) -> None:
    pytester.makeini(f"[pytest]\ntrio_mode = true\ntrio_group_by = {group_by}\n")
    pytester.makepyfile(
        PYTEST_TRIO_STYLE_SUITE.format(trio_fixture_import=trio_env.trio_fixture_import)
    )
    result = pytester.runpytest(*trio_env.args, "-v")
    result.assert_outcomes(passed=12)
    if group_by == "module":
        result.stdout.fnmatch_lines(
            [
                "trio_group 'test_a_pytest_trio_style_suite_passes_unchanged.py'"
                " (trio_group_by = module): 8 tests",
            ]
        )


def test_a_generator_marked_trio_is_an_error_of_its_own(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio
        def test_gen():
            yield

        @pytest.mark.trio
        async def test_fine():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:trio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*invalid trio mark on *::test_gen: the test is a generator function; trio tests*"]
    )
