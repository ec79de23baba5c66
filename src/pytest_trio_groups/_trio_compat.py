"""Every use of a private trio attribute, in one place.

Each accessor names the trio versions it was checked against;
``tests/test_trio_compat.py`` pins each behaviour relied on here.
"""

from __future__ import annotations

import random


def scheduler_random() -> random.Random:
    """The generator trio's scheduler shuffles each batch of runnable tasks with.

    ``trio._core._run._r`` (trio 0.25 - 0.35): a module-level
    ``random.Random`` that nothing seeds, also drawn from for the
    ``SystemClock`` offset of each ``trio.run``.
    """
    from trio._core import _run

    generator = _run._r
    assert isinstance(generator, random.Random)
    return generator
