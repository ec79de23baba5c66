"""Shared-state hazards: a test changing process-wide state while others of its group run.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import types
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import pytest

from . import SharedStateWarning
from . import _pytest_compat as compat
from ._context import CURRENT_MEMBER
from ._fixtures import in_fixture_of
from ._notices import attribute, caller_frame, listed, note, owner_name, place
from ._observers import OBSERVERS_KEY, RunObserver
from ._trace import group_trace

if TYPE_CHECKING:
    from ._runner import GroupRun, MemberRun

_ENVIRON = type(os.environ)
#: Set per phase by pytest's runner, and per test by this plugin: not a test's doing.
_OWN_VARIABLES = frozenset({"PYTEST_CURRENT_TEST"})
#: Siblings named in one warning; the rest are counted.
_NAMED = 3


class HazardWatch(RunObserver):
    """Watches, while one group runs, the ways tests change what their siblings see.

    It wraps ``os.environ``'s item assignment and deletion, ``os.chdir`` and
    ``pytest.MonkeyPatch``'s patching methods for the length of the group's
    run, and nothing at other times: a change costs one extra Python call,
    a task step nothing.

    Two kinds of change are told apart. The environment and monkeypatched
    attributes are keyed: a warning needs two overlapping tests changing the
    same variable or attribute. The working directory, ``sys.path`` and
    ``sys.modules`` are seen by every running test: changing them while
    another test runs is enough.
    """

    def __init__(self, mode: str, run: GroupRun) -> None:
        self._mode = mode
        self._running: set[MemberRun] = set()
        self._label = run.group.label
        self._summary = run.summary
        self._trace = group_trace(run)
        self._root = str(run.session.config.rootpath)
        #: The members that changed each keyed thing during the run, and where.
        self._changed_by: dict[Hashable, dict[MemberRun, str]] = {}
        #: Keyed things that overlapping tests changed only from one place
        #: (an autouse fixture's line): one note each at the end, by place.
        self._same_place: dict[
            tuple[str, str], tuple[traceback.FrameSummary | None, set[MemberRun]]
        ] = {}
        #: (thing, the two members) already warned about.
        self._reported: set[tuple[Hashable, frozenset[MemberRun]]] = set()
        self._patches: list[tuple[object, str, object]] = []

    def member_started(self, member: MemberRun) -> None:
        self._running.add(member)

    def member_finished(self, member: MemberRun) -> None:
        self._running.discard(member)

    def group_started(self, run: GroupRun) -> None:
        self._patch(_ENVIRON, "__setitem__", self._environ_setitem)
        self._patch(_ENVIRON, "__delitem__", self._environ_delitem)
        self._patch(os, "chdir", self._chdir)
        self._patch(pytest.MonkeyPatch, "setattr", self._monkeypatch_setattr)
        self._patch(pytest.MonkeyPatch, "delattr", self._monkeypatch_setattr)
        self._patch(pytest.MonkeyPatch, "setitem", self._monkeypatch_item)
        self._patch(pytest.MonkeyPatch, "delitem", self._monkeypatch_item)
        self._patch(pytest.MonkeyPatch, "syspath_prepend", self._monkeypatch_syspath)

    def group_finished(self, run: GroupRun) -> None:
        while self._patches:
            owner, name, original = self._patches.pop()
            setattr(owner, name, original)
        self._changed_by.clear()
        for (description, where), (frame, members) in self._same_place.items():
            note(
                f"{len(members)} tests of {self._label} changed {description} at {where} "
                "while others did the same from the same line; one note rather than a "
                "SharedStateWarning per overlap. A test that reads it may see another "
                "test's value, or the original once another test's teardown undid its change.",
                frame,
            )
        self._same_place.clear()

    def _patch(self, owner: object, name: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        self._patches.append((owner, name, original))
        setattr(owner, name, make(original))

    # The wrappers: each notes the change, then makes it.

    def _environ_setitem(self, original: Any) -> Any:
        def __setitem__(environ: Any, key: str, value: str) -> None:
            __tracebackhide__ = True
            if environ is os.environ and key not in _OWN_VARIABLES:
                self.changed(("environ", key), f"os.environ[{key!r}]", keyed=True)
            original(environ, key, value)

        return __setitem__

    def _environ_delitem(self, original: Any) -> Any:
        def __delitem__(environ: Any, key: str) -> None:
            __tracebackhide__ = True
            if environ is os.environ and key not in _OWN_VARIABLES and key in environ:
                self.changed(("environ", key), f"os.environ[{key!r}]", keyed=True)
            original(environ, key)

        return __delitem__

    def _chdir(self, original: Any) -> Any:
        def chdir(path: Any) -> None:
            __tracebackhide__ = True
            try:
                target = repr(os.fspath(path))
            except TypeError:
                target = repr(path)
            self.changed(("cwd",), f"the working directory (os.chdir to {target})", keyed=False)
            original(path)

        return chdir

    def _monkeypatch_setattr(self, original: Any) -> Any:
        def patch(monkeypatch: pytest.MonkeyPatch, *args: Any, **kwargs: Any) -> None:
            __tracebackhide__ = True
            attributes, _ = compat.monkeypatch_undo_records(monkeypatch)
            before = len(attributes)
            original(monkeypatch, *args, **kwargs)
            # String targets ("pkg.module.name") are resolved in the record.
            if len(attributes) > before:
                target, name, _ = attributes[-1]
                self._attribute_changed(target, name)

        return patch

    def _attribute_changed(self, target: object, name: str) -> None:
        __tracebackhide__ = True
        if target is sys and name in ("path", "modules"):
            self.changed((f"sys.{name}",), f"sys.{name}", keyed=False)
            return
        self.changed(("attr", id(target), name), f"{owner_name(target)}.{name}", keyed=True)

    def _monkeypatch_item(self, original: Any) -> Any:
        def patch(
            monkeypatch: pytest.MonkeyPatch, dic: Any, name: Any, *args: Any, **kwargs: Any
        ) -> None:
            __tracebackhide__ = True
            if dic is sys.modules:
                self.changed(("sys.modules",), f"sys.modules[{name!r}]", keyed=False)
            original(monkeypatch, dic, name, *args, **kwargs)

        return patch

    def _monkeypatch_syspath(self, original: Any) -> Any:
        def syspath_prepend(monkeypatch: pytest.MonkeyPatch, path: Any) -> None:
            __tracebackhide__ = True
            self.changed(("sys.path",), "sys.path (monkeypatch.syspath_prepend)", keyed=False)
            original(monkeypatch, path)

        return syspath_prepend

    def changed(self, thing: Hashable, description: str, *, keyed: bool) -> None:
        """The current test is changing ``thing``: warn if a running sibling can be hurt."""
        __tracebackhide__ = True
        member = CURRENT_MEMBER.get(None)
        if member is None or _undoing_a_monkeypatch():
            # An undo puts back a change that was seen when it was made.
            return
        running = self._running
        frame = caller_frame()
        where = place(frame, self._root)
        if keyed:
            changed_by = self._changed_by.setdefault(thing, {})
            others = [m for m in changed_by if m is not member and m in running]
            from_fixture = frame is not None and in_fixture_of(
                member.item, frame.filename, frame.name
            )
            # A place in a test's own code is never shared (see below).
            changed_by.setdefault(member, where if from_fixture else f"{where} ({id(member)})")
            if others and all(changed_by[other] == changed_by[member] for other in others):
                # The same line of a fixture in every test (an autouse
                # fixture's, typically): noted once, not per overlap.
                _, members = self._same_place.setdefault((description, where), (frame, set()))
                members.update((member, *others))
                return
        else:
            others = [m for m in running if m is not member]
        pairs = {(thing, frozenset((member, other))) for other in others}
        if not pairs - self._reported:
            return
        self._reported |= pairs
        self._report(member, others, description, frame, where, keyed=keyed)

    def _report(
        self,
        member: MemberRun,
        others: list[MemberRun],
        description: str,
        frame: traceback.FrameSummary | None,
        where: str,
        *,
        keyed: bool,
    ) -> None:
        __tracebackhide__ = True
        siblings = listed([other.item.nodeid for other in others], _NAMED)
        verb = "was" if len(others) == 1 else "were"
        if keyed:
            why = f"while {siblings}, which changed it too, {verb} running"
        else:
            why = f"while {siblings} {verb} running and could see the change"
        message = (
            f"{member.item.nodeid} changed {description} at {where} {why}: tests of "
            f"{self._label} run at the same time in one process. Give each test its own "
            "copy, guard the change with a trio.Lock, or mark one of them "
            "@pytest.mark.trio_alone to run it on its own."
        )
        self._summary.hazards += 1
        self._trace.mark(
            member,
            "shared state changed",
            time.perf_counter(),
            {"what": description, "at": where, "running": [o.item.nodeid for o in others]},
        )
        warning = SharedStateWarning(message)
        if self._mode == "error":
            raise warning
        attribute(member, warning, frame)


def _undoing_a_monkeypatch() -> bool:
    """Whether ``pytest.MonkeyPatch.undo`` is on the stack (pytest 8.4, 9.2)."""
    frame: types.FrameType | None = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            break
        code = frame.f_code
        if code.co_name == "undo" and code.co_filename.endswith(_MONKEYPATCH_MODULE):
            return True
        frame = frame.f_back
    return False


_MONKEYPATCH_MODULE = os.path.join("_pytest", "monkeypatch.py")


def activate(config: pytest.Config, mode: str) -> None:
    """Watch every group run for shared-state hazards, unless ``mode`` is ``"off"``."""
    if mode != "off":
        config.stash.setdefault(OBSERVERS_KEY, []).append(lambda run: HazardWatch(mode, run))
