"""Cost of per-test output routing: 100 tests x 1,000 prints, grouped vs ungrouped.

Run from the repository root with the plugin installed in the current
environment::

    python benchmarks/output_routing.py

It writes ``benchmarks/RESULTS-output.md``.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TESTS = 100
PRINTS = 1_000
REPEATS = 5

GROUPED = f"""
import pytest, trio

@pytest.mark.trio_group("print-heavy")
@pytest.mark.parametrize("n", range({TESTS}))
async def test_prints(n):
    for line in range({PRINTS}):
        print("test", n, "line", line)
        if line % 100 == 0:
            await trio.sleep(0)
"""

UNGROUPED = f"""
import pytest

@pytest.mark.parametrize("n", range({TESTS}))
def test_prints(n):
    for line in range({PRINTS}):
        print("test", n, "line", line)
"""


def run(directory: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    last = result.stdout.strip().splitlines()[-1]
    if result.returncode != 0 or f"{TESTS} passed" not in last:
        raise SystemExit(f"run failed in {directory}:\n{result.stdout[-2000:]}")
    return elapsed


def main() -> None:
    timings: dict[str, list[float]] = {"grouped": [], "ungrouped": []}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for name, source in (("grouped", GROUPED), ("ungrouped", UNGROUPED)):
            directory = Path(tmp, name)
            directory.mkdir()
            (directory / "test_prints.py").write_text(textwrap.dedent(source))
            dirs[name] = directory
        for _ in range(REPEATS):
            for name, directory in dirs.items():
                timings[name].append(run(directory))
    grouped = statistics.median(timings["grouped"])
    ungrouped = statistics.median(timings["ungrouped"])
    import pytest
    import trio

    lines = [
        "# Output routing cost",
        "",
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, pytest {pytest.__version__}, trio {trio.__version__}.",
        f"{TESTS} tests printing {PRINTS:,} lines each; median of {REPEATS} runs "
        "(whole pytest process, collection included).",
        "",
        "| run | wall time (s) | ratio |",
        "|---|---:|---:|",
        f"| ungrouped sync tests, pytest's capture | {ungrouped:.2f} | 1.00 |",
        f"| one trio_group, per-test routing | {grouped:.2f} | {grouped / ungrouped:.2f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(__file__).with_name("RESULTS-output.md").write_text(text)


if __name__ == "__main__":
    main()
