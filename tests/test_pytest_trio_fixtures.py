"""pytest-trio's fixture behaviours, beside pytest-trio and without it, grouped and not (P6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import TrioEnv

# A deadline for inner tests that would hang if fixtures were set up one after
# another instead of concurrently: a wrong implementation then fails, not hangs.
HANG_GUARD = ("-o", "trio_group_timeout=2")

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


# -- fixture ordering and concurrency ----------------------------------------


def test_independent_fixtures_set_up_and_torn_down_concurrently(
    pytester: pytest.Pytester, dropin_env: TrioEnv, known_bug: Callable[[bool, str], None]
) -> None:
    known_bug(
        dropin_env.ours,
        "fixtures are set up one after another, not concurrently: RuntimeError: Sequencer wait cancelled -- sequence broken",
    )
    # The Sequencer forces the two fixtures' steps to alternate: this only
    # completes if their setups (and teardowns) run at the same time.
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        from pytest_trio import trio_fixture
        from trio.testing import Sequencer

        ups, downs = [], []

        @trio_fixture
        def steps():
            return Sequencer()

        @pytest.fixture
        async def shared_base():
            ups.append("base")
            yield
            downs.append("base")
            assert downs == ["left 1", "right 1", "left 2", "right 2", "base"]

        @pytest.fixture
        async def left(shared_base, steps):
            async with steps(0):
                ups.append("left 1")
            async with steps(2):
                ups.append("left 2")
            yield
            async with steps(4):
                downs.append("left 1")
            async with steps(6):
                downs.append("left 2")

        @pytest.fixture
        async def right(shared_base, steps):
            async with steps(1):
                ups.append("right 1")
            async with steps(3):
                ups.append("right 2")
            yield
            async with steps(5):
                downs.append("right 1")
            async with steps(7):
                downs.append("right 2")

        @pytest.mark.trio
        async def test_interleaved(left, right):
            assert ups == ["base", "left 1", "right 1", "left 2", "right 2"]
            assert downs == []

        def test_base_saw_the_interleaved_teardown():
            assert downs[-1] == "base"
        """,
    )
    pytester.runpytest(*dropin_env.args, *HANG_GUARD).assert_outcomes(passed=2)


def test_nursery_of_each_fixture_cancelled_after_its_teardown(
    pytester: pytest.Pytester, dropin_env: TrioEnv, known_bug: Callable[[bool, str], None]
) -> None:
    known_bug(
        dropin_env.ours,
        "one nursery per test, cancelled after all teardowns, not one per requester cancelled after it ends",
    )
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio
        from pytest_trio import trio_fixture
        from trio.testing import wait_all_tasks_blocked

        log = []

        async def note_when_cancelled(what):
            try:
                await trio.sleep_forever()
            finally:
                log.append(what)

        @pytest.fixture
        def outermost():
            yield
            log.append("outermost down")

        @trio_fixture
        def lower(outermost, nursery):
            nursery.start_soon(note_when_cancelled, "lower's task cancelled")
            yield
            log.append("lower down")

        @trio_fixture
        def upper(lower, nursery):
            nursery.start_soon(note_when_cancelled, "upper's task cancelled")
            yield
            log.append("upper down")

        @pytest.mark.trio
        async def test_tasks_everywhere(upper, nursery):
            nursery.start_soon(note_when_cancelled, "test's task cancelled")
            await wait_all_tasks_blocked()
            log.append("test done")

        def test_order():
            assert log == [
                "test done",
                "test's task cancelled",
                "upper down",
                "upper's task cancelled",
                "lower down",
                "lower's task cancelled",
                "outermost down",
            ]
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=2)


def test_every_fixture_crash_is_reported(
    pytester: pytest.Pytester, dropin_env: TrioEnv, known_bug: Callable[[bool, str], None]
) -> None:
    known_bug(
        dropin_env.ours,
        "fixtures are set up one after another: only BOOM_COROUTINE is reported, the other four never run",
    )
    dropin_env.skip_where_pytest_cannot_show_pytest_trio_groups()
    # The messages are upper-cased at run time so that the tokens looked for
    # appear only where pytest reports the exceptions, not in the source.
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio
        from pytest_trio import trio_fixture

        body_ran = False

        async def crash_later(seconds, message):
            with trio.CancelScope(shield=True):
                await trio.sleep(seconds)
                raise RuntimeError(message.upper())

        @trio_fixture
        async def fails_in_coroutine():
            with trio.CancelScope(shield=True):
                await trio.sleep(2)
            raise RuntimeError("boom_coroutine".upper())

        @trio_fixture
        async def fails_before_yield():
            with trio.CancelScope(shield=True):
                await trio.sleep(2)
            raise RuntimeError("boom_before_yield".upper())
            yield

        @trio_fixture
        async def fails_after_yield():
            yield
            raise RuntimeError("boom_after_yield".upper())

        @trio_fixture
        def fails_in_background(nursery):
            nursery.start_soon(crash_later, 1, "boom_background_early")
            nursery.start_soon(crash_later, 3, "boom_background_late")

        @pytest.mark.trio
        async def test_crashes_everywhere(
            autojump_clock,
            fails_in_coroutine, fails_before_yield, fails_after_yield, fails_in_background,
        ):
            global body_ran
            body_ran = True

        def test_body_never_ran():
            assert not body_ran
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    if dropin_env.ours:
        # Intended difference (P4): setup failures are an error at setup, the
        # fixture that fails closing is an error at teardown.
        result.assert_outcomes(passed=1, errors=2)
        result.stdout.fnmatch_lines_random(
            [
                "*ERROR at setup of test_crashes_everywhere*",
                "*ERROR at teardown of test_crashes_everywhere*",
            ]
        )
    else:
        result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*BOOM_COROUTINE*",
            "*BOOM_BEFORE_YIELD*",
            "*BOOM_AFTER_YIELD*",
            "*BOOM_BACKGROUND_EARLY*",
            "*BOOM_BACKGROUND_LATE*",
        ]
    )


