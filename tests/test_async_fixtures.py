"""Async fixtures in the group's trio run: per test, cancellable, torn down in order (P4)."""

from __future__ import annotations

import pytest


def test_async_yield_fixture_per_test_with_ordered_events(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        N = 20
        LOG = []
        SET_UP = []
        ALL_SET_UP = trio.Event()

        @pytest.fixture
        async def resource(request):
            name = request.node.name
            LOG.append(("setup", name))
            SET_UP.append(name)
            if len(SET_UP) == N:
                ALL_SET_UP.set()
            # Every setup waits for all others: only concurrent setups finish.
            await ALL_SET_UP.wait()
            value = {"owner": name}
            yield value
            await trio.sleep(0)
            LOG.append(("teardown", name))

        @pytest.mark.trio_group("g", timeout=10)
        @pytest.mark.parametrize("n", range(N))
        async def test_member(n, resource, request):
            assert resource["owner"] == request.node.name
            await trio.sleep(0)
            LOG.append(("test", request.node.name))

        def test_order():
            names = {name for _, name in LOG}
            assert len(names) == N
            for name in names:
                assert [event for event, owner in LOG if owner == name] == [
                    "setup", "test", "teardown"
                ]
        """
    )
    pytester.runpytest().assert_outcomes(passed=21)


def test_fast_test_torn_down_while_slow_sibling_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        FAST_DOWN = trio.Event()

        @pytest.fixture
        async def resource(request):
            yield
            await trio.sleep(0)
            if request.node.name == "test_fast":
                FAST_DOWN.set()

        @pytest.mark.trio_group("g", timeout=5)
        async def test_fast(resource):
            pass

        @pytest.mark.trio_group("g", timeout=5)
        async def test_slow(resource):
            await FAST_DOWN.wait()
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_dependency_order_across_sync_and_async(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        LOG = []

        @pytest.fixture
        def base(tmp_path):
            LOG.append("base up")
            yield tmp_path
            LOG.append("base down")

        @pytest.fixture
        async def middle(base):
            await trio.sleep(0)
            LOG.append("middle up")
            yield base / "middle"
            await trio.sleep(0)
            LOG.append("middle down")

        @pytest.fixture
        def top(middle):
            LOG.append("top up")
            yield middle
            LOG.append("top down")

        @pytest.fixture
        async def value():
            await trio.sleep(0)
            return 42

        @pytest.mark.trio_group("g")
        async def test_chain(top, value, tmp_path):
            assert top == tmp_path / "middle"
            assert value == 42
            LOG.append("test")

        def test_log():
            assert LOG == [
                "base up", "middle up", "top up", "test", "top down", "middle down", "base down"
            ]
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_fixture_server_answers_and_a_crash_fails_only_its_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import functools, pytest, trio

        async def echo(stream):
            async for data in stream:
                await stream.send_all(data)

        @pytest.fixture
        async def echo_port():
            async with trio.open_nursery() as nursery:
                serve = functools.partial(trio.serve_tcp, echo, 0, host="127.0.0.1")
                listeners = await nursery.start(serve)
                yield listeners[0].socket.getsockname()[1]
                nursery.cancel_scope.cancel()

        @pytest.fixture
        async def crashing_service():
            async def worker():
                await trio.sleep(0.05)
                raise ConnectionResetError("service worker died")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(worker)
                yield
                nursery.cancel_scope.cancel()

        @pytest.mark.trio_group("g", timeout=5)
        async def test_echo(echo_port):
            stream = await trio.open_tcp_stream("127.0.0.1", echo_port)
            async with stream:
                await stream.send_all(b"ping")
                assert await stream.receive_some(4) == b"ping"

        @pytest.mark.trio_group("g", timeout=5)
        async def test_uses_crashing_service(crashing_service):
            await trio.sleep(10)

        @pytest.mark.trio_group("g", timeout=5)
        async def test_sibling():
            await trio.sleep(0.2)
        """
    )
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED *::test_uses_crashing_service*"])
    result.stdout.fnmatch_lines(["*ConnectionResetError: service worker died"])


