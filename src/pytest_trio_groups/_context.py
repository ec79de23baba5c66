"""What the hooks of every session look up: the current group member, and the run's stash keys.

Imported at plugin load: it holds no more than these keys, so that a hook can
tell at once that a session has nothing of the plugin's to do.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._runner import MemberRun
    from ._session_run import SessionRun
    from ._summary import GroupSummary

#: Set in each group member's task, and so seen by the tasks and
#: ``trio.to_thread`` threads it starts: output, log records, warnings and
#: async fixtures are attributed through it.
CURRENT_MEMBER: contextvars.ContextVar[MemberRun] = contextvars.ContextVar("trio_group_member")

#: The session's trio run, once a group has needed it (``_session_run``).
SESSION_RUN_KEY: pytest.StashKey[SessionRun] = pytest.StashKey()

#: ``config.stash``: the summary of every group run in this session, in the
#: order they ended (on a pytest-xdist controller: as the workers report them).
SUMMARIES_KEY: pytest.StashKey[list[GroupSummary]] = pytest.StashKey()
#: ``config.stash``: (group label, stdout, stderr) captured while a group with
#: a failure ran that no test owned, shown at the end of the run.
UNATTRIBUTED_KEY: pytest.StashKey[list[tuple[str, str, str]]] = pytest.StashKey()
#: Set while a group's wider-scoped sync fixtures are set up before its run
#: (``_fixtures.set_up_before_the_run``).
BEFORE_THE_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "trio_group_before_the_run", default=False
)

#: ``config.stash``: where a stall report goes instead of this process's
#: terminal (a pytest-xdist worker sends it to the controller).
STALL_SINK_KEY: pytest.StashKey[Callable[[str], None]] = pytest.StashKey()
