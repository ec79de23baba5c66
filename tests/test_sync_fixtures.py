"""Sync fixtures of every scope for concurrent members (P4, sync part)."""

from __future__ import annotations

import pytest

from conftest import TrioEnv


def test_function_fixtures_are_per_test_across_20_concurrent_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        CREATED = []
        ALL_SET_UP = trio.Event()
        N = 20

        @pytest.fixture
        def box(request):
            value = {"owner": request.node.name}
            CREATED.append(value)
            yield value
            assert value["owner"] == request.node.name

        @pytest.mark.trio_group("g", timeout=5)
        @pytest.mark.parametrize("n", range(N))
        async def test_member(n, box, tmp_path, request):
            # Every member holds its values while all others hold theirs.
            if len(CREATED) == N:
                ALL_SET_UP.set()
            await ALL_SET_UP.wait()
            assert box["owner"] == request.node.name
            (tmp_path / "mine").write_text(request.node.name)
            await trio.sleep(0)
            assert (tmp_path / "mine").read_text() == request.node.name

        def test_distinct():
            assert len({id(box) for box in CREATED}) == N
        """
    )
    pytester.runpytest().assert_outcomes(passed=21)


def test_tmp_path_differs_per_member(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        PATHS = []

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(5))
        async def test_member(n, tmp_path):
            PATHS.append(tmp_path)
            await trio.sleep(0.01)

        def test_distinct():
            assert len(set(PATHS)) == 5
        """
    )
    pytester.runpytest().assert_outcomes(passed=6)


def test_teardown_is_lifo_per_test_and_happens_when_that_test_ends(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        LOG = []
        FAST_TORN_DOWN = trio.Event()

        @pytest.fixture
        def outer(request):
            LOG.append(("outer up", request.node.name))
            yield
            LOG.append(("outer down", request.node.name))
            if request.node.name == "test_fast":
                FAST_TORN_DOWN.set()

        @pytest.fixture
        def inner(outer, request):
            LOG.append(("inner up", request.node.name))
            yield
            LOG.append(("inner down", request.node.name))

        @pytest.mark.trio_group("g", timeout=5)
        async def test_fast(inner):
            pass

        @pytest.mark.trio_group("g", timeout=5)
        async def test_slow(inner):
            # Ends only after test_fast's fixtures were torn down.
            await FAST_TORN_DOWN.wait()

        def test_order():
            fast = [event for event, name in LOG if name == "test_fast"]
            slow = [event for event, name in LOG if name == "test_slow"]
            expected = ["outer up", "inner up", "inner down", "outer down"]
            assert fast == expected
            assert slow == expected
            # test_slow was still set up when test_fast was torn down.
            assert LOG.index(("outer down", "test_fast")) < LOG.index(("inner down", "test_slow"))
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_module_fixture_created_once_and_shared_with_ungrouped_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        CREATED = []
        FINISHED = []

        @pytest.fixture(scope="module")
        def service():
            CREATED.append(1)
            yield object()
            FINISHED.append(1)

        @pytest.fixture(scope="session")
        def config():
            CREATED.append("session")
            return {}

        def test_before(service):
            assert CREATED == [1]

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(5))
        async def test_member(n, service, config):
            await trio.sleep(0)

        def test_after(service, config):
            assert CREATED == [1, "session"]
            assert FINISHED == []
        """
    )
    pytester.runpytest().assert_outcomes(passed=7)


def test_module_fixture_torn_down_after_last_member_of_other_module(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        LOG = []

        @pytest.fixture(scope="module")
        def per_module(request):
            LOG.append(("up", request.module.__name__))
            yield
            LOG.append(("down", request.module.__name__))
        """
    )
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.trio_group("g")
        async def test_a(per_module):
            pass
        """,
        test_b="""
        import pytest

        @pytest.mark.trio_group("g")
        async def test_b(per_module):
            pass
        """,
        test_c="""
        from conftest import LOG

        def test_log():
            assert sorted(LOG) == [
                ("down", "test_a"), ("down", "test_b"), ("up", "test_a"), ("up", "test_b")
            ]
        """,
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_members_of_two_modules_running_at_once_get_their_own_modules_instance(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest, trio

        LOG = []
        BOTH_RUNNING = trio.Event()
        RUNNING = []

        @pytest.fixture(scope="module")
        def per_module(request):
            LOG.append(("up", request.module.__name__))
            yield request.module.__name__
            LOG.append(("down", request.module.__name__))

        @pytest.fixture(scope="module")
        async def per_module_async(request):
            return request.module.__name__

        @pytest.fixture(scope="class")
        def per_class(request):
            return request.cls.__name__

        async def both_running():
            RUNNING.append(1)
            if len(RUNNING) == 2:
                BOTH_RUNNING.set()
            await BOTH_RUNNING.wait()
        """
    )
    pytester.makepyfile(
        test_a="""
        import pytest
        from conftest import both_running

        class TestA:
            @pytest.mark.trio_group("g", timeout=5)
            async def test_a(self, per_module, per_module_async, per_class):
                await both_running()
                assert (per_module, per_module_async, per_class) == ("test_a", "test_a", "TestA")

            def test_a_after_the_group(self, per_module, per_class):
                assert (per_module, per_class) == ("test_a", "TestA")
        """,
        test_b="""
        import pytest
        from conftest import LOG, both_running

        class TestB:
            @pytest.mark.trio_group("g", timeout=5)
            async def test_b(self, per_module, per_module_async, per_class):
                await both_running()
                assert (per_module, per_module_async, per_class) == ("test_b", "test_b", "TestB")

        def test_log():
            # One instance per module; module test_a's is kept for its ungrouped test.
            assert LOG == [
                ("up", "test_a"), ("up", "test_b"), ("down", "test_b"), ("down", "test_a")
            ]
        """,
    )
    pytester.runpytest().assert_outcomes(passed=4)