def test_timeout_in_fixture_setup_is_an_error_at_its_await(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        TORN_DOWN = []

        @pytest.fixture
        async def ready_first(request):
            yield
            TORN_DOWN.append(request.node.name)

        @pytest.fixture
        async def never_ready(ready_first):
            await trio.sleep_forever()
            yield

        @pytest.mark.trio_group("g", timeout=0.2)
        async def test_waits(never_ready):
            raise AssertionError("never runs")

        def test_torn_down():
            assert TORN_DOWN == ["test_waits"]
        """
    )
    result = pytester.runpytest("-vv")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_waits _*",
            "*async def never_ready(ready_first):",
            ">       await trio.sleep_forever()",
            "E       Failed: Timeout: test exceeded 0.2s (trio_group 'g')",
        ]
    )
    result.stdout.no_fnmatch_line("*trio/_core*")


def test_teardown_after_yield_runs_after_timeout_and_exitfirst(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        TORN_DOWN = []
        RUNNING = trio.Event()

        @pytest.fixture
        async def resource(request):
            yield
            await trio.sleep(0.01)
            TORN_DOWN.append(request.node.name)

        @pytest.mark.trio_group("g", timeout=0.1)
        async def test_times_out(resource):
            await trio.sleep_forever()

        @pytest.mark.trio_group("g", timeout=10)
        async def test_cancelled_by_x(resource):
            RUNNING.set()
            await trio.sleep_forever()

        @pytest.mark.trio_group("g", timeout=10)
        async def test_fails(resource):
            await RUNNING.wait()
            await trio.sleep(0.3)
            assert False
        """
    )
    pytester.makeconftest(
        """
        def pytest_sessionfinish(session):
            import test_teardown_after_yield_runs_after_timeout_and_exitfirst as mod
            print("TORN DOWN", sorted(mod.TORN_DOWN))
        """
    )
    result = pytester.runpytest("--maxfail=2", "-s")
    result.assert_outcomes(failed=2, skipped=1)
    assert (
        "TORN DOWN ['test_cancelled_by_x', 'test_fails', 'test_times_out']" in result.stdout.str()
    )


def test_contextvars_propagate_and_are_isolated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import contextvars, pytest, trio

        current = contextvars.ContextVar("current")

        @pytest.fixture
        async def sets_var(request):
            current.set(request.node.name)
            yield
            assert current.get() == request.node.name

        @pytest.fixture
        def reads_var(sets_var):
            return current.get()

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(10))
        async def test_member(n, sets_var, reads_var, request):
            assert reads_var == request.node.name
            await trio.sleep(0.01)
            assert current.get() == request.node.name
        """
    )
    pytester.runpytest().assert_outcomes(passed=10)


def test_wider_scoped_async_fixture_outlives_its_first_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        LOG = []

        @pytest.fixture(scope="session")
        async def shared():
            LOG.append("up")
            await trio.sleep(0.05)
            yield {"id": len(LOG)}
            LOG.append("down")

        @pytest.mark.trio_group("first")
        @pytest.mark.parametrize("n", range(5))
        async def test_first(n, shared):
            await trio.sleep(0.01 * n)
            LOG.append(("first", shared["id"]))

        @pytest.mark.trio_group("second")
        async def test_second(shared):
            LOG.append(("second", shared["id"]))

        def test_log():
            # One instance for both groups, torn down at the session's end.
            assert LOG == ["up", *[("first", 1)] * 5, ("second", 1)]
        """
    )
    pytester.runpytest().assert_outcomes(passed=7)


