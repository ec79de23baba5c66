"""Turn marked items into ``Group``s: who runs together, and where in the run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from ._spec import GroupSpec, MarkError, spec_for

SPEC_KEY = pytest.StashKey[GroupSpec]()
MARK_ERROR_KEY = pytest.StashKey[str]()
#: The session's ``GroupIndex``: made when the first test runs, or earlier by
#: the pytest-xdist worker support, which regroups members as batches arrive.
INDEX_KEY = pytest.StashKey["GroupIndex"]()


@dataclass(eq=False)
class Group:
    """Tests that run together in one trio nursery."""

    #: The name from the marks, or ``None`` for an anonymous single-test group.
    name: str | None
    members: list[pytest.Function] = field(default_factory=list)
    #: Set once the group has run, so later members are not run again.
    done: bool = False

    @property
    def label(self) -> str:
        """How messages name the group: ``trio_group 'db'``."""
        if self.name is None:
            return f"trio_group of {self.members[0].name}"
        return f"trio_group {self.name!r}"


def read_marks(items: Sequence[pytest.Item], default_timeout: float | None) -> None:
    """Store each marked item's ``GroupSpec`` (or the error in its mark) on the item."""
    for item in items:
        try:
            spec = spec_for(item, default_timeout)
        except MarkError as exc:
            item.stash[MARK_ERROR_KEY] = f"invalid trio_group mark on {item.nodeid}: {exc}"
            continue
        if spec is not None:
            item.stash[SPEC_KEY] = spec


def _group_key(item: pytest.Item, spec: GroupSpec) -> object:
    return spec.name if spec.name is not None else item


def order_items(items: list[pytest.Item]) -> None:
    """Move every group member to the position of its group's first member, in place.

    Members keep their relative order; ungrouped tests keep theirs. A group
    then runs as one block, and the item after the block is the one pytest
    sets up next.
    """
    blocks: dict[object, list[pytest.Item]] = {}
    order: list[object] = []
    for item in items:
        spec = item.stash.get(SPEC_KEY, None)
        key: object = _group_key(item, spec) if spec is not None else item
        if key not in blocks:
            blocks[key] = []
            order.append(key)
        blocks[key].append(item)
    items[:] = [item for key in order for item in blocks[key]]


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
            spec = item.stash.get(SPEC_KEY, None)
            if spec is None:
                continue
            assert isinstance(item, pytest.Function)
            key = item if split else _group_key(item, spec)
            group = by_key.get(key)
            if group is None:
                group = by_key[key] = Group(name=spec.name)
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
        group = Group(name=self._groups[members[0]].name, members=members)
        for item in members:
            self._groups[item] = group

    def group_of(self, item: pytest.Item) -> Group | None:
        """The group ``item`` belongs to, or ``None`` for an ungrouped item."""
        return self._groups.get(item)

    def next_after(self, group: Group) -> pytest.Item | None:
        """The first item after the group's first member that is not in the group.

        That is the item pytest runs next, so the collectors it shares with
        the group (its module, class, the session) stay set up.
        """
        members = set(group.members)
        start = self._position[group.members[0]] + 1
        for item in self._items[start:]:
            if item not in members:
                return item
        return None