_CRASHING_WITH_NURSERY_FIXTURE = """
@trio_fixture
def crashing(nursery):
    nursery.start_soon(crash_soon)
    with pytest.raises(trio.Cancelled):
        yield
    deadlines["crashing"] = trio.current_effective_deadline()
"""

_CRASHING_WITH_OWN_NURSERY = """
@trio_fixture
async def crashing():
    async with trio.open_nursery() as nursery:
        nursery.start_soon(crash_soon)
        with pytest.raises(trio.Cancelled):
            yield
        deadlines["crashing"] = trio.current_effective_deadline()
"""


@pytest.mark.parametrize(
    "crashing",
    [_CRASHING_WITH_NURSERY_FIXTURE, _CRASHING_WITH_OWN_NURSERY],
    ids=["nursery-fixture", "own-nursery"],
)
def test_background_crash_cancels_the_test_and_only_its_fixture(
    pytester: pytest.Pytester,
    dropin_env: TrioEnv,
    known_bug: Callable[[bool, str], None],
    crashing: str,
) -> None:
    known_bug(
        dropin_env.ours and crashing == _CRASHING_WITH_NURSERY_FIXTURE,
        "a crash in the nursery fixture's task does not cancel the fixture that requested it: DID NOT RAISE Cancelled",
    )
    dropin_env.makepyfile(
        pytester,
        """
import math

import pytest
import trio
from pytest_trio import trio_fixture

deadlines = {}
test_ended_at = None

async def crash_soon():
    await trio.sleep(1)
    raise RuntimeError("the background task crashed")
"""
        + crashing
        + """
@trio_fixture
def unrelated():
    yield
    deadlines["unrelated"] = trio.current_effective_deadline()

@trio_fixture
def above_crashing(crashing):
    yield
    deadlines["above_crashing"] = trio.current_effective_deadline()

@pytest.mark.trio
async def test_waits_forever(above_crashing, unrelated, autojump_clock):
    global test_ended_at
    try:
        await trio.sleep_forever()
    finally:
        test_ended_at = trio.current_time()

def test_only_the_crashing_fixture_was_cancelled():
    # A cancelled scope has a deadline of -inf; the others may carry a
    # teardown grace period, but are not cancelled.
    assert {name: d == -math.inf for name, d in deadlines.items()} == {
        "crashing": True,
        "unrelated": False,
        "above_crashing": False,
    }
    assert test_ended_at == 1
""",
    )
    result = pytester.runpytest(*dropin_env.args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: the background task crashed*"])


def test_crash_below_nested_nurseries_and_async_finally(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        from contextlib import asynccontextmanager

        import pytest
        import trio

        async def fails_at_once():
            raise RuntimeError("inner_failure".upper())

        @asynccontextmanager
        async def awaits_while_closing():
            try:
                yield
            finally:
                await trio.sleep(0)

        @pytest.fixture
        async def tangled(nursery):
            async with trio.open_nursery() as outer:
                async with awaits_while_closing():
                    async with trio.open_nursery() as inner:
                        inner.start_soon(fails_at_once)
                        yield
                        outer.cancel_scope.cancel()

        @pytest.mark.trio
        async def test_waits_forever(tangled):
            await trio.sleep_forever()
        """,
    )
    result = pytester.runpytest(*dropin_env.args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines_random(["*INNER_FAILURE*"])


def test_fixture_crash_cancels_a_hanging_sibling_fixture(
    pytester: pytest.Pytester, dropin_env: TrioEnv, known_bug: Callable[[bool, str], None]
) -> None:
    known_bug(
        dropin_env.ours,
        "fixtures are set up one after another: test_hangs_first times out instead of being cancelled by the crash",
    )
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio

        @pytest.fixture
        async def never_ready():
            print("never_ready: waiting")
            await trio.Event().wait()
            yield

        @pytest.fixture
        async def explodes():
            print("explodes: raising")
            raise ValueError("explodes went off")
            yield

        @pytest.mark.trio
        async def test_only_explodes(explodes):
            pass

        @pytest.mark.trio
        async def test_explodes_first(explodes, never_ready):
            pass

        @pytest.mark.trio
        async def test_hangs_first(never_ready, explodes):
            pass
        """,
    )
    result = pytester.runpytest(*dropin_env.args, *HANG_GUARD)
    if dropin_env.ours:
        # Intended difference (P4): failing setups are errors at setup.
        result.assert_outcomes(errors=3)
    else:
        result.assert_outcomes(failed=3)
    assert result.stdout.str().count("ValueError: explodes went off") >= 3
    result.stdout.no_fnmatch_line("*Timeout*")


# -- contextvars --------------------------------------------------------------


def test_contextvars_flow_through_fixtures_into_the_test(
    pytester: pytest.Pytester, dropin_env: TrioEnv, known_bug: Callable[[bool, str], None]
) -> None:
    known_bug(
        not dropin_env.pytest_trio,
        "a trio_fixture whose value is None runs twice: pytest_fixture_setup returns None, so pytest sets it up again",
    )
    dropin_env.makepyfile(
        pytester,
        """
        import contextvars

        import pytest
        from pytest_trio import trio_fixture

        var = contextvars.ContextVar("var", default="unset")

        @trio_fixture
        def guard():
            assert var.get() == "unset"
            yield
            assert var.get() == "unset"

        @trio_fixture
        def sets_and_resets(guard):
            assert var.get() == "unset"
            token = var.set("from sets_and_resets")
            yield
            # A value set (and never reset) by a fixture above is seen here.
            assert var.get() == "from leaks"
            var.reset(token)
            assert var.get() == "unset"

        @trio_fixture
        def leaks(sets_and_resets):
            assert var.get() == "from sets_and_resets"
            var.set("from leaks")
            yield
            assert var.get() == "from leaks"

        @pytest.mark.trio
        async def test_sees_the_fixtures_value(leaks):
            assert var.get() == "from leaks"

        @pytest.mark.trio
        async def test_other_tests_do_not(nursery):
            assert var.get() == "unset"
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=2)


# -- the nursery fixture ------------------------------------------------------


def test_nursery_fixture_runs_a_fixtures_server(
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
        async def echo_listener(nursery):
            listeners = await nursery.start(partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
            return listeners[0]

        @pytest.mark.trio
        async def test_ping(echo_listener):
            stream = await trio.testing.open_stream_to_socket_listener(echo_listener)
            async with stream:
                await stream.send_all(b"ping")
                assert await stream.receive_some(16) == b"ping"

        @pytest.mark.trio
        async def test_nursery_in_the_test(nursery):
            done = trio.Event()

            async def set_it():
                done.set()

            nursery.start_soon(set_it)
            await done.wait()
        """,
    )
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=2)


