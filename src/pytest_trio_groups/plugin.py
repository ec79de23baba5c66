"""The pytest hooks: options, the marker, and handing group members to the runner."""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import _pytest_compat as compat
from . import _trio_fixtures
from ._context import CURRENT_MEMBER, SESSION_RUN_KEY
from ._diagnosis import activate as activate_diagnosis
from ._fixtures import is_async_fixture, refuse_outside_group
from ._grouping import (
    INDEX_KEY,
    MARK_ERROR_KEY,
    SPEC_KEY,
    GroupIndex,
    describe_groups,
    order_items,
    read_marks,
)
from ._options import Settings, add_options, read_settings
from ._plugins import activate as activate_plugin_support
from ._plugins import pytest_trio as pytest_trio_support
from ._spec import ALONE_MARK_NAME, MARK_NAME
from ._summary import SUMMARIES_KEY, UNATTRIBUTED_KEY, write_summary
from ._trio_mode import POLICY_KEY, TRIO_MARKER_HELP, TrioPolicy

if TYPE_CHECKING:
    from ._runner import PhaseHooks

_SETTINGS_KEY = pytest.StashKey[Settings]()
_HOOKS_KEY: pytest.StashKey[PhaseHooks] = pytest.StashKey()
_TRACE_WRITTEN_KEY = pytest.StashKey[str]()
#: Set once the support that watches group runs is loaded (at the first group).
_RUN_SUPPORT_KEY = pytest.StashKey[bool]()

MARKER_HELP = (
    f"{MARK_NAME}(name=None, *, timeout=None): run this async test concurrently with "
    "the other tests of the same group name, as sibling tasks in one trio nursery, "
    "each under its own deadline of `timeout` seconds."
)
ALONE_MARKER_HELP = (
    f"{ALONE_MARK_NAME}: a trio test that never joins an automatic trio_group_by group; "
    "it runs on its own (for tests that change process-wide state)."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", ALONE_MARKER_HELP)
    settings = config.stash[_SETTINGS_KEY] = read_settings(config)
    plugin = pytest_trio_support.active_plugin(config)
    trio_run = str(config.getini("trio_run"))
    if plugin is None:
        # pytest-trio's mark and fixtures, for suites written for it.
        config.addinivalue_line("markers", TRIO_MARKER_HELP)
        config.pluginmanager.register(_trio_fixtures, "trio_groups.trio_fixtures")
        if trio_run != "trio":
            raise pytest.UsageError(
                f"trio_run = {trio_run}: without pytest-trio, trio tests are run with "
                "trio.run only (install pytest-trio for other runners)"
            )
    config.stash[POLICY_KEY] = TrioPolicy(
        group_by=settings.group_by,
        trio_mode=bool(config.getini("trio_mode")),
        trio_run=trio_run,
        pytest_trio=(
            None
            if plugin is None
            else pytest_trio_support.PytestTrio(plugin, _trio_fixtures.REPLACEMENTS)
        ),
    )
    if config.pluginmanager.hasplugin("xdist"):
        from ._plugins import xdist

        xdist.register(config)
    activate_plugin_support(config)
    activate_diagnosis(config)
    if settings.trace is not None:
        # On a pytest-xdist controller too, which runs no group: it names
        # the workers' files.
        from . import _trace

        _trace.activate(config, settings.trace)


def _activate_run_support(config: pytest.Config) -> None:
    """What watches group runs: loaded when the session's first group runs, not before."""
    from . import _blocked_loop, _hazards

    settings = config.stash[_SETTINGS_KEY]
    config.stash[_RUN_SUPPORT_KEY] = True
    _blocked_loop.activate(config, settings.blocked_threshold)
    _hazards.activate(config, settings.hazards)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_RUN_SUPPORT_KEY, False):
        from . import _blocked_loop

        _blocked_loop.deactivate(config)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: Any
) -> pytest.Function | None:
    # pytest (9.x) refuses generator tests with a collection error, which
    # stops the whole session; a marked one becomes an error of its own.
    if not inspect.isgeneratorfunction(obj) or not collector.funcnamefilter(name):
        return None
    # A generator marked trio is ours to refuse only where pytest-trio is not.
    ours = (MARK_NAME,) if collector.config.stash[POLICY_KEY].pytest_trio else (MARK_NAME, "trio")
    marks = [*getattr(obj, "pytestmark", []), *collector.iter_markers()]
    if not any(mark.name in ours for mark in marks):
        return None
    return pytest.Function.from_parent(collector, name=name)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    policy = config.stash[POLICY_KEY]
    policy.automark(items)
    read_marks(items, config.stash[_SETTINGS_KEY].default_timeout, policy)
    order_items(items)
    if not hasattr(config, "workerinput") and any(SPEC_KEY in item.stash for item in items):
        # Only a session that groups something records its durations.
        from ._durations import record_durations

        record_durations(config)


