"""The pytest hooks: options, the marks, and handing group members to the runner.

Loaded in every session that has the plugin installed, so it imports only
what registering options, ini keys and marks needs. The rest -- reading
marks, grouping, the runner, trio -- is imported when a session has a test
of this plugin's; until then each hook that runs for every test or fixture
returns at its first check.

Those imports name what they take from the module (``from ._x import y``,
never ``from . import _x``): pytester's in-process runs forget the modules
first imported in them but not the package's attributes, and only the
first form imports a forgotten module anew rather than reusing the old one
with its old stash keys.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import _trio_fixtures
from ._context import (
    BEFORE_THE_RUN,
    CURRENT_MEMBER,
    SESSION_RUN_KEY,
    SUMMARIES_KEY,
    UNATTRIBUTED_KEY,
)
from ._options import (
    ALONE_MARK_NAME,
    MARK_NAME,
    TRIO_MARK,
    Settings,
    add_markers,
    add_options,
    diagnosis_requested,
    read_settings,
)
from ._plugins import activate as activate_plugin_support
from ._plugins import activate_for_members, active_pytest_trio, auto_workers, auto_workers_header

if TYPE_CHECKING:
    from ._runner import PhaseHooks
    from ._trio_mode import TrioPolicy

_SETTINGS_KEY: pytest.StashKey[Settings] = pytest.StashKey()
#: pytest-trio's plugin module when it is active, else ``None``.
_PYTEST_TRIO_KEY: pytest.StashKey[object | None] = pytest.StashKey()
#: Set once collection gave a test a group spec or a mark error: until then
#: the per-test hooks have nothing to do.
_OURS_KEY: pytest.StashKey[bool] = pytest.StashKey()
#: Set once the support for other plugins that acts on members is loaded.
_MEMBER_SUPPORT_KEY: pytest.StashKey[bool] = pytest.StashKey()
_HOOKS_KEY: pytest.StashKey[PhaseHooks] = pytest.StashKey()
_TRACE_WRITTEN_KEY: pytest.StashKey[list[str]] = pytest.StashKey()
#: Set once the support that watches group runs is loaded (at the first group).
_RUN_SUPPORT_KEY: pytest.StashKey[bool] = pytest.StashKey()
#: The summary's line on trio tests left to pytest-trio for their runner.
_OTHER_RUNNERS_KEY: pytest.StashKey[str] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    plugin = active_pytest_trio(config)
    # Without pytest-trio: its mark and fixtures too, for suites written for it.
    add_markers(config, trio_mark=plugin is None)
    config.stash[_SETTINGS_KEY] = settings = read_settings(config)
    config.stash[_PYTEST_TRIO_KEY] = plugin
    if plugin is None:
        config.pluginmanager.register(_trio_fixtures, "trio_groups.trio_fixtures")
        trio_run = str(config.getini("trio_run"))
        if trio_run != "trio":
            raise pytest.UsageError(
                f"trio_run = {trio_run}: without pytest-trio, trio tests are run with "
                "trio.run only (install pytest-trio for other runners)"
            )
    activate_plugin_support(config)
    if diagnosis_requested(config):
        from ._diagnosis import activate as activate_diagnosis

        activate_diagnosis(config)
    if settings.trace is not None or settings.timeline is not None:
        # On a pytest-xdist controller too, which runs no group: it names
        # the workers' files and draws the page from what they send.
        from ._trace import activate as activate_trace

        activate_trace(config, settings.trace, settings.timeline)


@pytest.hookimpl(optionalhook=True, wrapper=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Generator[None, int, int]:
    # pytest-xdist's count of CPUs, raised for grouped sessions.
    cpus = yield
    return auto_workers(config, cpus)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return auto_workers_header(config)


def _trio_policy(config: pytest.Config) -> TrioPolicy:
    """Who runs the session's trio tests: made when collection finds some."""
    from ._plugins.pytest_trio import PytestTrio
    from ._trio_mode import POLICY_KEY, TrioPolicy

    policy = config.stash.get(POLICY_KEY, None)
    if policy is None:
        plugin = config.stash[_PYTEST_TRIO_KEY]
        policy = config.stash[POLICY_KEY] = TrioPolicy(
            group_by=config.stash[_SETTINGS_KEY].group_by,
            trio_mode=bool(config.getini("trio_mode")),
            trio_run=str(config.getini("trio_run")),
            pytest_trio=(
                None if plugin is None else PytestTrio(plugin, _trio_fixtures.REPLACEMENTS)
            ),
        )
    return policy


