"""The context variable naming the group member a task works for."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._runner import MemberRun
    from ._session_run import SessionRun

#: Set in each group member's task, and so seen by the tasks and
#: ``trio.to_thread`` threads it starts: output, log records, warnings and
#: async fixtures are attributed through it.
CURRENT_MEMBER: contextvars.ContextVar[MemberRun] = contextvars.ContextVar("trio_group_member")

#: The session's trio run, once a group has needed it (``_session_run``).
SESSION_RUN_KEY: pytest.StashKey[SessionRun] = pytest.StashKey()
