"""Nothing members patch with monkeypatch or unittest.mock outlives their group.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

import pytest

from . import _pytest_compat as compat
from ._context import CURRENT_MEMBER
from ._fixtures import in_fixture_of
from ._notices import caller_frame, owner_name

_ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "<absent>"})()


def _same(before: object, after: object) -> bool:
    """Whether two reads of a target show the same value.

    Bound methods, environment strings and ``sys.path`` snapshots are made
    anew on each read, so they compare by equality; everything else by
    identity (what an undo puts back is the very object it saved).
    """
    if before is after:
        return True
    if type(before) is type(after) and isinstance(before, (types.MethodType, str, bytes, tuple)):
        return bool(before == after)
    return False


class _Target:
    """One thing members patched: how to read it, and how to put back its value from before."""

    def __init__(self, name: str, read: Callable[[], object], restore: Callable[[], None]) -> None:
        self.name = name
        self.read = read
        self.restore = restore
        self.members: list[str] = []
        #: Where its patches were made: file, line and whether in a fixture's code.
        self.places: set[tuple[str, int, bool]] = set()
        #: Where it was first patched, and by which test.
        self.first: tuple[str, int] | None = None
        #: Patchers (MonkeyPatch or mock patch objects) whose patch of it is
        #: not undone, in the order they patched it.
        self.held_by: list[int] = []
        #: Whether a patcher undid its patch while a later one still held it:
        #: the undos did not nest, and what is left may not be the original.
        self.disordered = False


def _attribute(obj: object, name: str, saved: object) -> _Target:
    def read() -> object:
        try:
            return getattr(obj, name, _ABSENT)
        except Exception:
            return _ABSENT

    def restore() -> None:
        if saved is _ABSENT:
            try:
                delattr(obj, name)
            except AttributeError:
                pass
        else:
            setattr(obj, name, saved)

    return _Target(f"{owner_name(obj)}.{name}", read, restore)


def _item(mapping: Any, key: object, saved: object) -> _Target:
    def restore() -> None:
        if saved is _ABSENT:
            mapping.pop(key, None)
        else:
            mapping[key] = saved

    where = "os.environ" if mapping is os.environ else owner_name(mapping)
    return _Target(f"{where}[{key!r}]", lambda: mapping.get(key, _ABSENT), restore)


def _tracked(mapping: object, key: object) -> bool:
    # Written on every phase, by pytest or by this plugin: never a leftover.
    return not (mapping is os.environ and key == "PYTEST_CURRENT_TEST")


def _cwd(saved: str) -> _Target:
    return _Target("the current directory", os.getcwd, lambda: os.chdir(saved))


def _sys_path(saved: list[str]) -> _Target:
    def restore() -> None:
        sys.path[:] = saved

    # A snapshot: compared by value (see ``_same``), since each read is a new one.
    return _Target("sys.path", lambda: tuple(sys.path), restore)


class PatchGuard:
    """Records, while a group runs, the first value of every target its members patch.

    The entry points of ``pytest.MonkeyPatch`` and ``unittest.mock``'s
    patchers are wrapped for the group's run. Each patcher saves the value
    it found and puts it back on undo; when overlapping tests' undos do not
    nest (A patches, B patches over A, A undoes, B undoes) B puts A's patch
    back for good. After the group, every target whose patchers were all
    undone is set back to the value it had before the first patch; if that
    changed anything, a warning names the target and the tests.
    """

    def __init__(self, label: str) -> None:
        self._label = label
        self._targets: dict[Hashable, _Target] = {}
        self._held: dict[int, tuple[object, list[_Target]]] = {}
        self._wrapped: list[tuple[type, str, Any]] = []

    # -- recording ------------------------------------------------------------

    def _record(self, patcher: object, key: Hashable, make: Callable[[], _Target]) -> None:
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = make()
        member = CURRENT_MEMBER.get(None)
        if member is not None and member.item.nodeid not in target.members:
            target.members.append(member.item.nodeid)
        frame = caller_frame()
        if frame is not None:
            in_fixture = member is not None and in_fixture_of(
                member.item, frame.filename, frame.name
            )
            target.places.add((frame.filename, frame.lineno or 0, in_fixture))
            if target.first is None:
                target.first = (frame.filename, frame.lineno or 0)
        if id(patcher) not in target.held_by:
            target.held_by.append(id(patcher))
            self._held.setdefault(id(patcher), (patcher, []))[1].append(target)

    def _release(self, patcher: object) -> None:
        _, targets = self._held.pop(id(patcher), (None, []))
        for target in targets:
            if target.held_by[-1] != id(patcher):
                target.disordered = True
            target.held_by.remove(id(patcher))

    def _recorded_by_monkeypatch(self, mp: Any, attributes: int, items: int) -> None:
        set_attributes, set_items = compat.monkeypatch_undo_records(mp)
        notset = compat.monkeypatch_notset()
        for obj, name, old in set_attributes[attributes:]:
            saved = _ABSENT if old is notset else old
            self._record(mp, ("attr", id(obj), name), partial(_attribute, obj, name, saved))
        for mapping, key, old in set_items[items:]:
            if not _tracked(mapping, key):
                continue
            saved = _ABSENT if old is notset else old
            self._record(mp, ("item", id(mapping), key), partial(_item, mapping, key, saved))

    # -- wrapping the patchers' entry points -----------------------------------

    def _wrap(self, cls: type, name: str, make: Callable[[Any], Any]) -> None:
        original = cls.__dict__[name]
        self._wrapped.append((cls, name, original))
        setattr(cls, name, make(original))

    def install(self) -> None:
        """Wrap the patchers' entry points for the group's run."""
        guard = self

        def counting(original: Any) -> Any:
            def wrapper(mp: Any, *args: Any, **kwargs: Any) -> Any:
                set_attributes, set_items = compat.monkeypatch_undo_records(mp)
                attributes, items = len(set_attributes), len(set_items)
                try:
                    return original(mp, *args, **kwargs)
                finally:
                    guard._recorded_by_monkeypatch(mp, attributes, items)

            return wrapper

        def chdir(original: Any) -> Any:
            def wrapper(mp: Any, *args: Any, **kwargs: Any) -> Any:
                saved = os.getcwd()
                result = original(mp, *args, **kwargs)
                guard._record(mp, ("cwd",), partial(_cwd, saved))
                return result

            return wrapper

        def syspath_prepend(original: Any) -> Any:
            def wrapper(mp: Any, *args: Any, **kwargs: Any) -> Any:
                saved = list(sys.path)
                result = original(mp, *args, **kwargs)
                guard._record(mp, ("sys.path",), partial(_sys_path, saved))
                return result

            return wrapper

        def undo(original: Any) -> Any:
            def wrapper(patcher: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    return original(patcher, *args, **kwargs)
                finally:
                    guard._release(patcher)

            return wrapper

        monkeypatch = pytest.MonkeyPatch
        for name in ("setattr", "delattr", "setitem", "delitem"):
            self._wrap(monkeypatch, name, counting)
        self._wrap(monkeypatch, "chdir", chdir)
        self._wrap(monkeypatch, "syspath_prepend", syspath_prepend)
        self._wrap(monkeypatch, "undo", undo)

        # Only when something already uses it: nothing to guard otherwise.
        mock: Any = sys.modules.get("unittest.mock")
        if mock is not None:
            # Every patch, patch.object, patch.multiple and pytest-mock's
            # mocker.patch goes through ``_patch.__enter__``/``__exit__``
            # (``start``/``stop`` call them); ``getter`` and ``attribute``
            # name the target (CPython 3.10 - 3.13).
            patch_class = mock._patch

            def enter(original: Any) -> Any:
                def wrapper(patcher: Any) -> Any:
                    # What mock's own undo puts back: the target's own entry, if any.
                    target, name = patcher.getter(), patcher.attribute
                    own = getattr(target, "__dict__", None)
                    saved = (
                        getattr(target, name, _ABSENT) if own is None else own.get(name, _ABSENT)
                    )
                    result = original(patcher)
                    key = ("attr", id(target), name)
                    guard._record(patcher, key, partial(_attribute, target, name, saved))
                    return result

                return wrapper

            self._wrap(patch_class, "__enter__", enter)
            self._wrap(patch_class, "__exit__", undo)

            # patch.dict: ``_patch_dict`` resolves ``in_dict``, saves a copy
            # of it in ``_original`` and sets ``values`` (all keys first with
            # ``clear``); ``_unpatch_dict`` puts the copy back (CPython 3.10 -
            # 3.13). Only the keys it sets are its targets: the rest of the
            # dict (``os.environ``, say) may change for other reasons.
            def patch_dict(original: Any) -> Any:
                def wrapper(patcher: Any) -> Any:
                    result = original(patcher)
                    mapping, saved = patcher.in_dict, patcher._original
                    keys = dict.fromkeys([*(saved if patcher.clear else ()), *patcher.values])
                    for key in filter(partial(_tracked, mapping), keys):
                        make = partial(_item, mapping, key, saved.get(key, _ABSENT))
                        guard._record(patcher, ("item", id(mapping), key), make)
                    return result

                return wrapper

            self._wrap(mock._patch_dict, "_patch_dict", patch_dict)
            self._wrap(mock._patch_dict, "_unpatch_dict", undo)

    def uninstall(self) -> None:
        """Give the patchers back their own entry points."""
        for cls, name, original in reversed(self._wrapped):
            setattr(cls, name, original)
        self._wrapped.clear()

    # -- after the group -------------------------------------------------------

    def restore(self, report_to: pytest.Item) -> None:
        """Put back what the group's undos did not, and warn about each such target.

        Only targets whose undos did not nest can be left changed: they are
        put back, in the reverse order of their first patch. Targets still
        held by a patcher that was never undone -- a wider-scoped fixture
        that outlives the group -- are left alone, and so are targets whose
        undos nested: each put back what it found, so the last one put back
        the original (a context-bound object may refuse a second touch
        outside its context).
        """
        targets = [t for t in self._targets.values() if t.disordered and not t.held_by]
        self._targets.clear()
        self._held.clear()
        before = [target.read() for target in targets]
        failed: dict[int, Exception] = {}
        for target in reversed(targets):
            try:
                target.restore()
            except Exception as exc:
                failed[id(target)] = exc
        for target, value in zip(targets, before, strict=True):
            error = failed.get(id(target))
            if error is not None:
                self._warn(target, report_to, error)
                continue
            # Patches all made by one line of a fixture (an autouse one's,
            # in every test) that undid each other out of order: put back
            # quietly (the shared-state watch has noted them once).
            by_one_fixture_line = len(target.places) == 1 and next(iter(target.places))[2]
            if not _same(value, target.read()) and not by_one_fixture_line:
                self._warn(target, report_to)

    def _warn(
        self, target: _Target, report_to: pytest.Item, error: Exception | None = None
    ) -> None:
        by = ", ".join(target.members) or "code that belongs to no test"
        if error is None:
            state, outcome = "was still patched", "restored to its value from before the group"
        else:
            state = "may still be patched"
            outcome = f"putting back its value from before the group failed: {error!r}"
        message = pytest.PytestWarning(
            f"{self._label}: {target.name} {state} after the group ended "
            f"(patched by {by}, whose undos did not nest); {outcome}"
        )
        # Shown at the first patch, under the test that made it; else at the
        # group's first member.
        nodeid = target.members[0] if target.members else report_to.nodeid
        if target.first is not None:
            filename, lineno = target.first
        else:
            path, line, _ = report_to.reportinfo()
            filename, lineno = str(path), (line or 0) + 1
        with warnings.catch_warnings(record=True) as caught:
            try:
                warnings.warn_explicit(message, type(message), filename, lineno)
            except Warning:
                # An "error" filter, but every test of the group is reported
                # already: shown as the warning it is.
                caught.append(warnings.WarningMessage(message, type(message), filename, lineno))
        for warning_message in caught:
            report_to.ihook.pytest_warning_recorded.call_historic(
                kwargs={
                    "warning_message": warning_message,
                    "nodeid": nodeid,
                    "when": "runtest",
                    "location": None,
                }
            )