def _activate_run_support(config: pytest.Config) -> None:
    """What watches group runs: loaded when the session's first group runs, not before."""
    from ._blocked_loop import activate as activate_blocked_loop_watch
    from ._hazards import activate as activate_hazard_watch
    from ._stalls import activate as activate_stall_watch

    settings = config.stash[_SETTINGS_KEY]
    config.stash[_RUN_SUPPORT_KEY] = True
    activate_blocked_loop_watch(config, settings.blocked_threshold)
    activate_hazard_watch(config, settings.hazards)
    activate_stall_watch(config, settings.stall_report)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_RUN_SUPPORT_KEY, False):
        from ._watchdog import stop_session_watchdog

        stop_session_watchdog(config)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: Any
) -> pytest.Function | None:
    # pytest (9.x) refuses generator tests with a collection error, which
    # stops the whole session; a marked one becomes an error of its own.
    # The name first: a module's other objects may raise on any attribute
    # read (a framework's context-local proxy), and are left to pytest.
    if not collector.funcnamefilter(name):
        return None
    try:
        if not inspect.isgeneratorfunction(obj):
            return None
        own_marks = list(getattr(obj, "pytestmark", []))
    except Exception:
        return None
    # A generator marked trio is ours to refuse only where pytest-trio is not.
    beside_pytest_trio = collector.config.stash[_PYTEST_TRIO_KEY] is not None
    ours = (MARK_NAME,) if beside_pytest_trio else (MARK_NAME, TRIO_MARK)
    marks = [*own_marks, *collector.iter_markers()]
    if not any(mark.name in ours for mark in marks):
        return None
    return pytest.Function.from_parent(collector, name=name)


def _has_mark(items: Sequence[pytest.Item], names: tuple[str, ...]) -> bool:
    return any(mark.name in names for item in items for mark in item.iter_markers())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    settings = config.stash[_SETTINGS_KEY]
    beside_pytest_trio = config.stash[_PYTEST_TRIO_KEY] is not None
    if beside_pytest_trio or not config.getini("trio_mode"):
        # Only a test with one of these marks can be ours (pytest-trio has
        # marked its trio_mode tests by now): for a session without any, the
        # marks are not read and nothing more is imported.
        names: tuple[str, ...] = (MARK_NAME, ALONE_MARK_NAME)
        if not beside_pytest_trio or settings.group_by != "none":
            names = (*names, TRIO_MARK)
        if not _has_mark(items, names):
            return
    from ._grouping import MARK_ERROR_KEY, SPEC_KEY, order_items, read_marks

    policy = _trio_policy(config)
    policy.automark(items)
    read_marks(items, settings.default_timeout, policy)
    left = policy.other_runners_line()
    if left is not None:
        config.stash[_OTHER_RUNNERS_KEY] = left
    order_items(items)
    grouped = any(SPEC_KEY in item.stash for item in items)
    if not grouped and not any(MARK_ERROR_KEY in item.stash for item in items):
        return
    config.stash[_OURS_KEY] = True
    if grouped and _MEMBER_SUPPORT_KEY not in config.stash:
        config.stash[_MEMBER_SUPPORT_KEY] = True
        activate_for_members(config)
        if not hasattr(config, "workerinput"):
            # Only a session that groups something records its durations.
            from ._durations import record_durations

            record_durations(config)


