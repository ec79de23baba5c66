"""pytest-randomly: each member draws what it draws alone, and trio's scheduler is seeded.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from .. import _trio_compat
from .._task_state import TaskState

if TYPE_CHECKING:
    from .._runner import MemberRun

_Source = tuple[Callable[[], Any], Callable[[Any], None]]


def _generators() -> list[_Source]:
    """The generators pytest-randomly (5.x) reseeds for each test phase, as state get/set pairs.

    ``random`` itself, and the private generators of faker, model_bakery,
    polyfactory and factory_boy and numpy's global one when pytest-randomly
    found them installed. Reseeders registered through its entry point are
    opaque and stay process-wide.
    """
    randomly: Any = sys.modules["pytest_randomly"]
    sources: list[_Source] = [(random.getstate, random.setstate)]
    for flag, name in (
        ("have_faker", "faker_random"),
        ("have_model_bakery", "baker_random"),
        ("have_polyfactory", "polyfactory_random"),
    ):
        generator = getattr(randomly, name, None) if getattr(randomly, flag, False) else None
        if isinstance(generator, random.Random):
            sources.append((generator.getstate, generator.setstate))
    if getattr(randomly, "have_factory_boy", False):
        factory_random: Any = sys.modules.get("factory.random")
        generator = getattr(factory_random, "randgen", None)
        if isinstance(generator, random.Random):
            sources.append((generator.getstate, generator.setstate))
    if getattr(randomly, "have_numpy", False):
        np_random: Any = randomly.np_random
        sources.append((np_random.get_state, np_random.set_state))
    return sources


class RandomState(TaskState):
    """Each member's tasks draw from that member's own generator state.

    pytest-randomly reseeds the process-wide generators at each phase of a
    test (to ``seed + crc32(nodeid)``, give or take one); concurrent
    members would then draw from one stream in whatever order their steps
    interleave. Switched only when another member's step comes.
    """

    def __init__(self) -> None:
        self._sources = _generators()
        self._owner: MemberRun | None = None
        self._states: dict[MemberRun | None, list[Any]] = {}
        self._initial: list[Any] = []

    def _get(self) -> list[Any]:
        return [get() for get, _ in self._sources]

    def _set(self, state: list[Any]) -> None:
        for (_, set_state), value in zip(self._sources, state, strict=True):
            set_state(value)

    def install(self) -> None:
        self._owner = None
        self._initial = self._get()

    def uninstall(self) -> None:
        self.switch(None)
        self._states.clear()

    def switch(self, member: MemberRun | None) -> None:
        owner = self._owner
        if member is owner:
            return
        self._states[owner] = self._get()
        self._set(self._states.pop(member, self._initial))
        self._owner = member

    def member_done(self, member: MemberRun) -> None:
        if self._owner is member:
            self._set(self._states.pop(None, self._initial))
            self._owner = None
        self._states.pop(member, None)


class SchedulerSeed(TaskState):
    """trio's scheduler shuffles runnable tasks; seeded from ``--randomly-seed`` per group.

    Two runs with the same seed then schedule a group's tasks in the same
    order (as far as their own timing is the same), whatever ran before it.
    """

    def __init__(self, seed: int, first_member: pytest.Item) -> None:
        self._seed = f"{seed}:{first_member.nodeid}"
        self._saved: Any = None

    def install(self) -> None:
        generator = _trio_compat.scheduler_random()
        self._saved = generator.getstate()
        generator.seed(self._seed)

    def uninstall(self) -> None:
        _trio_compat.scheduler_random().setstate(self._saved)


def states(config: pytest.Config, first_member: pytest.Item) -> list[TaskState]:
    """The per-group state pytest-randomly's settings call for."""
    seed = config.getoption("randomly_seed", None)
    result: list[TaskState] = []
    if isinstance(seed, int):
        result.append(SchedulerSeed(seed, first_member))
    if config.getoption("randomly_reset_seed", False):
        result.append(RandomState())
    return result
