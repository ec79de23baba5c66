"""Every use of a private pytest attribute, in one place.

Each accessor names the pytest versions it was checked against. The test
suite runs on the oldest and newest supported pytest (8.4.x and 9.2.x), and
``tests/test_pytest_compat.py`` pins each behaviour relied on here.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import copy
import functools
import types
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import TYPE_CHECKING, Any, Literal, cast

import pytest
from _pytest.fixtures import FixtureDef
from _pytest.runner import CallInfo, check_interactive_exception

if TYPE_CHECKING:
    from _pytest.runner import SetupState

# Re-exported: pytest's own names, used as they are.
__all__ = ["FixtureDef", "check_interactive_exception"]

PYTEST_9 = int(pytest.__version__.split(".")[0]) >= 9

Phase = Literal["setup", "call", "teardown"]


def make_call_info(
    excinfo: pytest.ExceptionInfo[BaseException] | None,
    start: float,
    stop: float,
    duration: float,
    when: Phase,
) -> CallInfo[None]:
    """Build the ``CallInfo`` that ``pytest_runtest_makereport`` expects.

    The constructor is guarded by ``_ispytest`` (pytest 8.4, 9.2); the public
    ``CallInfo.from_call`` would time the replay, not the real phase.
    """
    return CallInfo(None, excinfo, start, stop, duration, when, _ispytest=True)


def make_skip(reason: str) -> BaseException:
    """A ``pytest.skip`` exception reported at the test's own location.

    ``_use_item_location`` (pytest 8.4, 9.2) keeps the skip summary pointing
    at the test, not at this plugin.
    """
    return pytest.skip.Exception(reason, _use_item_location=True)


def setup_state(session: pytest.Session) -> SetupState:
    """The session's ``SetupState`` (``session._setupstate``, pytest 8.4, 9.2)."""
    return session._setupstate


def set_setup_state(session: pytest.Session, state: object) -> None:
    """Swap the session's ``SetupState`` while a group runs (pytest 8.4, 9.2).

    pytest's ``Node.addfinalizer``, ``SubRequest.node`` checks and (9.1+)
    ``FixtureRequest.getfixturevalue`` all go through ``session._setupstate``;
    a group needs many items active at once, which one stack cannot hold.
    """
    session._setupstate = state  # type: ignore[assignment]


def fixture_manager(session: pytest.Session) -> Any:
    """``session._fixturemanager`` (pytest 8.4, 9.2)."""
    return session._fixturemanager


def item_fixturedefs(item: pytest.Function) -> Mapping[str, Sequence[FixtureDef[Any]]]:
    """The fixture plan computed at collection (``_fixtureinfo.name2fixturedefs``).

    Shared between the parametrized copies of one test function (pytest 9.2),
    so it is read here and never written.
    """
    return item._fixtureinfo.name2fixturedefs


def test_argnames(item: pytest.Function) -> tuple[str, ...]:
    """The names the test function itself takes (``_fixtureinfo.argnames``)."""
    return item._fixtureinfo.argnames


def set_request_fixturedefs(
    item: pytest.Function, table: Mapping[str, Sequence[FixtureDef[Any]]]
) -> None:
    """Give the item's top request its own fixture lookup table.

    Every ``SubRequest`` made under the item copies ``_arg2fixturedefs`` from
    its parent (pytest 8.4, 9.2), so this one table decides which
    ``FixtureDef`` -- and so which cached value -- every fixture of the item
    uses.
    """
    item._request._arg2fixturedefs = table  # type: ignore[misc]


def clone_fixturedef(fixturedef: FixtureDef[Any]) -> FixtureDef[Any]:
    """A copy of ``fixturedef`` with its own cache and finalizer list.

    ``FixtureDef`` keeps one ``cached_result`` and one ``_finalizers`` list
    (pytest 8.4, 9.2); concurrent tests each need their own.
    """
    clone = copy.copy(fixturedef)
    clone.cached_result = None
    clone.__dict__["_finalizers"] = []
    return clone


