"""pytest-trio's fixture behaviours, beside pytest-trio and without it, grouped and not (P6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import TrioEnv

# An exception's last line, raised alone ("E   ...") or inside a group ("  | ...").
EXCEPTION_LINE = r"(E\s+| +\| ){}$"


# -- async fixtures -----------------------------------------------------------


def test_coroutine_fixtures_nested_and_below_sync_fixtures(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        @pytest.fixture
        async def word():
            await trio.sleep(0)
            return "word"

        @pytest.fixture
        async def phrase(word):
            await trio.sleep(0)
            return f"a {word} in a phrase"

        @pytest.fixture
        def shout(phrase):
            return phrase.upper()

        @pytest.mark.trio
        async def test_value(word):
            assert word == "word"

        @pytest.mark.trio
        async def test_nested(phrase):
            assert phrase == "a word in a phrase"

        @pytest.mark.trio
        async def test_both_levels(word, phrase):
            assert (word, phrase) == ("word", "a word in a phrase")

        @pytest.mark.trio
        async def test_sync_over_async(shout):
            assert shout == "A WORD IN A PHRASE"
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=4)


def test_coroutine_fixture_computed_anew_for_each_test(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        made = []
        seen = []

        @pytest.fixture
        async def ticket():
            await trio.sleep(0)
            made.append(len(made) + 1)
            return made[-1]

        @pytest.mark.trio
        async def test_one(ticket):
            seen.append(ticket)

        @pytest.mark.trio
        async def test_two(ticket):
            seen.append(ticket)

        def test_each_test_had_its_own_ticket():
            assert sorted(seen) == [1, 2]
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=3)


def test_coroutine_fixture_that_raises(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        @pytest.fixture
        async def broken():
            await trio.sleep(0)
            raise ValueError("no such resource")

        @pytest.mark.trio
        async def test_uses_broken(broken):
            raise AssertionError("the test body must not run")
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    if dropin_env.ours:
        # Intended difference (P4): a fixture failing in setup is an error at
        # setup, as pytest reports it for sync fixtures.
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*ERROR at setup of test_uses_broken*"])
    else:
        # pytest-trio sets fixtures up inside the test's call: a failed test.
        result.assert_outcomes(failed=1)
    result.stdout.re_match_lines([EXCEPTION_LINE.format("ValueError: no such resource")])
    result.stdout.no_fnmatch_line("*the test body must not run*")


# -- async generator ("yield") fixtures --------------------------------------


def test_async_yield_fixtures_set_up_and_torn_down_in_order(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    # Each chain logs to a list of its own: grouped, the tests run at once.
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        alone, nested, under_sync, under_sync_yield = [], [], [], []

        def logging_fixture(log, name):
            async def fixture():
                log.append(f"{name} up")
                await trio.sleep(0)
                yield name
                await trio.sleep(0)
                log.append(f"{name} down")
            return fixture

        inner = pytest.fixture(logging_fixture(alone, "inner"), name="inner")
        base = pytest.fixture(logging_fixture(nested, "base"), name="base")
        base2 = pytest.fixture(logging_fixture(under_sync, "base2"), name="base2")
        base3 = pytest.fixture(logging_fixture(under_sync_yield, "base3"), name="base3")

        @pytest.fixture
        async def top(base):
            nested.append("top up")
            await trio.sleep(0)
            yield "top"
            await trio.sleep(0)
            nested.append("top down")

        @pytest.fixture
        def plain(base2):
            return "plain"

        @pytest.fixture
        def plain_yield(base3):
            under_sync_yield.append("plain_yield up")
            yield "plain_yield"
            under_sync_yield.append("plain_yield down")

        def test_nothing_set_up_before():
            assert alone == nested == under_sync == under_sync_yield == []

        @pytest.mark.trio
        async def test_alone(inner):
            assert inner == "inner"
            assert alone == ["inner up"]

        @pytest.mark.trio
        async def test_nested(top):
            assert top == "top"
            assert nested == ["base up", "top up"]

        @pytest.mark.trio
        async def test_under_sync(plain):
            assert plain == "plain"
            assert under_sync == ["base2 up"]

        @pytest.mark.trio
        async def test_under_sync_yield(plain_yield):
            assert plain_yield == "plain_yield"
            assert under_sync_yield == ["base3 up", "plain_yield up"]

        def test_everything_torn_down_after():
            assert alone == ["inner up", "inner down"]
            assert nested == ["base up", "top up", "top down", "base down"]
            assert under_sync == ["base2 up", "base2 down"]
            assert under_sync_yield == [
                "base3 up", "plain_yield up", "plain_yield down", "base3 down"
            ]
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=6)


def test_async_yield_fixture_that_yields_twice(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        @pytest.fixture
        async def greedy():
            await trio.sleep(0)
            yield "first"
            await trio.sleep(0)
            yield "second"

        @pytest.mark.trio
        async def test_uses_greedy(greedy):
            assert greedy == "first"
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    if dropin_env.ours:
        # Intended difference (P4): the test passed; its fixture failed in
        # teardown, which is an error at teardown.
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            [
                "*ERROR at teardown of test_uses_greedy*",
                "E * pytest_trio_groups.FixtureProtocolError: async fixture 'greedy' yielded more "
                "than once",
            ]
        )
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*RuntimeError: too many yields in fixture*"])


def test_async_yield_fixture_serving_from_its_own_nursery(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        from functools import partial

        import pytest
        import trio
        import trio.testing

        async def echo(stream):
            while data := await stream.receive_some(16):
                await stream.send_all(data)

        @pytest.fixture
        async def echo_server():
            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
                yield listeners[0]
                nursery.cancel_scope.cancel()

        @pytest.mark.trio
        async def test_round_trip(echo_server):
            stream = await trio.testing.open_stream_to_socket_listener(echo_server)
            async with stream:
                await stream.send_all(b"hello")
                assert await stream.receive_some(16) == b"hello"
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=1)


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_teardown_crash_does_not_stop_other_teardowns(
    pytester: pytest.Pytester, dropin_env: TrioEnv, kind: str
) -> None:
    if kind == "async":
        fixtures = """
        @pytest.fixture
        async def sound():
            async with trio.open_nursery():
                set_up.add("sound")
                yield
                torn_down.add("sound")

        @pytest.fixture
        async def faulty():
            async with trio.open_nursery():
                set_up.add("faulty")
                yield
                torn_down.add("faulty")
                raise RuntimeError("faulty fixture broke while closing")
        """
    else:
        # Sync fixtures that depend on an async one are trio fixtures too.
        fixtures = """
        @pytest.fixture
        async def makes_them_trio_fixtures():
            pass

        @pytest.fixture
        def sound(makes_them_trio_fixtures):
            set_up.add("sound")
            yield
            torn_down.add("sound")

        @pytest.fixture
        def faulty(makes_them_trio_fixtures):
            set_up.add("faulty")
            yield
            torn_down.add("faulty")
            raise RuntimeError("faulty fixture broke while closing")
        """
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        set_up, torn_down = set(), set()
        """
        + fixtures
        + """
        def test_first():
            assert set_up == torn_down == set()

        @pytest.mark.trio
        async def test_with_both(faulty, sound):
            pass

        def test_last():
            assert set_up == torn_down == {"sound", "faulty"}
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    if dropin_env.ours:
        # Intended difference (P4): the test passed and its fixture failed
        # while tearing down -- an error at teardown, as pytest reports it.
        result.assert_outcomes(passed=3, errors=1)
        result.stdout.fnmatch_lines(["*ERROR at teardown of test_with_both*"])
    else:
        result.assert_outcomes(passed=2, failed=1)
    result.stdout.re_match_lines(
        [EXCEPTION_LINE.format("RuntimeError: faulty fixture broke while closing")]
    )


# -- sync fixtures ------------------------------------------------------------


def test_sync_fixtures_in_trio_tests(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        plain_log, over_async_log = [], []

        @pytest.fixture
        def constant():
            return "constant"

        @pytest.fixture
        def plain():
            plain_log.append("plain up")
            yield "plain"
            plain_log.append("plain down")

        @pytest.fixture
        async def source():
            over_async_log.append("source up")
            await trio.sleep(0)
            return "source"

        @pytest.fixture
        def over_async(source):
            over_async_log.append("over_async up")
            yield f"over {source}"
            over_async_log.append("over_async down")

        def test_before():
            assert plain_log == over_async_log == []

        @pytest.mark.trio
        async def test_constant(constant):
            assert constant == "constant"

        @pytest.mark.trio
        async def test_plain(plain):
            assert plain == "plain"
            assert plain_log == ["plain up"]

        @pytest.mark.trio
        async def test_over_async(over_async):
            assert over_async == "over source"
            assert over_async_log == ["source up", "over_async up"]

        def test_after():
            assert plain_log == ["plain up", "plain down"]
            assert over_async_log == ["source up", "over_async up", "over_async down"]
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=5)


# -- fixture mistakes ---------------------------------------------------------


def test_trio_fixture_used_by_sync_tests_is_an_error(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio
        from pytest_trio import trio_fixture

        @trio_fixture
        def run_clock_now():
            return trio.current_time()

        @pytest.fixture
        def one_later(run_clock_now):
            return run_clock_now + 1

        @pytest.mark.trio
        async def test_trio(mock_clock, run_clock_now, one_later):
            assert (run_clock_now, one_later) == (0, 1)

        def test_sync_direct(run_clock_now):
            pass

        def test_sync_indirect(one_later):
            pass
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    result.assert_outcomes(passed=1, errors=2)
    if dropin_env.pytest_trio:
        # Sync tests stay pytest-trio's where it is active; on pytest 9 it
        # reports the second one with a bare AssertionError from pytest's
        # fixture cache, so only the first message is pytest-trio's.
        result.stdout.fnmatch_lines(
            [
                "*ERROR at setup of test_sync_direct*",
                "*: Trio fixtures can only be used by Trio tests*",
                "*ERROR at setup of test_sync_indirect*",
            ]
        )
    else:
        result.stdout.fnmatch_lines(
            [
                "*ERROR at setup of test_sync_direct*",
                f"*::test_sync_direct {_NOT_A_TRIO_TEST.format('trio', 'run_clock_now')}",
                "*ERROR at setup of test_sync_indirect*",
                f"*::test_sync_indirect {_NOT_A_TRIO_TEST.format('trio', 'run_clock_now')}",
            ]
        )


_NOT_A_TRIO_TEST = (
    "requested {0} fixture '{1}', but is not a trio test: {0} fixtures run only in trio tests "
    "(@pytest.mark.trio_group, @pytest.mark.trio, or async tests under trio_mode)"
)


def test_class_scoped_async_fixture_of_a_trio_class(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    if dropin_env.ours:
        # One instance for the class: grouped or not, both tests run in the
        # session's trio run, where the fixture lives.
        expected_instances = 1
    else:
        expected_instances = 0
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        made = []

        @pytest.fixture(scope="class")
        async def per_class():
            await trio.sleep(0)
            made.append("made")
            yield {"kind": "per class"}

        @pytest.mark.trio
        class TestShared:
            async def test_one(self, per_class):
                assert per_class == {"kind": "per class"}

            async def test_two(self, per_class):
                assert per_class == {"kind": "per class"}

        def test_made():
            assert len(made) == EXPECTED
        """.replace("EXPECTED", str(expected_instances)),
    )
    result = pytester.runpytest(*dropin_env.args)
    if dropin_env.ours:
        # Intended difference (P4): wider-scoped async fixtures are supported.
        result.assert_outcomes(passed=3)
    else:
        result.assert_outcomes(passed=1, errors=2)
        result.stdout.fnmatch_lines(["*: Trio fixtures must be function-scope*"])


