"""Generated suites, run grouped, match the same tests run one at a time (P2-P4).

Hypothesis writes suites of random groups, ``--trio-group-limit`` values,
fixture graphs (sync, sync yield, async, async yield; function, class,
module and session scope) and faults in every phase, background tasks
that crash among them; each is run in a subprocess grouped and again with
every test on its own -- by this plugin,
each test a group of its own, and, for the suites whose behaviour
pytest-trio documents alike, by pytest-trio 0.8 -- and the runs' junitxml
reports, report logs and fixture logs are compared. Suites that a
``KeyboardInterrupt`` in a teardown, or a Ctrl-C at a random moment, stops
are checked for what such a run must keep: one report per phase at most,
the reports of phases that ended, the summary last. The model, the files
and the checks are in ``suite_model.py``.

``TRIO_GROUPS_HYPOTHESIS_PROFILE=long`` runs many more examples, with new
draws each time and shrinking (see the development section of the README).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st

from conftest import HAVE_PYTEST_TRIO
from suite_model import (
    BACKGROUND_FAULTS,
    FIXTURE_KINDS,
    INTERRUPT,
    SCOPES,
    SETUP_FAULTS,
    SLOW,
    SLOW_SECONDS,
    TEARDOWN_FAULTS,
    TEARDOWN_GRACE,
    TEST_FAULTS,
    TIMING_FAULTS,
    CaseSpec,
    FixtureSpec,
    Run,
    Suite,
    check_interrupted,
    check_run,
    describe,
    normalized,
    per_test_fixtures,
    per_test_setups,
    run_pytest,
    without_skip_reasons,
    write_suite,
)

_COMMON = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}
PROFILES = {
    # The same few examples on every run, so that a failure in CI
    # reproduces; not shrunk, as each example costs two pytest runs.
    "ci": settings(
        max_examples=5, derandomize=True, phases=(Phase.explicit, Phase.generate), **_COMMON
    ),
    # New draws each run, shrunk to a small suite when one fails; about
    # half an hour on two cores.
    "long": settings(max_examples=500, print_blob=True, **_COMMON),
}
PROFILE_NAME = os.environ.get("TRIO_GROUPS_HYPOTHESIS_PROFILE", "ci")
PROFILE = PROFILES[PROFILE_NAME]


def fewer_in_ci(examples: int) -> settings:
    """The profile, with ``examples`` examples in CI."""
    return settings(PROFILE, max_examples=examples) if PROFILE_NAME == "ci" else PROFILE


#: The most tests of one suite whose deadline fires: run one at a time, each
#: costs its deadline in real time.
MAX_TIMED_OUT = 3


def _weighted_faults(
    faults: tuple[str, ...], none_weight: int = 3
) -> st.SearchStrategy[str | None]:
    if not faults:
        return st.none()
    return st.sampled_from([None] * (none_weight * len(faults) // 2) + list(faults))


@st.composite
def suites(draw: st.DrawFn, *, like_pytest_trio: bool = False) -> Suite:
    """Random suites; ``like_pytest_trio``: only where pytest-trio's documented behaviour is ours.

    That leaves out (docs/howto/pytest-trio.rst, "Where they differ"):
    timeouts; async fixtures wider than function scope; faults in async
    fixtures and in sync fixtures over them (pytest-trio makes them the
    call's failure); finalizers added with ``request.addfinalizer`` by a
    fixture over an async fixture (pytest-trio runs them after that async
    fixture's teardown); a failing sync fixture beside async ones
    (pytest-trio sets up sync fixtures first).
    """
    fixtures: list[FixtureSpec] = []
    for index in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(FIXTURE_KINDS))
        scope = (
            "function"
            if like_pytest_trio and kind.startswith("async")
            else draw(st.sampled_from(SCOPES))
        )
        model = Suite(tuple(fixtures), ())
        wider_or_same = [
            f.name
            for f in fixtures
            if SCOPES.index(f.scope) >= SCOPES.index(scope)
            and not (
                like_pytest_trio
                and kind in ("sync", "async")
                and any(d.is_async for d in model.closure((f.name,)))
            )
        ]
        deps = (
            draw(st.lists(st.sampled_from(wider_or_same), unique=True, max_size=2))
            if (wider_or_same)
            else []
        )
        setup_faults = SETUP_FAULTS if kind.startswith("async") else ("raise", "fail", "skip")
        if scope != "function":
            # A shared fixture that swallows the cancellation and sets up
            # anyway fails every member waiting on it at once in a group,
            # and only the first test when run one at a time: the later ones
            # find it set up.
            setup_faults = tuple(f for f in setup_faults if f != "swallow")
        teardown_faults = TEARDOWN_FAULTS if kind == "async_yield" else ("raise", "fail")
        if like_pytest_trio:
            over_async = kind.startswith("async") or any(
                d.is_async for d in model.closure(tuple(deps))
            )
            setup_faults = () if over_async else setup_faults
            teardown_faults = () if over_async else teardown_faults
        fixtures.append(
            FixtureSpec(
                name=f"f{index}",
                kind=kind,
                scope=scope,
                deps=tuple(deps),
                setup_fault=draw(_weighted_faults(setup_faults, none_weight=6)),
                teardown_fault=draw(_weighted_faults(teardown_faults, none_weight=6)),
            )
        )
    model = Suite(tuple(fixtures), ())
    tests: list[CaseSpec] = []
    names = [f.name for f in fixtures]
    for index in range(draw(st.integers(2, 8))):
        used = (
            tuple(draw(st.lists(st.sampled_from(names), unique=True, max_size=3))) if names else ()
        )
        needs_async = any(f.is_async for f in model.closure(used))
        if like_pytest_trio and needs_async:
            # pytest-trio sets up a test's sync fixtures before its async ones:
            # a sync fixture that fails leaves async ones requested before it
            # unset, where this plugin sets them up in pytest's order.
            used = tuple(
                name
                for name in used
                if not any(f.setup_fault and not f.is_async for f in model.closure((name,)))
            )
            needs_async = any(f.is_async for f in model.closure(used))
        is_async = needs_async or draw(st.booleans()) or draw(st.booleans())
        faults = tuple(
            f for f in TEST_FAULTS if (is_async and not like_pytest_trio) or f not in TIMING_FAULTS
        ) + (BACKGROUND_FAULTS if is_async else ())
        tests.append(
            CaseSpec(
                name=f"test_t{index}",
                module=draw(st.integers(0, 1)),
                in_class=draw(st.booleans()),
                is_async=is_async,
                group=draw(st.sampled_from(["g1", "g1", "g2", None])) if is_async else None,
                fixtures=used,
                fault=draw(_weighted_faults(faults)),
                xfail=draw(st.sampled_from([None, None, None, "strict", "lax"])),
            )
        )
    suite = Suite(tuple(fixtures), tuple(tests), limit=draw(st.sampled_from([None, 1, 2, 3])))
    timed_out = sum(suite.needs_deadline(t) for t in tests)
    # Bounded by construction rather than filtered, so that drawing stays cheap.
    if timed_out > MAX_TIMED_OUT:
        suite = _without_timing_faults(suite)
    return suite


def _without_timing_faults(suite: Suite) -> Suite:
    def calm(fault: str | None) -> str | None:
        return "raise" if fault in TIMING_FAULTS else fault

    return Suite(
        tuple(
            FixtureSpec(f.name, f.kind, f.scope, f.deps, calm(f.setup_fault), f.teardown_fault)
            for f in suite.fixtures
        ),
        tuple(
            CaseSpec(
                t.name,
                t.module,
                t.in_class,
                t.is_async,
                t.group,
                t.fixtures,
                calm(t.fault),
                t.xfail,
            )
            for t in suite.tests
        ),
        suite.limit,
    )


@st.composite
def interrupted_suites(draw: st.DrawFn, *, ctrl_c: bool = True) -> tuple[Suite, float | None]:
    """A suite that a KeyboardInterrupt stops, and when a Ctrl-C comes.

    Either one of the sync fixtures the tests use raises it in its teardown
    (the delay is ``None``), or (``ctrl_c``) a SIGINT comes that many
    seconds after the first test started, while some tests take a while.
    """
    suite = draw(suites())
    used = {spec.name for test in suite.tests for spec in suite.closure(test.fixtures)}
    sync = [f for f in suite.fixtures if not f.is_async and f.name in used]
    if not ctrl_c:
        assume(sync)
    if sync and (not ctrl_c or draw(st.booleans())):
        target = draw(st.sampled_from(sync)).name
        fixtures = tuple(
            dataclasses.replace(f, teardown_fault=INTERRUPT) if f.name == target else f
            for f in suite.fixtures
        )
        return dataclasses.replace(suite, fixtures=fixtures), None
    tests = tuple(
        dataclasses.replace(t, fault=SLOW) if t.fault is None and draw(st.booleans()) else t
        for t in suite.tests
    )
    return dataclasses.replace(suite, tests=tests), draw(st.floats(0, 2 * SLOW_SECONDS))


def _args(suite: Suite) -> list[str]:
    args = [f"--trio-group-teardown-timeout={TEARDOWN_GRACE}"]
    if suite.limit is not None:
        args.append(f"--trio-group-limit={suite.limit}")
    return args


def _run(suite: Suite, directory: Path, mode: str, *, interrupt_after: float | None = None) -> Run:
    files = write_suite(suite, directory, mode)
    run = run_pytest(directory, *_args(suite), interrupt_after=interrupt_after)
    note(f"==== {mode} ====\n{describe(files)}\n---- output\n{run.output}")
    return run


@PROFILE
@given(suite=suites())
def test_grouped_run_matches_each_test_run_alone(pytester: pytest.Pytester, suite: Suite) -> None:
    base = Path(tempfile.mkdtemp(dir=pytester.path))
    grouped = _run(suite, base / "grouped", "grouped")
    alone = _run(suite, base / "alone", "alone")
    grouped_life = check_run(suite, grouped)
    alone_life = check_run(suite, alone)
    assert normalized(suite, grouped) == normalized(suite, alone)
    assert per_test_fixtures(grouped_life) == per_test_fixtures(alone_life)
    assert per_test_setups(suite, grouped_life) == per_test_setups(suite, alone_life)


@fewer_in_ci(3)
@given(suite=suites(like_pytest_trio=True))
def test_grouped_run_matches_pytest_trio_running_each_test(
    pytester: pytest.Pytester, suite: Suite
) -> None:
    if not HAVE_PYTEST_TRIO:
        pytest.skip("pytest-trio is not installed")
    base = Path(tempfile.mkdtemp(dir=pytester.path))
    grouped = _run(suite, base / "grouped", "grouped")
    alone = _run(suite, base / "pytest-trio", "pytest-trio")
    grouped_life = check_run(suite, grouped)
    alone_life = check_run(suite, alone, in_reverse=False)
    assert without_skip_reasons(normalized(suite, grouped)) == without_skip_reasons(
        normalized(suite, alone)
    )
    assert per_test_fixtures(grouped_life) == per_test_fixtures(alone_life)
    # pytest-trio sets up independent async fixtures at the same time.
    assert {k: sorted(v) for k, v in per_test_setups(suite, grouped_life).items()} == {
        k: sorted(v) for k, v in per_test_setups(suite, alone_life).items()
    }


# In CI only a teardown's KeyboardInterrupt, which lands where the suite
# says: a Ctrl-C lands wherever the timing puts it.
@fewer_in_ci(4)
@given(case=interrupted_suites(ctrl_c=PROFILE_NAME != "ci"))
def test_a_keyboard_interrupt_loses_no_report(
    pytester: pytest.Pytester, case: tuple[Suite, float | None]
) -> None:
    suite, delay = case
    note(f"Ctrl-C {delay} s after the first test started" if delay is not None else "")
    base = Path(tempfile.mkdtemp(dir=pytester.path))
    for mode in ("grouped", "alone"):
        run = _run(suite, base / mode, mode, interrupt_after=delay)
        check_interrupted(suite, run)