def renew_request(item: pytest.Function) -> None:
    """Make ``item`` ready to run again: no fixture values, a new ``request``, a new instance.

    ``Function._initrequest`` (pytest 8.4, 9.2) is what pytest's own runner
    calls before running an item again; a test method's class instance is
    cached in ``_instance`` and its bound method in ``_obj`` (pytest 8.4, 9.2),
    both made anew on next access once dropped.
    """
    item._initrequest()
    if getattr(item, "_instance", None) is not None:
        del item._instance
        item._obj = None


def release_request(item: pytest.Function) -> None:
    """Let go of ``item``'s fixture values and ``request`` once it has run for good.

    What pytest's ``runtestprotocol`` does after an item's teardown (pytest
    8.4, 9.2): ``_request`` set to ``False`` and ``funcargs`` to ``None``.
    ``renew_request`` makes them anew should the item run again.
    """
    item._request = False  # type: ignore[assignment]
    item.funcargs = None  # type: ignore[assignment]


def set_fixture_function(fixturedef: FixtureDef[Any], func: Callable[..., Any]) -> None:
    """Make a (cloned) ``FixtureDef`` run ``func``, a function taking no fixtures.

    ``FixtureDef.func`` and ``.argnames`` are plain attributes read at each
    ``execute`` (pytest 8.4, 9.2); the fixture's dependencies are what
    ``argnames`` lists.
    """
    fixturedef.func = func  # type: ignore[misc]
    fixturedef.argnames = ()  # type: ignore[misc]


#: Returned from ``pytest_fixture_setup`` once the fixture's value is cached:
#: pytest reads the value from ``cached_result``, never from the hook's result
#: (pytest 8.4, 9.2), which only has to be non-``None`` so that no other
#: implementation runs (the value itself may be ``None``).
FIXTURE_SET_UP = object()


def default_fixture_setup(fixturedef: FixtureDef[Any], request: Any) -> object:
    """pytest's own ``pytest_fixture_setup``: call the fixture function, cache its value.

    ``_pytest.fixtures.pytest_fixture_setup`` (pytest 8.4, 9.2), for fixtures
    that another plugin's implementation of the hook must not see.
    """
    from _pytest.fixtures import pytest_fixture_setup

    return pytest_fixture_setup(fixturedef, request)


def conftests_not_for(item: pytest.Item) -> set[types.ModuleType]:
    """The conftest plugins that do not apply to ``item``'s path.

    Mirrors ``Session.gethookproxy`` (pytest 8.4, 9.2) so that a hook called
    on a subset of plugins still honours directory-local conftest hooks.
    """
    pm = item.config.pluginmanager
    mine = pm._getconftestmodules(item.path)
    return set(pm._conftest_plugins.difference(mine))


def node_chain(item: pytest.Item) -> list[Any]:
    """``item.listchain()``: the session down to the item (public, typed loosely)."""
    return cast("list[Any]", item.listchain())


def test_outcome_types() -> tuple[type[BaseException], ...]:
    """What pytest's ``SetupState`` catches from setups and finalizers (``TEST_OUTCOME``)."""
    from _pytest.outcomes import OutcomeException

    return (OutcomeException, Exception)


def request_fixturedefs(item: pytest.Function) -> Mapping[str, Sequence[FixtureDef[Any]]]:
    """The table ``set_request_fixturedefs`` gave the item's top request (pytest 8.4, 9.2)."""
    return item._request._arg2fixturedefs


def top_request(item: pytest.Function) -> Any:
    """The ``request`` object of a test function (``item._request``, pytest 8.4, 9.2)."""
    return item._request


def resolve_fixture_function(fixturedef: FixtureDef[Any], request: Any) -> Callable[..., Any]:
    """The fixture function, bound to the test's instance for class fixtures.

    ``_pytest.fixtures.resolve_fixture_function`` (pytest 8.4, 9.2).
    """
    from _pytest.fixtures import resolve_fixture_function as resolve

    return resolve(fixturedef, request)


