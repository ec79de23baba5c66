"""Groups and workers together: 8 groups x 25 tests, each 0.1 s of CPU then a 0.5 s wait.

Run from the repository root with the plugin and pytest-xdist installed in the
current environment (``pip install -e ".[test]"``)::

    python benchmarks/scale_out.py             # 3 repeats
    python benchmarks/scale_out.py --repeats 1

It compares one process with groups, ``-n 2`` with groups and ``-n 2``
without them (every test marked ``trio_group()`` without a name: a group of
its own), and writes the table into its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

GROUPS = 8
TESTS_PER_GROUP = 25
CPU_SECONDS = 0.1
WAIT_SECONDS = 0.5
TESTS = GROUPS * TESTS_PER_GROUP

MODULE = """
import time

import pytest
import trio

pytestmark = pytest.mark.trio_group({group_args})


def burn_cpu(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@pytest.mark.parametrize("n", range({tests}))
async def test_compute_then_wait(n):
    burn_cpu({cpu})
    await trio.sleep({wait})
"""

#: (row label, suite, extra pytest arguments)
RUNS = (
    ("one process, 8 groups", "grouped", ()),
    ("-n 2, 8 groups", "grouped", ("-n", "2")),
    ("-n 2, no groups (each test alone)", "ungrouped", ("-n", "2")),
)

SECTION = re.compile(r"<!-- scale-out:start -->.*?<!-- scale-out:end -->\n", re.S)


def write_suite(directory: Path, *, grouped: bool) -> None:
    directory.mkdir()
    for index in range(GROUPS):
        group_args = f'"group{index}"' if grouped else ""
        source = MODULE.format(
            group_args=group_args, tests=TESTS_PER_GROUP, cpu=CPU_SECONDS, wait=WAIT_SECONDS
        )
        (directory / f"test_module{index}.py").write_text(textwrap.dedent(source))


def run(directory: Path, args: tuple[str, ...]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (pytest and the workers it reaped) of one run."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    before = os.times()
    start = time.perf_counter()
    result = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or f"{TESTS} passed" not in last:
        raise SystemExit(f"run failed in {directory}:\n{result.stdout[-3000:]}{result.stderr}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    walls: dict[str, list[float]] = {label: [] for label, _, _ in RUNS}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in RUNS}
    # The machine may be shared: its load says how far to trust the numbers.
    loads = [os.getloadavg()[0]]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        suites = {name: Path(tmp, name) for name in ("grouped", "ungrouped")}
        for name, directory in suites.items():
            write_suite(directory, grouped=name == "grouped")
        for repeat in range(options.repeats):
            for label, suite, args in RUNS:
                wall, cpu = run(suites[suite], args)
                print(f"[{repeat + 1}/{options.repeats}] {label}: {wall:.2f}s", file=sys.stderr)
                walls[label].append(wall)
                cpus[label].append(cpu)
                loads.append(os.getloadavg()[0])
    import pytest
    import trio
    import xdist

    baseline = statistics.median(walls[RUNS[0][0]])
    lines = [
        "<!-- scale-out:start -->",
        "## Scale-out — groups and workers together",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"the whole run took {(time.perf_counter() - started) / 60:.1f} min",
        f"- Command: `python benchmarks/scale_out.py --repeats {options.repeats}`",
        f"- Machine: {os.cpu_count()} cores (os.cpu_count()), Python "
        f"{platform.python_version()}, pytest {pytest.__version__}, "
        f"pytest-xdist {xdist.__version__}, trio {trio.__version__}",
        f"- Load average (1 min) before and after each run: {min(loads):.1f} to "
        f"{max(loads):.1f}, median {statistics.median(loads):.1f}; above the number of "
        "cores, other processes took CPU time from these runs",
        "",
        f"{GROUPS} modules of {TESTS_PER_GROUP} tests; each test burns {CPU_SECONDS} s of "
        f"CPU, then waits {WAIT_SECONDS} s (`trio.sleep`). With groups, each module is one "
        "group; without, every test is a group of its own and runs alone. wall: spawn to exit "
        "of `python -m pytest -q -p no:cacheprovider [-n 2]`, median of "
        f"{options.repeats} run(s). CPU: user + sys of pytest and its workers.",
        "",
        "| run | wall (s) | x one process | CPU (s) | CPU/wall |",
        "|---|--:|--:|--:|--:|",
    ]
    for label, _, _ in RUNS:
        wall = statistics.median(walls[label])
        cpu = statistics.median(cpus[label])
        lines.append(
            f"| {label} | {wall:.2f} | {wall / baseline:.2f} | {cpu:.2f} | {cpu / wall:.0%} |"
        )
    per_group = TESTS_PER_GROUP * CPU_SECONDS + WAIT_SECONDS
    lines += [
        "",
        "For reference, without overheads: one process needs the CPU time of every test plus "
        f"one wait per group, {GROUPS} x ({TESTS_PER_GROUP} x {CPU_SECONDS} + {WAIT_SECONDS}) "
        f"= {GROUPS * per_group:.0f} s; two workers halve it ({GROUPS * per_group / 2:.0f} s); "
        f"two workers without groups wait for every test, {TESTS} x "
        f"({CPU_SECONDS} + {WAIT_SECONDS}) / 2 = {TESTS * (CPU_SECONDS + WAIT_SECONDS) / 2:.0f} s.",
        "<!-- scale-out:end -->",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    results = Path(__file__).with_name("RESULTS.md")
    text = results.read_text() if results.exists() else ""
    if SECTION.search(text):
        text = SECTION.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    results.write_text(text)


if __name__ == "__main__":
    main()
