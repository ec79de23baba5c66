"""Per-step cost of the blocked-loop watchdog: a group of busy members, watchdog on and off.

Run from the repository root with the plugin installed in the current
environment::

    python benchmarks/blocked_loop.py

A group of ``MEMBERS`` members each takes ``STEPS`` trio task steps
(``trio.lowlevel.checkpoint()``), the worst case for a per-step cost: the
steps do nothing else. Runs alternate between the watchdog on (default
threshold) and off (``--trio-group-blocked-threshold=off``); the group's
wall time is read from its summary line, and the difference of the
medians, divided by the number of steps, is what the watchdog adds to
each step. It prints a Markdown table.
"""

from __future__ import annotations

import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MEMBERS = 4
STEPS = 25_000
ROUNDS = 9

SUITE = f"""
import pytest, trio

@pytest.mark.trio_group("steps")
@pytest.mark.parametrize("n", range({MEMBERS}))
async def test_steps(n):
    for _ in range({STEPS}):
        await trio.lowlevel.checkpoint()
"""

WALL = re.compile(r"^trio_group 'steps': .* in (?P<wall>[\d.]+)s wall", re.M)


def group_wall(directory: Path, *args: str) -> float:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"]
    result = subprocess.run(
        [*cmd, *args, str(directory)], capture_output=True, text=True, check=False
    )
    match = WALL.search(result.stdout)
    if result.returncode != 0 or match is None:
        raise SystemExit(f"run failed:\n{result.stdout[-2000:]}")
    return float(match["wall"])


def main() -> None:
    walls: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "test_steps.py").write_text(SUITE)
        for _ in range(ROUNDS):
            walls["on"].append(group_wall(directory))
            walls["off"].append(group_wall(directory, "--trio-group-blocked-threshold=off"))
    on, off = statistics.median(walls["on"]), statistics.median(walls["off"])
    steps = MEMBERS * STEPS
    print(
        f"{MEMBERS} members x {STEPS:,} steps, median of {ROUNDS} alternating runs, "
        f"Python {platform.python_version()}\n\n"
        "| watchdog | group wall (s) | per step (µs) |\n|---|--:|--:|\n"
        f"| off | {off:.3f} | {off / steps * 1e6:.2f} |\n"
        f"| on (0.5 s threshold) | {on:.3f} | {on / steps * 1e6:.2f} |\n"
        f"| difference | {on - off:+.3f} | {(on - off) / steps * 1e6:+.2f} |"
    )


if __name__ == "__main__":
    main()