def pytest_report_collectionfinish(
    config: pytest.Config, start_path: Path, items: list[pytest.Item]
) -> list[str]:
    # With -v or --collect-only: which group each test joined.
    if _OURS_KEY not in config.stash:
        return []
    verbosity = config.get_verbosity()
    if verbosity < 1 and not (config.option.collectonly and verbosity >= 0):
        return []
    from ._grouping import GroupIndex, describe_groups

    return describe_groups(GroupIndex(items), verbosity)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _OURS_KEY not in item.config.stash:
        return
    from ._grouping import MARK_ERROR_KEY, SPEC_KEY

    # (``in`` first: ``Stash.get`` raises and catches a KeyError for the
    # many items that have no error.)
    if MARK_ERROR_KEY in item.stash:
        pytest.fail(item.stash[MARK_ERROR_KEY], pytrace=False)
    if SESSION_RUN_KEY in item.session.stash and SPEC_KEY not in item.stash:
        from ._session_run import refuse_beside_pytest_trio

        refuse_beside_pytest_trio(item)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if _OURS_KEY not in item.config.stash:
        return None
    from ._grouping import INDEX_KEY, GroupIndex

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
        from ._pytest_compat import setup_state

        # The group left pytest's stack as the item after it expects. When
        # the next item ran in a group too, the last of them does the same for
        # the one after it; otherwise (another plugin may have moved members
        # apart after we ordered them) leave the stack as the next item
        # expects it.
        following = None if nextitem is None else index.group_of(nextitem)
        if following is None or not following.done:
            setup_state(session).teardown_exact(nextitem)
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
    settings = session.config.stash[_SETTINGS_KEY]
    if settings.trace is None and settings.timeline is None:
        return
    from ._trace import write_timeline

    session.config.stash[_TRACE_WRITTEN_KEY] = write_timeline(session.config)


@pytest.hookimpl(tryfirst=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_after_an_interrupt(session: pytest.Session, exitstatus: int) -> None:
    # Before pytest's runner tears down what the session still holds.
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        from ._interrupts import tear_down_after_an_interrupt

        tear_down_after_an_interrupt(session)


@pytest.hookimpl(trylast=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_ends_session_run(session: pytest.Session) -> None:
    # Last, after pytest's runner has torn down what the session still held
    # (its wider-scoped async fixtures among it): whatever is left is cancelled.
    if session.stash.get(SESSION_RUN_KEY, None) is not None:
        from ._session_run import close_session_run

        close_session_run(session)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    config = terminalreporter.config
    summaries = config.stash.get(SUMMARIES_KEY, None)
    if config.stash[_SETTINGS_KEY].summary:
        if summaries:
            from ._summary import write_summary

            write_summary(terminalreporter, summaries)
        left = config.stash.get(_OTHER_RUNNERS_KEY, None)
        if left is not None:
            if not summaries:
                terminalreporter.write_sep("=", "trio_group summary")
            terminalreporter.write_line(left)
    for line in config.stash.get(_TRACE_WRITTEN_KEY, ()):
        terminalreporter.write_line(line)
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


def _async_or_trio(func: object) -> bool:
    """Whether a fixture function is an async or a trio fixture: the plugin's to run."""
    return (
        inspect.iscoroutinefunction(func)
        or inspect.isasyncgenfunction(func)
        or _trio_fixtures.is_trio_fixture(func)
    )


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> object:
    member = CURRENT_MEMBER.get(None)
    if member is None and not _async_or_trio(fixturedef.func):
        return None
    from ._fixtures import is_async_fixture, refuse_outside_group
    from ._pytest_compat import FIXTURE_SET_UP, default_fixture_setup

    if is_async_fixture(fixturedef):
        if member is None:
            refuse_outside_group(fixturedef, request)
            return None
        member.async_fixtures.setup(fixturedef, request, member)
    if _trio_fixtures.is_trio_fixture(fixturedef.func):
        beside_pytest_trio = request.config.stash[_PYTEST_TRIO_KEY] is not None
        if member is None:
            if not beside_pytest_trio:
                refuse_outside_group(fixturedef, request)
        elif beside_pytest_trio:
            # A member's trio fixtures run in its own task, inside the group's
            # trio run: pytest's own code, never pytest-trio's placeholder.
            default_fixture_setup(fixturedef, request)
            return FIXTURE_SET_UP
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
    if member is None and not BEFORE_THE_RUN.get():
        return (yield)
    from ._fixtures import setting_up

    with setting_up(fixturedef, request, member):
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
    if member is None or member.run_.group.name is None:
        # Not a member, or one that runs on its own (a test that left its
        # automatic group for this fixture): the descriptors are its alone.
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