def pytest_report_collectionfinish(
    config: pytest.Config, start_path: Path, items: list[pytest.Item]
) -> list[str]:
    # With -v or --collect-only: which group each test joined.
    verbosity = config.get_verbosity()
    if verbosity < 1 and not (config.option.collectonly and verbosity >= 0):
        return []
    return describe_groups(GroupIndex(items), verbosity)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # (``in`` first: ``Stash.get`` raises and catches a KeyError for the
    # many items that have no error.)
    if MARK_ERROR_KEY in item.stash:
        pytest.fail(item.stash[MARK_ERROR_KEY], pytrace=False)
    if SESSION_RUN_KEY in item.session.stash and SPEC_KEY not in item.stash:
        from ._session_run import refuse_beside_pytest_trio

        refuse_beside_pytest_trio(item)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    session = item.session
    index = session.stash.get(INDEX_KEY, None)
    if index is None:
        # A pytest-xdist worker without our scheduler's batches may not get
        # every member of a group: it runs each member on its own.
        on_xdist_worker = hasattr(session.config, "workerinput")
        index = session.stash[INDEX_KEY] = GroupIndex(session.items, split=on_xdist_worker)
    group = index.group_of(item)
    if group is None:
        return None
    if group.done:
        # Another plugin may have moved members apart after we ordered them:
        # leave pytest's stack as the next item expects it.
        compat.setup_state(session).teardown_exact(nextitem)
        return True
    group.done = True
    # The runner, and trio with it, is imported only for a session that runs a group.
    from ._runner import GroupRun, PhaseHooks

    hooks = session.stash.get(_HOOKS_KEY, None)
    if hooks is None:
        _activate_run_support(session.config)
        hooks = session.stash[_HOOKS_KEY] = PhaseHooks(session.config)
    settings = session.config.stash[_SETTINGS_KEY]
    run = GroupRun(session, group, index.next_after(group, nextitem), settings, hooks)
    try:
        run.execute()
    finally:
        if group.summarized:
            session.config.stash.setdefault(SUMMARIES_KEY, []).append(run.summary)
        out, err = run.capture.unattributed
        if run.summary.failed and (out or err):
            session.config.stash.setdefault(UNATTRIBUTED_KEY, []).append((group.label, out, err))
    return True


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.stash[_SETTINGS_KEY].trace is None:
        return
    from . import _trace

    trace = _trace.write_timeline(session.config)
    if trace is not None:
        session.config.stash[_TRACE_WRITTEN_KEY] = trace


