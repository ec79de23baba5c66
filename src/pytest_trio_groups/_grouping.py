"""Turn marked items into ``Group``s: who runs together, and where in the run.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from ._options import TRIO_MARK
from ._spec import (
    ALONE_MARK_NAME,
    MARK_NAME,
    GroupSpec,
    MarkError,
    check_runnable,
    clock_of,
    fd_capture_of,
    parse_alone_mark,
    parse_mark,
    test_function,
)
from ._trio_mode import TrioPolicy

# Stash keys are typed by annotation: ``pytest.StashKey[GroupSpec]()`` would
# put GroupSpec in typing's cache, and through its module's loader the config
# with every item, where interpreter exit frees them last.
SPEC_KEY: pytest.StashKey[GroupSpec] = pytest.StashKey()
MARK_ERROR_KEY: pytest.StashKey[str] = pytest.StashKey()
#: The session's ``GroupIndex``: made when the first test runs, or earlier by
#: the pytest-xdist worker support, which regroups members as batches arrive.
INDEX_KEY: pytest.StashKey[GroupIndex] = pytest.StashKey()


@dataclass(eq=False)
class Group:
    """Tests that run together in one trio nursery."""

    #: The name from the marks, or ``None`` for an anonymous single-test group.
    name: str | None
    members: list[pytest.Function] = field(default_factory=list)
    #: Set once the group has run, so later members are not run again.
    done: bool = False
    #: How its members joined (``GroupSpec.origin``).
    origin: str = "mark"
    #: The clock fixture its run is started with, if any.
    clock: str | None = None

    @property
    def label(self) -> str:
        """How messages name the group: ``trio_group 'db'``."""
        if self.name is None:
            return f"trio_group of {self.members[0].name}"
        suffix = f" [{self.clock}]" if self.clock else ""
        return f"trio_group {self.name!r}{suffix}"

    @property
    def summarized(self) -> bool:
        """Whether the group gets a summary line: not for a trio test that runs on its own."""
        return self.name is not None or self.origin == "mark"


def read_marks(
    items: Sequence[pytest.Item], default_timeout: float | None, policy: TrioPolicy
) -> None:
    """Store each group member's ``GroupSpec`` (or what is wrong with it) on the item."""
    reader = _MarkReader(default_timeout, policy)
    for item in items:
        try:
            spec = reader.spec_of(item)
        except MarkError as exc:
            where = item.nodeid if exc.mark is None else f"invalid {exc.mark} mark on {item.nodeid}"
            item.stash[MARK_ERROR_KEY] = f"{where}: {exc}"
            continue
        if spec is not None:
            item.stash[SPEC_KEY] = spec


_NAMES = (MARK_NAME, ALONE_MARK_NAME)


