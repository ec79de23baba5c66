"""Points where support for other plugins watches and steers a group run.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

import pytest

from ._pytest_compat import Phase

if TYPE_CHECKING:
    import trio

    from ._runner import GroupRun, MemberRun

_T = TypeVar("_T")

#: Makes one observer per group run; the run asks each in turn.
ObserverFactory = Callable[["GroupRun"], "RunObserver"]

#: The factories of the plugins active in this session (``_plugins.activate``).
OBSERVERS_KEY: pytest.StashKey[list[ObserverFactory]] = pytest.StashKey()


class RunObserver:
    """Does nothing; each method is a point where a subclass may act.

    Called in the group's trio run, in the task concerned, except where
    said otherwise.
    """

    #: Instruments added to the group's ``trio.run``.
    instruments: tuple[trio.abc.Instrument, ...] = ()

    def group_started(self, run: GroupRun) -> None:
        """The run's main task started; no member has yet."""

    def group_finished(self, run: GroupRun) -> None:
        """Every member and fixture is done; the trio run is about to end."""

    def member_started(self, member: MemberRun) -> None:
        """An attempt at a member starts, before its setup."""

    def phase_started(self, member: MemberRun, when: Phase) -> None:
        """A phase of the attempt starts; its reports of earlier phases are made."""

    def member_finished(self, member: MemberRun) -> None:
        """The attempt is torn down and its reports made, not yet published."""

    def timeout_detail(self, member: MemberRun, late_by: float) -> str:
        """Text added to the member's timeout failure, its deadline passed ``late_by`` s ago."""
        return ""

    def next_attempt(self, member: MemberRun) -> float | None:
        """Seconds to wait before running the member again, or ``None`` to finish.

        Asked after each attempt in the group; the first observer that says
        to run again decides.
        """
        return None

    def next_attempt_alone(self, member: MemberRun, runs: int) -> float | None:
        """As ``next_attempt``, after ``member``'s ``runs``-th failed run on its own.

        A test run on its own after its group (``--trio-group-rerun-alone``)
        gets again what it would get alone, such as its reruns.
        """
        return None

    def hold_reports(self, member: MemberRun) -> bool:
        """Whether to publish the member's final attempt only after the group ran."""
        return False

    async def after_members(self, run: GroupRun, held: list[MemberRun]) -> None:
        """Every member ran; ``held`` are those whose reports are still unpublished."""


def as_instrument(cls: type[_T]) -> type[_T]:
    """``cls`` made a ``trio.abc.Instrument``: built when a group first runs.

    Instruments are defined without trio's base class so that loading the
    plugin does not import trio; a session without groups never imports it.
    """
    made = _INSTRUMENT_CLASSES.get(cls)
    if made is None:
        import trio

        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        made = _INSTRUMENT_CLASSES[cls] = type(cls.__name__, (cls, trio.abc.Instrument), namespace)
    return cast("type[_T]", made)


_INSTRUMENT_CLASSES: dict[type, type] = {}
