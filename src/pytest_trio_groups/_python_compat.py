"""What CPython offers only as an implementation detail: another thread's current frame.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import sys
import types


def thread_frame(thread_id: int) -> types.FrameType | None:
    """The frame ``thread_id`` is executing now, or ``None`` if it has none.

    ``sys._current_frames`` is documented as CPython-specific and exists on
    CPython 3.10 to 3.14; PyPy has it too. Without it the watchdog still
    notices a blocked loop but cannot say where it blocked.
    """
    current_frames = getattr(sys, "_current_frames", None)
    if current_frames is None:
        return None
    frame: types.FrameType | None = current_frames().get(thread_id)
    return frame