def test_session_scoped_async_fixture_in_trio_mode(
    pytester: pytest.Pytester, dropin_env: TrioEnv, trio_mode_way: str
) -> None:
    dropin_env.enable_trio_mode(pytester, trio_mode_way)
    dropin_env.makepyfile(
        pytester,
        """
        import pytest

        @pytest.fixture(scope="session")
        async def for_everyone():
            return "shared"

        async def test_uses_it(for_everyone):
            assert for_everyone == "shared"
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    if dropin_env.ours:
        # Intended difference (P4): wider-scoped async fixtures are supported.
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*: Trio fixtures must be function-scope*"])


def test_async_fixture_of_a_sync_test_in_trio_mode(
    pytester: pytest.Pytester, dropin_env: TrioEnv, trio_mode_way: str
) -> None:
    dropin_env.enable_trio_mode(pytester, trio_mode_way)
    dropin_env.makepyfile(
        pytester,
        """
        import pytest

        @pytest.fixture
        async def needs_trio():
            pass

        async def test_async(needs_trio):
            pass

        def test_sync(needs_trio):
            pass
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    result.assert_outcomes(passed=1, errors=1)
    if dropin_env.pytest_trio:
        message = "*: Trio fixtures can only be used by Trio tests*"
    else:
        message = f"*::test_sync {_NOT_A_TRIO_TEST.format('async', 'needs_trio')}"
    result.stdout.fnmatch_lines(["*ERROR at setup of test_sync*", message])


def test_fixture_that_cancels_the_test_silently(
    pytester: pytest.Pytester, dropin_env: TrioEnv, trio_mode_way: str
) -> None:
    dropin_env.enable_trio_mode(pytester, trio_mode_way)
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        @pytest.fixture
        async def cancels_everything():
            with trio.CancelScope() as scope:
                scope.cancel()
                yield

        async def test_never_really_runs(cancels_everything):
            await trio.sleep(0)
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    result.assert_outcomes(failed=1)
    if dropin_env.ours:
        result.stdout.fnmatch_lines(
            [
                "E   pytest_trio_groups.FixtureProtocolError: async fixture 'cancels_everything' "
                "swallowed Cancelled at its yield; let trio.Cancelled propagate"
            ]
        )
    else:
        result.stdout.fnmatch_lines(["*cancels_everything*cancelled the test*"])


def test_two_clocks_for_one_test(
    pytester: pytest.Pytester,
    dropin_env: TrioEnv,
    trio_mode_way: str,
) -> None:
    dropin_env.enable_trio_mode(pytester, trio_mode_way)
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        @pytest.fixture
        def same_clock_again(mock_clock):
            return mock_clock

        async def test_two_clocks(mock_clock, autojump_clock):
            pass

        async def test_one_clock_twice(mock_clock, same_clock_again):
            assert trio.lowlevel.current_clock() is same_clock_again
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    if not dropin_env.ours:
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(["*ValueError: Expected at most one Clock in kwargs, got *"])
        return
    # Known before the test's run starts: an error at setup (P4). The same
    # clock reached twice is one clock, which the run uses.
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_two_clocks*",
            "*::test_two_clocks: the test uses both autojump_clock and mock_clock; "
            "a trio run has one clock",
        ]
    )
    # The test carries no trio_group mark: the message must not blame one.
    result.stdout.no_fnmatch_line("invalid trio_group mark on *::test_two_clocks*")


def test_clock_from_another_fixture(pytester: pytest.Pytester, dropin_env: TrioEnv) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio
        from trio.testing import MockClock

        @pytest.fixture
        def fast_clock():
            return MockClock(autojump_threshold=0)

        @pytest.mark.trio
        async def test_runs_on_it(fast_clock):
            assert trio.lowlevel.current_clock() is fast_clock
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    if not dropin_env.ours:
        # pytest-trio starts the test's run with any Clock among its arguments.
        result.assert_outcomes(passed=1)
        return
    # This plugin starts a run before its fixtures exist, so it can only give
    # it autojump_clock's or mock_clock's clock; another is refused clearly.
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *UsageError: fixture 'fast_clock' gives a trio Clock, but the test's trio "
            "run was started before its fixtures and cannot use it; make the fixture return (or "
            "depend on) autojump_clock or mock_clock, whose clock the run starts with"
        ]
    )