def test_task_names_show_the_test_and_the_fixture(
    pytester: pytest.Pytester, dropin_env: TrioEnv
) -> None:
    dropin_env.makepyfile(
        pytester,
        """
        import pytest
        import trio
        from pytest_trio import trio_fixture

        @trio_fixture
        def distinctively_named(nursery):
            nursery.start_soon(trio.sleep_forever)

        @pytest.mark.trio
        async def test_named_task(distinctively_named):
            task = trio.lowlevel.current_task()
            assert "test_named_task" in task.name
            if PYTEST_TRIO_LAYOUT:
                assert task.name == "<test 'test_named_task'>"
                siblings = {t.name for t in task.parent_nursery.child_tasks}
                assert "<fixture 'distinctively_named'>" in siblings
        """.replace("PYTEST_TRIO_LAYOUT", str(not dropin_env.ours)),
    )
    # This plugin names a test's task after the test too; the layout of
    # fixture tasks beside it is pytest-trio's own, checked only there.
    pytester.runpytest(*dropin_env.args).assert_outcomes(passed=1)


# -- fixture mistakes ---------------------------------------------------------


def test_trio_fixture_used_by_sync_tests_is_an_error(
    pytester: pytest.Pytester, dropin_env: TrioEnv, known_bug: Callable[[bool, str], None]
) -> None:
    known_bug(
        not dropin_env.pytest_trio and pytest.version_tuple >= (9,),
        "after the refusal for test_sync_direct, test_sync_indirect gets a bare AssertionError (pytest 9: assert not self._finalizers in FixtureDef.execute)",
    )
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
    if dropin_env.grouped:
        # Both tests share one trio run, and so one instance.
        expected_instances = 1
    elif dropin_env.ours:
        # A trio object cannot outlive its run: each test's run makes its own.
        expected_instances = 2
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
    known_bug: Callable[[bool, str], None],
    trio_mode_way: str,
) -> None:
    known_bug(
        dropin_env.ours,
        "the message starts 'invalid trio_group mark on' though the test has no trio_group mark",
    )
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
