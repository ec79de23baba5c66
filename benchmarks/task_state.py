"""Per-step cost of per-member process state: bare trio steps against steps of group members.

Run from the repository root with the plugin installed in the current
environment (pytest-randomly and pytest-cov too, for their rows)::

    python benchmarks/task_state.py                   # writes benchmarks/RESULTS-task-state.md
    python benchmarks/task_state.py --baseline OTHER  # also another install, e.g. an older commit

One pytest run per row of plugins. In it, rounds alternate: a plain test
times ``MEMBERS`` trio tasks taking ``STEPS`` steps each
(``trio.lowlevel.checkpoint()``) in a bare ``trio.run``, then a group of
``MEMBERS`` members takes the same steps. The members' steps interleave,
so each step belongs to another member than the one before: the worst
case for state that is switched only when the member changes. The
difference, per step, is what the plugin adds to each step of a member.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MEMBERS = 4
STEPS = 5_000
ROUNDS = 7

HEADER = f"""
import json, time, pytest, trio

MEMBERS, STEPS = {MEMBERS}, {STEPS}
SPANS = {{}}

async def steps():
    for _ in range(STEPS):
        await trio.lowlevel.checkpoint()

def bare(key):
    async def main():
        async with trio.open_nursery() as nursery:
            for _ in range(MEMBERS):
                nursery.start_soon(steps)
    start = time.perf_counter()
    trio.run(main)
    SPANS.setdefault(key, []).append((start, time.perf_counter()))

async def member(key):
    start = time.perf_counter()
    await steps()
    SPANS.setdefault(key, []).append((start, time.perf_counter()))
"""

# Bare runs and groups alternate, so that both see the same load on a
# shared machine; each round gives one (bare, group) pair.
ROUND = """
def test_{k}_bare():
    bare(("bare", {k}))

@pytest.mark.trio_group("steps-{k}")
@pytest.mark.parametrize("n", range(MEMBERS))
async def test_{k}_member(n):
    await member(("group", {k}))
"""

FOOTER = """
def test_z_write():
    def span(marks):
        return max(m[1] for m in marks) - min(m[0] for m in marks)
    rounds = [(span(SPANS[("bare", k)]), span(SPANS[("group", k)])) for k in range({rounds})]
    with open("spans.json", "w") as f:
        json.dump(rounds, f)
"""

SUITE = HEADER + "".join(ROUND.format(k=k) for k in range(ROUNDS)) + FOOTER.format(rounds=ROUNDS)

ROWS = (
    ("none of the plugins active", ("-p", "no:randomly")),
    ("pytest-randomly", ("-p", "randomly", "--randomly-seed=1", "--randomly-dont-reorganize")),
    ("pytest-cov --cov-context=test", ("-p", "no:randomly", "--cov=.", "--cov-context=test")),
)


def run(python: str, directory: Path, args: tuple[str, ...]) -> list[tuple[float, float]]:
    """(bare, group) seconds for each round of one pytest run."""
    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "."],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"run failed ({args}):\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return [(bare, group) for bare, group in json.loads((directory / "spans.json").read_text())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="also measure the first row with this interpreter's install of the plugin, "
        "alternating runs with the current one",
    )
    parser.add_argument("--output", default=str(Path(__file__).with_name("RESULTS-task-state.md")))
    parser.add_argument(
        "--rows", type=int, default=len(ROWS), help="measure only the first N rows of plugins"
    )
    parser.add_argument(
        "--baseline-label", default="baseline", help="how the results name the baseline"
    )
    options = parser.parse_args()
    steps = MEMBERS * STEPS
    lines = [
        "# Per-step cost of per-member process state",
        "",
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {versions(sys.executable)}.",
        f"{MEMBERS} tasks x {STEPS:,} steps, interleaved; {ROUNDS} rounds in one pytest run, "
        "medians. *bare*: the tasks in a plain `trio.run`; *member*: the same steps as members "
        "of one group; *added*: the median over rounds of (member - bare), per step.",
        "",
        "| install | plugins | bare (ns/step) | member (ns/step) | added (ns/step) |",
        "|---|---|--:|--:|--:|",
    ]

    def row(install: str, label: str, rounds: list[tuple[float, float]]) -> str:
        bare = statistics.median(b for b, _ in rounds) / steps * 1e9
        member = statistics.median(g for _, g in rounds) / steps * 1e9
        added = statistics.median(g - b for b, g in rounds) / steps * 1e9
        return f"| {install} | {label} | {bare:.0f} | {member:.0f} | {added:.0f} |"

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "test_steps.py").write_text(SUITE)
        if options.baseline:
            # Alternating whole runs, as the machine's load drifts.
            label, args = ROWS[0]
            current: list[tuple[float, float]] = []
            baseline: list[tuple[float, float]] = []
            for _ in range(3):
                current += run(sys.executable, directory, args)
                baseline += run(options.baseline, directory, args)
            lines.append(row(options.baseline_label, label, baseline))
            lines.append(row("current", label, current))
        # The first row is measured above already when there is a baseline.
        for label, args in ROWS[1 if options.baseline else 0 : options.rows]:
            lines.append(row("current", label, run(sys.executable, directory, args)))
    if options.baseline:
        lines += ["", f"{options.baseline_label}: {versions(options.baseline)}."]
    lines.append("")
    text = "\n".join(lines)
    print(text)
    Path(options.output).write_text(text)


def versions(python: str) -> str:
    return subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
            "('pytest', 'trio', 'pytest-trio-groups', 'pytest-randomly', 'pytest-cov')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


if __name__ == "__main__":
    main()