class _MarkReader:
    """Reads the marks of one collection's items, each mark and each parent node once.

    Tests mostly get their mark from a module or class (``pytestmark``):
    thousands of items share a few ``Mark`` objects and parents, and
    members with the same spec share one ``GroupSpec``.
    """

    def __init__(self, default_timeout: float | None, policy: TrioPolicy) -> None:
        self._default_timeout = default_timeout
        self._policy = policy
        #: The closest ``trio_group``/``trio_alone`` mark of each parent node
        #: (on it or above it), and whether it or a node above has a ``trio`` mark.
        self._closest: dict[object, pytest.Mark | None] = {}
        self._trio_marked: dict[object, bool] = {}
        #: What each ``trio_group`` mark parses to, by identity (a ``Mark``
        #: holds a dict, so it has no hash): the spec, or the error's message.
        self._parsed: dict[int, tuple[pytest.Mark, GroupSpec | None, str | None]] = {}
        #: One ``GroupSpec`` per value.
        self._specs: dict[GroupSpec, GroupSpec] = {}

    def spec_of(self, item: pytest.Item) -> GroupSpec | None:
        """How ``item`` joins a group, or ``None`` when it is not run by this plugin.

        A ``trio_group`` mark decides for itself. A trio test without one joins
        the automatic group ``trio_group_by`` names, unless it is marked
        ``trio_alone``; where it joins none, it runs on its own -- in a
        ``trio.run`` of this plugin's, or pytest-trio's when that is active.
        """
        policy = self._policy
        mark = self._closest_mark(item)
        if mark is not None and self._leaves_out(item, mark):
            return None
        if mark is not None and mark.name == MARK_NAME:
            spec = self._parse(mark)
            check_runnable(item)
            policy.check_group_runner(item)
            clock = clock_of(item)
            # The mark's own spec, shared by every test it marks.
            return self._shared(dataclasses.replace(spec, clock=clock)) if clock else spec
        else:
            alone = mark is not None
            if alone:
                assert mark is not None and mark.name == ALONE_MARK_NAME
                parse_alone_mark(mark)
            elif not self._is_trio_test(item):
                return None
            if policy.pytest_trio is not None and (
                alone or policy.group_by == "none" or not policy.can_group(item)
            ):
                if alone:
                    policy.pytest_trio.take(item)
                return None
            check_runnable(item, "trio")
            policy.check_runner(item)
            if alone or policy.group_by == "none":
                spec = GroupSpec(None, self._default_timeout, origin="alone")
            else:
                name = policy.auto_group_name(item)
                # A test that captures the file descriptors cannot share them:
                # it leaves its automatic group and runs on its own.
                spec = GroupSpec(
                    name,
                    self._default_timeout,
                    origin=policy.group_by,
                    alone_for=fd_capture_of(item),
                )
        clock = clock_of(item)
        return self._shared(dataclasses.replace(spec, clock=clock) if clock else spec)

    def _leaves_out(self, item: pytest.Item, mark: pytest.Mark) -> bool:
        """Whether a class's or module's mark leaves ``item`` alone: a sync test that is
        not a trio test runs normally, as under pytest-trio's ``trio_mode``.

        A mark on the test itself still makes a sync test an error.
        """
        if any(own is mark for own in item.own_markers):
            return False
        if not isinstance(item, pytest.Function):
            return True
        func = test_function(item)
        if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
            return False
        return not self._is_trio_test(item)

    def _shared(self, spec: GroupSpec) -> GroupSpec:
        return self._specs.setdefault(spec, spec)

    def _closest_mark(self, item: pytest.Item) -> pytest.Mark | None:
        # As ``item.iter_markers()`` finds it: the item's own marks, then
        # each parent's, nearest first.
        for mark in item.own_markers:
            if getattr(mark, "name", None) in _NAMES:
                return mark
        return self._closest_above(item.parent)

    def _closest_above(self, node: pytest.Collector | None) -> pytest.Mark | None:
        if node is None:
            return None
        try:
            return self._closest[node]
        except KeyError:
            pass
        found = next(
            (mark for mark in node.own_markers if getattr(mark, "name", None) in _NAMES), None
        )
        if found is None:
            found = self._closest_above(node.parent)
        self._closest[node] = found
        return found

    def _is_trio_test(self, item: pytest.Item) -> bool:
        if any(getattr(mark, "name", None) == TRIO_MARK for mark in item.own_markers):
            return True
        return self._trio_above(item.parent)

    def _trio_above(self, node: pytest.Collector | None) -> bool:
        if node is None:
            return False
        marked = self._trio_marked.get(node)
        if marked is None:
            marked = any(
                getattr(mark, "name", None) == TRIO_MARK for mark in node.own_markers
            ) or self._trio_above(node.parent)
            self._trio_marked[node] = marked
        return marked

    def _parse(self, mark: pytest.Mark) -> GroupSpec:
        parsed = self._parsed.get(id(mark))
        if parsed is None:
            try:
                spec: GroupSpec | None = parse_mark(mark, self._default_timeout)
                error = None
            except MarkError as exc:
                spec, error = None, str(exc)
            # (The mark is kept with its answer, so that its id stays its own.)
            parsed = self._parsed[id(mark)] = (mark, spec, error)
        _, spec, error = parsed
        if spec is None:
            raise MarkError(error or "")
        return spec


def _group_key(item: pytest.Item, spec: GroupSpec) -> object:
    # One trio.run has one clock: members with different clocks cannot run
    # together, and a test that moves a mock clock by hand would move its
    # siblings' time too, so it runs alone.
    if spec.name is None or spec.clock == "mock_clock" or spec.alone_for is not None:
        return item
    return (spec.origin == "mark", spec.name, spec.clock)


