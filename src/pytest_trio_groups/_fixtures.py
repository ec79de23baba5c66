"""Per-test fixture values for tests that are set up at the same time.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from . import _pytest_compat as compat
from ._context import BEFORE_THE_RUN
from ._pytest_compat import FixtureDef

if TYPE_CHECKING:
    from ._plugins.pytest_trio import PytestTrio
    from ._runner import MemberRun

_Defs = Sequence[FixtureDef[Any]]
#: The parameter indices a copy of a wider-scoped fixture is for: ``(name, index)`` pairs.
_ParamKey = tuple[tuple[str, int], ...]


class FixtureProtocolError(Exception):
    """An async fixture broke the rules of fixtures or of trio."""

    __module__ = "pytest_trio_groups"


def in_fixture_of(item: pytest.Function, filename: str, function: str) -> bool:
    """Whether code in ``filename``'s function ``function`` is one of ``item``'s fixtures."""
    for fixturedefs in compat.item_fixturedefs(item).values():
        for fixturedef in fixturedefs:
            code = getattr(fixturedef.func, "__code__", None)
            if code is not None and code.co_name == function and code.co_filename == filename:
                return True
    return False


@contextlib.contextmanager
def setting_up(
    fixturedef: FixtureDef[Any], request: Any, member: MemberRun | None
) -> Iterator[None]:
    """Around pytest's setup of a group member's fixture (``member``), or of one
    set up before its group's run (``member`` is ``None``).

    A member's async fixture is set up by ``AsyncFixtures`` (which leaves
    pytest's code here); a sync one sees no trio run, as under pytest-trio,
    unless it depends on an async or trio fixture: it may call
    ``trio.run()`` or make an asyncio loop.
    """
    if member is None:
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, compat.test_outcome_types()):
                # pytest caches only test outcomes; this one (a Ctrl-C,
                # SystemExit) is raised again at the test's own setup.
                cache_key = fixturedef.cache_key(request)
                fixturedef.cached_result = (None, cache_key, (exc, exc.__traceback__))
            raise
        return
    if is_async_fixture(fixturedef):
        member.async_fixtures.setup(fixturedef, request, member)
    if not sees_no_run(fixturedef, member.item):
        yield
        return
    # What it depends on is set up first, where the run can be seen
    # ("request" is there already).
    for argname in fixturedef.argnames:
        if argname != "request":
            request.getfixturevalue(argname)
    from ._trio_compat import outside_the_run

    with outside_the_run():
        yield


def sees_no_run(fixturedef: FixtureDef[Any], item: pytest.Function) -> bool:
    """Whether a member's fixture runs with no trio run visible in its thread.

    A sync fixture that depends, directly or not, on no async or trio
    fixture: pytest-trio runs one that does inside its trio run, and so
    does this plugin.
    """
    from ._trio_fixtures import runs_outside_the_run

    base = compat.item_fixturedefs(item)
    seen: set[str] = set()
    todo = [fixturedef]
    while todo:
        current = todo.pop()
        if not runs_outside_the_run(current):
            return False
        for name in current.argnames:
            if name in seen:
                continue
            seen.add(name)
            # (A fixture that overrides one of its own name depends on that one.)
            defs = [each for each in base.get(name, ()) if each is not current]
            if defs:
                todo.append(defs[-1])
    return True


def is_async_function(func: object) -> bool:
    """Whether ``func`` is a coroutine or async-generator function."""
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def is_async_fixture(fixturedef: FixtureDef[Any]) -> bool:
    return is_async_function(fixturedef.func)


def refuse_outside_group(fixturedef: FixtureDef[Any], request: Any) -> None:
    """Fail clearly when a test that is not a trio test requests an async or trio fixture.

    Only when no other plugin (pytest-trio, pytest-asyncio, ...) could
    handle the fixture instead.
    """
    hook = request.config.pluginmanager.hook.pytest_fixture_setup
    others = [
        impl
        for impl in hook.get_hookimpls()
        if not getattr(impl.plugin, "__name__", "").startswith(("_pytest.", __package__ + "."))
    ]
    if others:
        return
    item = compat.pyfuncitem(request)
    kind = "async" if is_async_fixture(fixturedef) else "trio"
    try:
        pytest.fail(
            f"{item.nodeid} requested {kind} fixture {fixturedef.argname!r}, but is not a trio "
            f"test: {kind} fixtures run only in trio tests (@pytest.mark.trio_group, "
            "@pytest.mark.trio, or async tests under trio_mode)",
            pytrace=False,
        )
    except pytest.fail.Exception as exc:
        # Cached as pytest caches a failed setup, so that the fixture is
        # finished (and can be set up again) when the test's scope ends.
        fixturedef.cached_result = (None, fixturedef.cache_key(request), (exc, exc.__traceback__))
        raise


def is_per_test(fixturedef: FixtureDef[Any], item: pytest.Item) -> bool:
    """Whether ``item`` gets an instance of ``fixturedef`` of its own, torn down with it.

    Function-scoped fixtures, and class-scoped ones used by a test outside
    any class: pytest gives those to the test itself.
    """
    return fixturedef.scope == "function" or (
        fixturedef.scope == "class" and item.getparent(pytest.Class) is None
    )


#: Stands for "a node set up before the group started" as a fixture's owner.
_SET_UP_BEFORE = object()


class SharedClones:
    """Copies of wider-scoped fixtures, one per scope node and parameter set, for one group run.

    pytest keeps one cached value per ``FixtureDef`` and relies on running
    tests one module (class, parameter) at a time. Members of one group
    from two modules, or using different parameters of a module- or
    session-scoped fixture, run at the same time, so each of those gets its
    own copy -- still one instance per scope and parameter, as pytest
    defines. The first module (class) to use a fixture gets pytest's own
    ``FixtureDef``, or the one set up before the group if it holds a value:
    that one's instance is the one ungrouped tests share.
    """

    def __init__(self, pytest_trio: PytestTrio | None = None) -> None:
        #: Beside pytest-trio: whose fixtures members get this plugin's versions of.
        self.pytest_trio = pytest_trio
        self._set_up_before: set[Any] = set()
        self._owners: dict[FixtureDef[Any], object] = {}
        self._clones: dict[tuple[FixtureDef[Any], object, _ParamKey], FixtureDef[Any]] = {}

    def begin_group(self, set_up_before: Collection[Any]) -> None:
        """A group starts, with the nodes in ``set_up_before`` already set up."""
        self._set_up_before = set(set_up_before)
        self._owners.clear()

    def get(self, fixturedef: FixtureDef[Any], node: object, key: _ParamKey) -> FixtureDef[Any]:
        """The ``FixtureDef`` for the members under ``node`` (its scope's node) with ``key``.

        ``node`` is ``None`` for a scope that has one node for the whole group.
        """
        if not key:
            if node is None:
                return fixturedef
            owner = self._owners.setdefault(
                fixturedef, node if fixturedef.cached_result is None else _SET_UP_BEFORE
            )
            if owner is node or (owner is _SET_UP_BEFORE and node in self._set_up_before):
                return fixturedef
        clone = self._clones.get((fixturedef, node, key))
        if clone is None:
            clone = self._clones[(fixturedef, node, key)] = compat.clone_fixturedef(fixturedef)
        return clone

    def unused_by(self, items: Sequence[pytest.Function]) -> list[FixtureDef[Any]]:
        """The copies, set up, for parameters none of ``items`` uses of fixtures they use.

        pytest holds one parameter of a wider-scoped fixture per scope
        instance at a time and tears it down when a test needs another.
        Members of one group need theirs at the same time, and copies live on
        for the groups after it (in the session's trio run): a group that
        needs another parameter in the same scope instance, and not this one,
        ends it, newest first.
        """
        used: dict[tuple[FixtureDef[Any], object], set[_ParamKey]] = {}
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is None:
                continue
            indices = dict(callspec.indices)
            base = compat.item_fixturedefs(item)
            for fixturedefs in base.values():
                for fixturedef in fixturedefs:
                    if is_per_test(fixturedef, item):
                        continue
                    key = param_key(base, indices, fixturedef)
                    if key:
                        node = scope_node(fixturedef, item)
                        used.setdefault((fixturedef, node), set()).add(key)
        return [
            clone
            for (fixturedef, node, key), clone in reversed(self._clones.items())
            if key
            and (fixturedef, node) in used
            and key not in used[(fixturedef, node)]
            and clone.cached_result is not None
        ]


def scope_node(fixturedef: FixtureDef[Any], item: pytest.Item) -> pytest.Collector | None:
    """The node whose instance of a wider-scoped fixture ``item`` gets, if the group has several.

    ``None`` for session and package scope, which this plugin does not tell apart.
    """
    if fixturedef.scope == "class":
        return item.getparent(pytest.Class)
    if fixturedef.scope == "module":
        return item.getparent(pytest.Module)
    return None


class MemberFixtureDefs(dict[str, _Defs]):
    """One test's fixture lookup table, with its own function-scoped ``FixtureDef``s.

    Fixtures requested dynamically (``request.getfixturevalue``) are looked up
    and isolated the same way on first use.
    """

    def __init__(self, item: pytest.Function, shared: SharedClones) -> None:
        super().__init__()
        #: Set up before the group's run, for the test's first attempt.
        self.before_the_run = False
        self._item = item
        self._shared = shared
        self._base = compat.item_fixturedefs(item)
        callspec = getattr(item, "callspec", None)
        self._indices: dict[str, int] = dict(callspec.indices) if callspec is not None else {}
        for name, defs in self._base.items():
            self[name] = self._isolate(defs)

    def get(self, name: str, default: Any = None) -> Any:
        if name not in self:
            defs = compat.fixture_manager(self._item.session).getfixturedefs(name, self._item)
            if defs is None:
                return default
            self[name] = self._isolate(defs)
        return self[name]

    def _isolate(self, defs: _Defs) -> _Defs:
        return tuple(self._isolate_one(fixturedef) for fixturedef in defs)

    def _isolate_one(self, fixturedef: FixtureDef[Any]) -> FixtureDef[Any]:
        if is_per_test(fixturedef, self._item):
            clone = compat.clone_fixturedef(fixturedef)
            replacement = effective_function(fixturedef, self._shared.pytest_trio)
            if replacement is not fixturedef.func:
                compat.set_fixture_function(clone, replacement)
            return clone
        key = param_key(self._base, self._indices, fixturedef) if self._indices else ()
        return self._shared.get(fixturedef, scope_node(fixturedef, self._item), key)


def param_key(
    base: Mapping[str, Sequence[FixtureDef[Any]]],
    indices: Mapping[str, int],
    fixturedef: FixtureDef[Any],
) -> _ParamKey:
    """The parameters, among ``fixturedef`` and what it depends on, that a test uses.

    ``base`` is the test's fixture plan, ``indices`` its parameter indices.
    """
    seen: set[str] = set()
    todo = [fixturedef.argname, *fixturedef.argnames]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for dependency in base.get(name, ()):
            todo.extend(dependency.argnames)
    return tuple(sorted((name, indices[name]) for name in seen if name in indices))


def effective_function(
    fixturedef: FixtureDef[Any], pytest_trio: PytestTrio | None
) -> Callable[..., Any]:
    """The function a group member's fixture runs: this plugin's in place of pytest-trio's."""
    if pytest_trio is not None:
        replacement = pytest_trio.replacement(fixturedef)
        if replacement is not None:
            return replacement
    return fixturedef.func


class AwaitFixture(BaseException):
    """Raised out of pytest's synchronous fixture code when an async step must run first.

    A ``BaseException`` so that no ``except Exception`` on the way catches it.
    """

    def __init__(self, run: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self.run = run


def set_up_before_the_run(item: pytest.Function, shared: SharedClones, state: Any) -> None:
    """Set up ``item``'s wider-scoped sync fixtures before its group's trio run starts.

    As pytest-trio does with every sync fixture: in pytest's thread, with no
    trio run, so that a slow one (a database cluster starting) holds up no
    running test. Only those that depend on nothing but such fixtures, and
    have no parameters (whose copies the run switches between). An error is
    cached by pytest, and reported at the test's setup as it would be
    without this; ``state`` is the group's ``GroupSetupState``.
    """
    names = _sync_wider_fixtures(item)
    if not names:
        return
    isolate(item, shared, before_the_run=True)
    try:
        state.setup_chain(item)
    except compat.test_outcome_types():
        return  # kept with the collector: its members' setup raises it again
    request = compat.top_request(item)
    token = BEFORE_THE_RUN.set(True)
    try:
        for name in names:
            request.getfixturevalue(name)
    except BaseException as exc:
        # A fixture's error is cached, whatever it is: the test's setup
        # raises it again, in the run. Anything else (a Ctrl-C between
        # fixtures) goes on.
        if not _cached(item, exc):
            raise
    finally:
        BEFORE_THE_RUN.reset(token)
        # Pushed only for pytest's checks that the test is set up: its own
        # setup, in the run, pushes it again.
        state.pop_unstarted(item)


def _session_value_cached(fixturedef: FixtureDef[Any]) -> bool:
    """Whether a session-scoped fixture without parameters is set up, or failed, already.

    Every member gets that ``FixtureDef`` itself (``SharedClones.get``), so
    nothing is left to set up before the run.
    """
    return fixturedef.scope == "session" and fixturedef.cached_result is not None


def _cached(item: pytest.Function, error: BaseException) -> bool:
    """Whether one of ``item``'s fixtures holds ``error`` as its cached result.

    Its fixtures as ``isolate`` gave them to it: a wider-scoped one is the
    copy for its own scope node (a module's, a class's), not the
    ``FixtureDef`` of the fixture plan.
    """
    return any(
        fixturedef.cached_result is not None
        and fixturedef.cached_result[2] is not None
        and fixturedef.cached_result[2][0] is error
        for fixturedefs in compat.request_fixturedefs(item).values()
        for fixturedef in fixturedefs
    )


def _sync_wider_fixtures(item: pytest.Function) -> list[str]:
    """The fixtures ``set_up_before_the_run`` sets up for ``item``, in pytest's order.

    Wider-scoped ones that see no run (``sees_no_run``), with no parameters
    among them and what they depend on, and that override no fixture of
    their own name; not a session-scoped one set up already (each member of
    a group that uses ``tmp_path`` needs ``tmp_path_factory``, set up once).
    """
    base = compat.item_fixturedefs(item)
    callspec = getattr(item, "callspec", None)
    indices: dict[str, int] = dict(callspec.indices) if callspec is not None else {}
    names = []
    for name in item.fixturenames:
        defs = base.get(name)
        if not defs:
            continue  # ("request", or one only requested later)
        fixturedef = defs[-1]
        if (
            not _session_value_cached(fixturedef)
            and not is_per_test(fixturedef, item)
            and name not in fixturedef.argnames
            and not (indices and param_key(base, indices, fixturedef))
            and sees_no_run(fixturedef, item)
        ):
            names.append(name)
    return names


def isolate(item: pytest.Function, shared: SharedClones, *, before_the_run: bool = False) -> None:
    """Give ``item`` its own function-scoped fixture instances.

    The table given ``before_the_run`` (by ``set_up_before_the_run``) is
    kept for the test's first attempt: its function-scoped instances are
    still unused.
    """
    table = compat.request_fixturedefs(item)
    if not before_the_run and isinstance(table, MemberFixtureDefs) and table.before_the_run:
        table.before_the_run = False
        return
    table = MemberFixtureDefs(item, shared)
    table.before_the_run = before_the_run
    compat.set_request_fixturedefs(item, table)


async def fill_fixtures(item: pytest.Function) -> None:
    """Set up ``item``'s fixtures in pytest's order, awaiting async steps on the way.

    Each fixture is computed by pytest's own machinery. When that machinery
    reaches a step that needs awaiting, it raises ``AwaitFixture``; the step
    is awaited here, in the test's own task, and the lookup is repeated --
    everything computed so far is cached, so it continues where it stopped.
    """
    __tracebackhide__ = True
    request = compat.top_request(item)
    funcargs = item.funcargs
    for argname in item.fixturenames:
        if argname in funcargs:
            continue
        while True:
            try:
                funcargs[argname] = request.getfixturevalue(argname)
            except AwaitFixture as pending:
                step = pending
            else:
                break
            # Awaited outside the handler: an error in the fixture would
            # otherwise carry the AwaitFixture as its context.
            await step.run()