@pytest.hookimpl(trylast=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_ends_session_run(session: pytest.Session) -> None:
    # Last, after pytest's runner has torn down what the session still held
    # (its wider-scoped async fixtures among it): whatever is left is cancelled.
    if session.stash.get(SESSION_RUN_KEY, None) is not None:
        from ._session_run import close_session_run

        close_session_run(session)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    config = terminalreporter.config
    if config.stash[_SETTINGS_KEY].summary:
        write_summary(terminalreporter, config.stash.get(SUMMARIES_KEY, []))
    trace = config.stash.get(_TRACE_WRITTEN_KEY, None)
    if trace is not None:
        terminalreporter.write_line(f"trio_group timeline written to {trace}")
    # Output captured while a group ran that no test owned (a wider-scoped
    # fixture's background task, a subprocess writing to fd 1): shown, like a
    # failing test's captured output, when the group had a failure.
    for label, out, err in terminalreporter.config.stash.get(UNATTRIBUTED_KEY, []):
        for name, text in (("stdout", out), ("stderr", err)):
            if text:
                terminalreporter.write_sep(
                    "-", f"{label}: captured {name} not attributed to a test"
                )
                terminalreporter.write(text if text.endswith("\n") else text + "\n")


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> object:
    member = CURRENT_MEMBER.get(None)
    if is_async_fixture(fixturedef):
        if member is None:
            refuse_outside_group(fixturedef, request)
            return None
        member.async_fixtures.setup(fixturedef, request, member)
    if _trio_fixtures.is_trio_fixture(fixturedef.func):
        beside_pytest_trio = request.config.stash[POLICY_KEY].pytest_trio is not None
        if member is None:
            if not beside_pytest_trio:
                refuse_outside_group(fixturedef, request)
        elif beside_pytest_trio:
            # A member's trio fixtures run in its own task, inside the group's
            # trio run: pytest's own code, never pytest-trio's placeholder.
            compat.default_fixture_setup(fixturedef, request)
            return compat.FIXTURE_SET_UP
    return None


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_fixture_setup")
def pytest_fixture_setup_of_members(
    fixturedef: Any, request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    # (pytest reads hooks only from names that start with "pytest_".)
    # The outermost wrapper, so that a group member's async fixture is ours
    # before another plugin's wrapper (pytest-asyncio's, in auto mode) can
    # take it over: setting it up here never returns to them.
    member = CURRENT_MEMBER.get(None)
    if member is not None and is_async_fixture(fixturedef):
        member.async_fixtures.setup(fixturedef, request, member)
    return (yield)


def _member_capture(
    request: pytest.FixtureRequest, name: str, *, binary: bool, tee: bool
) -> Iterator[Any]:
    member = CURRENT_MEMBER.get(None)
    if member is None:
        # Not a group member: pytest's own fixture of that name.
        yield request.getfixturevalue(name)
        return
    if member.output.fixture is not None:
        pytest.fail(f"{name} cannot be used together with another capture fixture", pytrace=False)
    from ._capture import GroupCaptureFixture

    fixture = member.output.fixture = GroupCaptureFixture(member.output, binary=binary, tee=tee)
    yield fixture
    fixture.close()


@pytest.fixture
def capsys(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Capture writes to ``sys.stdout``/``sys.stderr`` as text; ``capsys.readouterr()``.

    In a trio_group test it sees only that test's own output.
    """
    yield from _member_capture(request, "capsys", binary=False, tee=False)


@pytest.fixture
def capsysbinary(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Like ``capsys``, with ``readouterr()`` returning bytes."""
    yield from _member_capture(request, "capsysbinary", binary=True, tee=False)


@pytest.fixture
def capteesys(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Like ``capsys``, also passing the output on as ``--capture`` says."""
    yield from _member_capture(request, "capteesys", binary=False, tee=True)


def _refuse_fd_capture(request: pytest.FixtureRequest, name: str) -> Any:
    member = CURRENT_MEMBER.get(None)
    if member is None:
        return request.getfixturevalue(name)
    pytest.fail(
        f"{name} cannot be used in a trio_group test: file descriptors 1 and 2 are shared "
        "by every test running at the same time, so one test's fd-level output cannot be "
        "told apart from its siblings'. Use capsys, or run this test outside the group.",
        pytrace=False,
    )


@pytest.fixture
def capfd(request: pytest.FixtureRequest) -> Any:
    """Capture writes to file descriptors 1 and 2 (not available in trio_group tests)."""
    return _refuse_fd_capture(request, "capfd")


@pytest.fixture
def capfdbinary(request: pytest.FixtureRequest) -> Any:
    """Like ``capfd``, as bytes (not available in trio_group tests)."""
    return _refuse_fd_capture(request, "capfdbinary")