def finish_target(finalizer: Callable[[], object]) -> tuple[FixtureDef[Any], Any] | None:
    """The ``(fixturedef, request)`` if ``finalizer`` is ``partial(fixturedef.finish, request=...)``.

    ``FixtureDef.execute`` registers exactly that on the requesting node and
    on the fixtures it depends on (pytest 8.4, 9.2).
    """
    if isinstance(finalizer, functools.partial):
        bound: Any = finalizer.func
        if getattr(bound, "__func__", None) is FixtureDef.finish and not finalizer.args:
            return bound.__self__, finalizer.keywords["request"]
    return None


def finish_is_noop(fixturedef: FixtureDef[Any]) -> bool:
    """Whether ``FixtureDef.finish`` would return at once.

    pytest 9 returns early when there is no cached value; pytest 8.4 still
    runs the (empty) finalizers and the post-finalizer hook.
    """
    return PYTEST_9 and fixturedef.cached_result is None


def finish_calls_post_finalizer() -> bool:
    """pytest 8.4 calls ``pytest_fixture_post_finalizer`` from ``finish``;
    pytest 9 registers it as the fixture's first finalizer instead."""
    return not PYTEST_9


def finish_done(fixturedef: FixtureDef[Any]) -> None:
    """What ``FixtureDef.finish`` does after its finalizers ran (pytest 8.4, 9.2)."""
    fixturedef.cached_result = None
    fixturedef._finalizers.clear()


def pyfuncitem(request: Any) -> pytest.Function:
    """The test item a fixture request is for (``request._pyfuncitem``, pytest 8.4, 9.2)."""
    return request._pyfuncitem  # type: ignore[no-any-return]


def fixture_finalizers(fixturedef: FixtureDef[Any]) -> list[Callable[[], object]]:
    """``fixturedef._finalizers`` (pytest 8.4, 9.2)."""
    return fixturedef._finalizers


def global_sys_captures(capman: Any) -> list[Any]:
    """The ``SysCapture`` objects of pytest's global capture, for stdout and stderr.

    Under ``--capture=fd`` they sit inside the ``FDCapture``s (``.syscapture``).
    Their ``tmpfile`` is what ``sys.stdout``/``sys.stderr`` are set to each
    time pytest resumes capturing (pytest 8.4, 9.2). Empty for ``--capture=no``.
    """
    multi = capman._global_capturing
    if multi is None:
        return []
    captures = []
    for capture in (multi.out, multi.err):
        if capture is None:
            continue
        capture = getattr(capture, "syscapture", capture)
        if hasattr(capture, "tmpfile"):
            captures.append(capture)
    return captures


def capture_result(out: Any, err: Any) -> Any:
    """A ``CaptureResult``, what ``capsys.readouterr()`` returns (pytest 8.4, 9.2)."""
    from _pytest.capture import CaptureResult

    return CaptureResult(out, err)


#: pytest's plugins that turn unraisable and unhandled-thread exceptions
#: into warnings at the end of each test phase.
EXCEPTION_CHECK_PLUGINS = ("unraisableexception", "threadexception")


def pending_exception_checks(
    config: pytest.Config,
) -> list[tuple[Sized, Callable[[pytest.Config], None]]]:
    """For each of ``EXCEPTION_CHECK_PLUGINS`` that is active: its queue and what drains it.

    ``sys.unraisablehook`` and ``threading.excepthook`` append to a deque in
    ``config.stash`` (``unraisable_exceptions``, ``thread_exceptions``); each
    plugin's ``pytest_runtest_setup/call/teardown`` (trylast) only calls
    ``collect_unraisable`` / ``collect_thread_exception`` on it, which warns
    (or raises, under ``-W error``) for what is queued (pytest 8.4, 9.2).
    """
    from _pytest import threadexception, unraisableexception

    sources: list[tuple[types.ModuleType, Any, Callable[[pytest.Config], None]]] = [
        (
            unraisableexception,
            unraisableexception.unraisable_exceptions,
            unraisableexception.collect_unraisable,
        ),
        (
            threadexception,
            threadexception.thread_exceptions,
            threadexception.collect_thread_exception,
        ),
    ]
    checks: list[tuple[Sized, Callable[[pytest.Config], None]]] = []
    pm = config.pluginmanager
    for module, key, collect in sources:
        if pm.is_registered(module) and key in config.stash:
            checks.append((config.stash[key], collect))
    return checks