def test_parametrized_module_fixture_one_instance_per_param(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        CREATED = []
        LIVE = set()

        @pytest.fixture(scope="module", params=["red", "blue"])
        def colour(request):
            CREATED.append(request.param)
            LIVE.add(request.param)
            yield request.param
            LIVE.discard(request.param)

        @pytest.fixture(scope="module")
        def palette(colour):
            return [colour]

        @pytest.mark.trio_group("g", timeout=5)
        @pytest.mark.parametrize("n", range(3))
        async def test_member(n, colour, palette):
            await trio.sleep(0.01)
            # Both params are alive at once; each test sees its own.
            assert palette == [colour]
            assert colour in LIVE

        def test_counts():
            assert sorted(CREATED) == ["blue", "red"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=7)


def test_request_param_indirect_and_getfixturevalue(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture(params=[1, 2])
        def number(request):
            return request.param

        @pytest.fixture
        def doubled(request):
            return request.param * 2

        @pytest.fixture
        def dynamic(request):
            return request.node.name

        @pytest.mark.trio_group("g")
        async def test_param(number):
            await trio.sleep(0)
            assert number in (1, 2)

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("doubled", [5, 6], indirect=True)
        async def test_indirect(doubled):
            assert doubled in (10, 12)

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(3))
        async def test_dynamic(n, request):
            await trio.sleep(0)
            assert request.getfixturevalue("dynamic") == request.node.name
        """
    )
    pytester.runpytest().assert_outcomes(passed=7)


def test_usefixtures_autouse_and_monkeypatch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, pytest, trio

        SEEN = []

        @pytest.fixture(autouse=True)
        def auto(request):
            SEEN.append(("auto", request.node.name))

        @pytest.fixture
        def marker(request):
            SEEN.append(("marker", request.node.name))

        @pytest.mark.trio_group("g")
        @pytest.mark.usefixtures("marker")
        async def test_uses(monkeypatch):
            monkeypatch.setenv("TRIO_GROUPS_X", "1")
            await trio.sleep(0)
            assert os.environ["TRIO_GROUPS_X"] == "1"

        @pytest.mark.trio_group("g")
        async def test_other():
            await trio.sleep(0.05)

        def test_check():
            assert "TRIO_GROUPS_X" not in os.environ
            assert sorted(SEEN) == [
                ("auto", "test_check"), ("auto", "test_other"),
                ("auto", "test_uses"), ("marker", "test_uses"),
            ]
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_fixture_error_is_an_error_for_that_test_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        def broken(request):
            raise LookupError(f"no backend for {request.node.name}")

        @pytest.mark.trio_group("g")
        async def test_uses_broken(broken):
            pass

        @pytest.mark.trio_group("g")
        async def test_fine():
            await trio.sleep(0.01)

        @pytest.mark.trio_group("g")
        async def test_missing(not_a_fixture):
            pass
        """
    )
    result = pytester.runpytest("-rE")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_uses_broken*", "E * LookupError: no backend for test_uses_broken"]
    )
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_missing*", "*fixture 'not_a_fixture' not found"]
    )