def order_items(items: list[pytest.Item]) -> None:
    """Move every group member to the position of its group's first member, in place.

    Members keep their relative order; ungrouped tests keep theirs. A group
    then runs as one block, and the item after the block is the one pytest
    sets up next.
    """
    # (``in`` first: ``Stash.get`` raises and catches a KeyError for every
    # test outside a group.)
    blocks: dict[object, list[pytest.Item]] = {}
    for item in items:
        stash = item.stash
        key: object = _group_key(item, stash[SPEC_KEY]) if SPEC_KEY in stash else item
        block = blocks.get(key)
        if block is None:
            block = blocks[key] = []
        block.append(item)
    items[:] = [item for block in blocks.values() for item in block]


class GroupIndex:
    """Which group each selected item belongs to, built from the final item list."""

    def __init__(self, items: Sequence[pytest.Item], *, split: bool = False) -> None:
        """``split``: every member runs as a group of its own (on pytest-xdist workers,
        which are handed tests one by one and must run each exactly once)."""
        self._items = list(items)
        self._position = {item: index for index, item in enumerate(self._items)}
        self._groups: dict[pytest.Item, Group] = {}
        by_key: dict[object, Group] = {}
        for item in self._items:
            if SPEC_KEY not in item.stash:
                continue
            spec = item.stash[SPEC_KEY]
            assert isinstance(item, pytest.Function)
            natural = _group_key(item, spec)
            key = item if split else natural
            group = by_key.get(key)
            if group is None:
                # A test taken out of its group for its clock runs as a group of its own.
                name = None if natural is item else spec.name
                group = by_key[key] = Group(name=name, origin=spec.origin, clock=spec.clock)
            group.members.append(item)
            self._groups[item] = group

    def groups(self) -> list[Group]:
        """Every group, in the order of their first members."""
        return list(dict.fromkeys(self._groups.values()))

    def regroup(self, items: Sequence[pytest.Item]) -> None:
        """Run ``items`` -- members of one group, in the order given -- as one group.

        Each of them leaves the group it was in; the next of them to run runs
        them all. A pytest-xdist worker calls this for each batch of members
        the controller hands it.
        """
        members = [
            item for item in items if isinstance(item, pytest.Function) and item in self._groups
        ]
        if not members:
            return
        group = dataclasses.replace(self._groups[members[0]], members=members, done=False)
        for item in members:
            self._groups[item] = group

    def group_of(self, item: pytest.Item) -> Group | None:
        """The group ``item`` belongs to, or ``None`` for an ungrouped item."""
        return self._groups.get(item)

    def next_after(self, group: Group, nextitem: pytest.Item | None) -> pytest.Item | None:
        """The item pytest runs after the group, so that the collectors it shares
        with the group (its module, class, the session) stay set up.

        ``nextitem`` is the one pytest names for the group's first member: it
        is that item unless it is another member, and then the first item
        after the first member that is not in the group. Collection order
        alone is not enough: a pytest-xdist worker runs its tests in the
        order they are handed to it.
        """
        members = set(group.members)
        if nextitem not in members:
            return nextitem
        start = self._position[group.members[0]] + 1
        for item in self._items[start:]:
            if item not in members:
                return item
        return None


def describe_groups(index: GroupIndex, verbosity: int) -> list[str]:
    """Lines for the collection report: each group, and the trio tests that run alone.

    Trio tests that are simply not grouped are not listed; a test that was
    taken out of its group because of its clock is, with the reason.
    """
    lines: list[str] = []
    for group in index.groups():
        if group.name is None:
            spec = group.members[0].stash[SPEC_KEY]
            reason = spec.alone_for or (spec.clock if spec.clock == "mock_clock" else None)
            if reason is not None and spec.name is not None:
                lines.append(
                    f"{group.members[0].nodeid} runs alone: it uses {reason} "
                    f"(not with trio_group {spec.name!r})"
                )
            continue
        joined = "" if group.origin == "mark" else f" (trio_group_by = {group.origin})"
        noun = "test" if len(group.members) == 1 else "tests"
        lines.append(f"{group.label}{joined}: {len(group.members)} {noun}")
        if verbosity >= 2:
            lines.extend(f"    {member.nodeid}" for member in group.members)
    return lines