def logging_plugin(config: pytest.Config) -> Any:
    """pytest's ``LoggingPlugin`` (registered as ``"logging-plugin"``), or ``None``."""
    return config.pluginmanager.get_plugin("logging-plugin")


def new_log_capture_handler() -> Any:
    """A fresh ``LogCaptureHandler``, the handler ``caplog`` reads (pytest 8.4, 9.2)."""
    from _pytest.logging import LogCaptureHandler

    return LogCaptureHandler()


def set_caplog_phase(item: pytest.Item, when: str, handler: Any) -> None:
    """Point ``caplog`` at this phase's handler, as pytest's ``_runtest_for`` does."""
    from _pytest.logging import caplog_handler_key, caplog_records_key

    item.stash.setdefault(caplog_records_key, {})[when] = handler.records
    item.stash[caplog_handler_key] = handler


def clear_caplog(item: pytest.Item) -> None:
    """Drop the ``caplog`` stash entries once the test is over."""
    from _pytest.logging import caplog_handler_key, caplog_records_key

    if caplog_records_key in item.stash:
        del item.stash[caplog_records_key]
    if caplog_handler_key in item.stash:
        del item.stash[caplog_handler_key]


def caplog_changed_levels(caplog: Any) -> dict[str | None, int]:
    """The loggers a ``caplog`` fixture re-levelled, with their levels before.

    ``LogCaptureFixture._initial_logger_levels`` (pytest 8.4, 9.2).
    """
    return dict(getattr(caplog, "_initial_logger_levels", {}))


def parse_warning_filter(arg: str) -> tuple[Any, ...]:
    """``@pytest.mark.filterwarnings`` argument to ``warnings.filterwarnings`` arguments."""
    from _pytest.config import parse_warning_filter as parse

    return tuple(parse(arg, escape=False))


def monkeypatch_undo_records(mp: pytest.MonkeyPatch) -> tuple[list[Any], list[Any]]:
    """What ``mp.undo()`` will put back: ``(obj, name, old)`` attribute and
    ``(mapping, key, old)`` item records, oldest first.

    ``MonkeyPatch._setattr`` and ``._setitem`` (pytest 8.4, 9.2); ``setenv``
    and ``delenv`` record into ``_setitem`` with ``os.environ``.
    """
    return mp._setattr, mp._setitem


def monkeypatch_notset() -> object:
    """The ``old`` of an undo record for a target that did not exist.

    ``_pytest.monkeypatch.notset`` on pytest 8.4; ``NOTSET``, imported there
    from ``_pytest.compat``, on pytest 9.2.
    """
    from _pytest import monkeypatch

    notset = getattr(monkeypatch, "notset", None)
    return monkeypatch.NOTSET if notset is None else notset  # type: ignore[attr-defined]


def faulthandler_fd(config: pytest.Config) -> int:
    """The file descriptor pytest's faulthandler plugin dumps to.

    A duplicate of stderr kept in ``config.stash[fault_handler_stderr_fd_key]``
    (pytest 8.4, 9.2), so that dumps bypass output capture.
    """
    from _pytest.faulthandler import fault_handler_stderr_fd_key

    return config.stash[fault_handler_stderr_fd_key]


def faulthandler_exit_on_timeout(config: pytest.Config) -> bool:
    """The ``faulthandler_exit_on_timeout`` ini key: pytest 9 has it, pytest 8.4 does not."""
    try:
        return bool(config.getini("faulthandler_exit_on_timeout"))
    except ValueError:
        return False