def test_async_fixture_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        async def setup_fails():
            await trio.sleep(0)
            raise OSError("cannot connect")
            yield

        @pytest.fixture
        async def teardown_fails():
            yield
            await trio.sleep(0)
            raise OSError("cannot disconnect")

        @pytest.fixture
        async def teardown_fails_too():
            yield
            raise ValueError("second teardown error")

        @pytest.fixture
        async def no_yield():
            if False:
                yield

        @pytest.fixture
        async def yields_twice():
            yield 1
            yield 2

        @pytest.mark.trio_group("g")
        async def test_setup_error(setup_fails):
            pass

        @pytest.mark.trio_group("g")
        async def test_teardown_error(teardown_fails):
            pass

        @pytest.mark.trio_group("g")
        async def test_two_teardown_errors(teardown_fails, teardown_fails_too):
            pass

        @pytest.mark.trio_group("g")
        async def test_no_yield(no_yield):
            pass

        @pytest.mark.trio_group("g")
        async def test_yields_twice(yields_twice):
            pass

        @pytest.mark.trio_group("g")
        async def test_fine():
            pass
        """
    )
    result = pytester.runpytest("-rA", "-vv")
    result.assert_outcomes(passed=4, errors=5)
    result.stdout.fnmatch_lines(["ERROR *::test_setup_error - OSError: cannot connect"])
    result.stdout.fnmatch_lines(["ERROR *::test_teardown_error - OSError: cannot disconnect"])
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_two_teardown_errors*"])
    result.stdout.fnmatch_lines(["*ValueError: second teardown error"])
    result.stdout.fnmatch_lines(
        [
            "ERROR *::test_no_yield - pytest_trio_groups.FixtureProtocolError: async fixture 'no_yield' did not yield a value"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "ERROR *::test_yields_twice - pytest_trio_groups.FixtureProtocolError: async fixture 'yields_twice' yielded more than once"
        ]
    )
    # A single error is reported as itself, not inside an exception group.
    result.stdout.no_fnmatch_line("*ERROR *::test_teardown_error - *ExceptionGroup*")


def test_stuck_teardown_is_bounded_and_swallowing_cancelled_is_reported(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        async def stuck():
            yield
            await trio.sleep_forever()

        @pytest.fixture
        async def stubborn():
            yield
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                pass

        @pytest.mark.trio_group("g")
        async def test_stuck(stuck):
            pass

        @pytest.mark.trio_group("g")
        async def test_stubborn(stubborn):
            pass
        """
    )
    result = pytester.runpytest("-rA", "--trio-group-teardown-timeout=0.2")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*Failed: Timeout: teardown of fixture 'stuck' exceeded the 0.2s grace period and was cancelled"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*async fixture 'stubborn' swallowed trio.Cancelled during teardown (it overran the 0.2s grace period)"
        ]
    )


def test_nursery_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        CANCELLED = []

        @pytest.mark.trio_group("g")
        async def test_background(nursery):
            done = trio.Event()

            async def background():
                try:
                    done.set()
                    await trio.sleep_forever()
                except trio.Cancelled:
                    CANCELLED.append(True)
                    raise

            nursery.start_soon(background)
            await done.wait()

        @pytest.mark.trio_group("g")
        async def test_background_crash(nursery):
            async def crash():
                raise RuntimeError("background task failed")

            nursery.start_soon(crash)
            await trio.sleep(5)

        def test_cancelled_after_test():
            assert CANCELLED == [True]
        """
    )
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: background task failed"])


def test_async_fixture_in_ungrouped_test_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        async def server():
            yield "address"

        def test_plain(server):
            pass
        """
    )
    # Beside pytest-trio, which could handle async fixtures, pytest's own
    # error stands; this is the plugin's, without it.
    result = pytester.runpytest("-rE", "-p", "no:trio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_plain requested async fixture 'server', but is not a trio test: "
            "async fixtures run only in trio tests (@pytest.mark.trio_group, "
            "@pytest.mark.trio, or async tests under trio_mode)"
        ]
    )


def test_getfixturevalue_of_async_fixture_during_call_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        async def late():
            return 1

        @pytest.mark.trio_group("g")
        async def test_dynamic(request):
            request.getfixturevalue("late")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*async fixture 'late' can only be requested as an argument*"])


def test_wider_scoped_coroutine_fixture_is_made_once_for_every_group(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        MADE = []

        @pytest.fixture(scope="session")
        async def lock():
            # A trio object belongs to the run that made it.
            MADE.append(1)
            return trio.Lock()

        @pytest.mark.trio_group("first")
        @pytest.mark.parametrize("n", range(3))
        async def test_first(n, lock):
            async with lock:
                await trio.sleep(0)

        @pytest.mark.trio_group("second")
        async def test_second(lock):
            async with lock:
                await trio.sleep(0)

        def test_made_once():
            # Both groups run in the session's trio run, which the lock belongs to.
            assert MADE == [1]
        """
    )
    pytester.runpytest().assert_outcomes(passed=5)


def test_async_generator_fixture_requested_dynamically_in_setup_is_refused(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        async def server():
            yield "address"

        @pytest.fixture
        def picks_at_runtime(request):
            return request.getfixturevalue("server")

        @pytest.mark.trio_group("g")
        async def test_dynamic(picks_at_runtime):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*FixtureProtocolError: async fixture 'server' was requested with "
            "request.getfixturevalue(); request it as an argument, a usefixtures mark or autouse"
        ]
    )