def test_class_fixture_and_xunit_setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        LOG = []

        def setup_module():
            LOG.append("setup_module")

        def teardown_module():
            LOG.append("teardown_module")

        @pytest.mark.trio_group("g")
        class TestThing:
            @classmethod
            def setup_class(cls):
                LOG.append("setup_class")

            @classmethod
            def teardown_class(cls):
                LOG.append("teardown_class")

            def setup_method(self, method):
                self.name = method.__name__

            async def test_one(self):
                await trio.sleep(0.01)
                assert self.name == "test_one"

            async def test_two(self):
                assert self.name == "test_two"

        def test_after():
            assert LOG == ["setup_module", "setup_class", "teardown_class"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_a_members_fixture_values_go_once_it_is_reported(pytester: pytest.Pytester) -> None:
    # As in plain pytest, where an item's fixture values and request are
    # dropped after its teardown: a group of thousands does not hold the
    # values of every member until the group ends.
    pytester.makepyfile(
        """
        import gc, weakref
        import pytest, trio

        class Value:
            pass

        ALIVE = weakref.WeakSet()

        @pytest.fixture
        def value():
            made = Value()
            ALIVE.add(made)
            return made

        @pytest.fixture
        def alive():
            gc.collect()
            return len(ALIVE)

        @pytest.mark.trio_group("g", timeout=5)
        async def test_first(value):
            await trio.sleep(0)

        @pytest.mark.trio_group("g", timeout=5)
        async def test_second(value):
            # test_first finished, and was reported, at its first checkpoint.
            await trio.sleep(0.01)
            gc.collect()
            assert len(ALIVE) == 1

        def test_after(alive):
            assert alive == 0
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


SYNC_FIXTURES_THAT_RUN_THEIR_OWN_LOOPS = """
import asyncio, sniffio, pytest, trio

def no_trio_here():
    with pytest.raises(RuntimeError):
        trio.lowlevel.current_task()
    with pytest.raises(sniffio.AsyncLibraryNotFoundError):
        sniffio.current_async_library()

async def answer():
    await trio.sleep(0)
    return 42

@pytest.fixture(scope="session")
def session_trio_run():
    no_trio_here()
    value = trio.run(answer)
    yield value
    no_trio_here()
    assert trio.run(answer) == 42

@pytest.fixture(scope="module")
def module_asyncio_loop():
    no_trio_here()
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete(asyncio.sleep(0, result="asyncio"))
    assert loop.run_until_complete(asyncio.sleep(0, result="again")) == "again"
    loop.close()

@pytest.fixture
def per_test(session_trio_run):
    no_trio_here()
    yield trio.run(answer) + session_trio_run
    assert trio.run(answer) == 42

async def test_a(session_trio_run, module_asyncio_loop, per_test):
    assert sniffio.current_async_library() == "trio"
    assert (session_trio_run, module_asyncio_loop, per_test) == (42, "asyncio", 84)
    await trio.sleep(0.01)

async def test_b(session_trio_run, module_asyncio_loop, per_test):
    await trio.sleep(0.01)
    assert trio.lowlevel.current_task().name.endswith("test_b")
"""


def test_sync_fixtures_of_members_see_no_trio_run(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    # As under pytest-trio: a sync fixture of any scope may call trio.run()
    # or run an asyncio loop, in setup and teardown, with warnings as errors
    # (a second trio.run finding the group's signal wakeup fd would warn).
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = module\nfilterwarnings = error\n")
    pytester.makepyfile(SYNC_FIXTURES_THAT_RUN_THEIR_OWN_LOOPS)
    result = pytester.runpytest(*trio_env.args, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*trio_group 'test_sync_fixtures_of_members_see_no_trio_run.py' (trio_group_by = module): 2 tests"
        ]
    )


def test_a_slow_wider_sync_fixture_holds_up_no_running_test(pytester: pytest.Pytester) -> None:
    # test_quick runs first, with a deadline shorter than the slow fixture's
    # setup: set up inside the run, that setup would hold the loop past it.
    pytester.makepyfile(
        """
        import time, pytest, trio

        @pytest.fixture(scope="session")
        def slow_cluster():
            time.sleep(0.6)
            return "cluster"

        @pytest.fixture(scope="module")
        def database(slow_cluster):
            return slow_cluster + "/db"

        @pytest.mark.trio_group("g", timeout=0.4)
        async def test_quick():
            await trio.sleep(0.05)

        @pytest.mark.trio_group("g", timeout=5)
        async def test_uses_the_cluster(database):
            assert database == "cluster/db"
        """
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "-W", "error::pytest_trio_groups.BlockedLoopWarning"
    )
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*BlockedLoopWarning*")


def test_a_failing_wider_sync_fixture_errors_each_test_that_uses_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        CALLS = []

        @pytest.fixture(scope="module")
        def broken():
            CALLS.append(1)
            raise RuntimeError("no database")

        @pytest.mark.trio_group("g")
        async def test_a(broken):
            pass

        @pytest.mark.trio_group("g")
        async def test_b(broken):
            pass

        @pytest.mark.trio_group("g")
        @pytest.mark.skip(reason="not today")
        async def test_skipped(broken):
            pass

        @pytest.mark.trio_group("g")
        async def test_c():
            await trio.sleep(0)

        def test_called_once():
            assert CALLS == [1]
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_a _*",
            "E       RuntimeError: no database",
            "*_ ERROR at setup of test_b _*",
            "E       RuntimeError: no database",
        ]
    )


def test_a_sync_fixture_that_needs_the_run_is_told_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        def needs_trio():
            return trio.lowlevel.current_task()

        @pytest.mark.trio_group("g")
        async def test_a(needs_trio):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            '>*raise RuntimeError("must be called from async context")*',
            "E*A sync fixture of a trio_group test runs with no trio run, as under "
            "pytest-trio; make it an async fixture to use trio.",
        ]
    )


def test_a_sync_fixture_over_an_async_one_runs_in_the_run(
    pytester: pytest.Pytester, trio_env: TrioEnv
) -> None:
    # As pytest-trio does: a sync fixture that depends on an async (or trio)
    # fixture is one of the run's, and may use trio.
    pytester.makeini("[pytest]\ntrio_mode = true\ntrio_group_by = module\n")
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.fixture
        async def clock_start():
            return trio.current_time()

        @pytest.fixture
        def elapsed(clock_start, nursery):
            nursery.start_soon(trio.sleep, 0)
            yield trio.current_time() - clock_start
            assert trio.current_time() >= clock_start

        async def test_a(elapsed):
            assert elapsed >= 0
        """
    )
    result = pytester.runpytest(*trio_env.args)
    result.assert_outcomes(passed=1)
