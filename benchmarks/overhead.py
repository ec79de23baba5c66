"""Where a group member's time goes, against plain pytest on the same tests.

Run in an environment with the plugin installed (``pip install -e
".[test]"``)::

    python benchmarks/overhead.py             # ~3 min on 2 cores
    python benchmarks/overhead.py --repeats 3

For W2 (trivial tests) and W3 (an async yield fixture and ``tmp_path``)
of ``run.py`` it runs the trio-groups suite and the plain suite whose
modules import trio (``-p no:trio_groups``), and reports

* function calls and profiled time per test by where the code lives
  (the plugin, trio, pytest, pluggy, the rest), from one ``cProfile`` run
  of each: calls are exact, profiled time inflates short calls;
* garbage-collection time by generation, from ``gc.callbacks`` in runs
  without the profiler (medians);
* the time to import the plugin modules such a run loads, and trio
  against asyncio, each in a fresh interpreter after ``import pytest``.

The results go to stdout and to ``RESULTS-overhead.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from workloads import STYLES, Kind, write_suite

HERE = Path(__file__).resolve().parent
WORKLOADS = {"W2": (Kind.TRIVIAL, 2_000), "W3": (Kind.FIXTURE, 500)}
# Bytecode is written and read, as in run.py's main rows: a run compiles
# nothing that an earlier run compiled.
ENV = {
    k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONDONTWRITEBYTECODE")
}
AREAS = ("plugin", "trio", "pytest", "pluggy", "outcome", "other Python", "builtins")

# Run as ``python driver.py OUT PROFILE|gc pytest-args...``: pytest.main with
# the profiler, or with the collector's time recorded by generation, and the
# plugin modules the run loaded.
DRIVER = textwrap.dedent(
    """
    import cProfile, gc, json, sys, time
    import pytest

    out, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    counts, seconds, started = [0, 0, 0], [0.0, 0.0, 0.0], [0.0]

    def on_gc(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            counts[info["generation"]] += 1
            seconds[info["generation"]] += time.perf_counter() - started[0]

    if mode == "profile":
        profile = cProfile.Profile()
        profile.runcall(pytest.main, args)
        profile.dump_stats(out)
    else:
        gc.callbacks.append(on_gc)
        pytest.main(args)
        gc.callbacks.remove(on_gc)
        modules = sorted(m for m in sys.modules if m.startswith("pytest_trio_groups"))
        with open(out, "w") as f:
            json.dump({"counts": counts, "seconds": seconds, "modules": modules}, f)
    """
)

IMPORT_TIMER = textwrap.dedent(
    """
    import importlib, json, sys, time
    import pytest
    names, before = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    for name in before:
        importlib.import_module(name)
    start = time.perf_counter()
    for name in names:
        importlib.import_module(name)
    print(time.perf_counter() - start)
    """
)


def area(filename: str, function: str) -> str:
    if "pytest_trio_groups" in filename:
        return "plugin"
    if "/trio/" in filename:
        return "trio"
    if "/_pytest/" in filename or "/pytest/" in filename:
        return "pytest"
    if "/pluggy/" in filename:
        return "pluggy"
    if "/outcome/" in filename:
        return "outcome"
    if filename == "~":
        return "builtins"
    return "other Python"


def by_area(profile: Path) -> tuple[Counter[str], Counter[str]]:
    calls: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, ncalls, tottime, _ct, _callers) in stats.items():
        where = area(filename, function)
        calls[where] += ncalls
        seconds[where] += tottime
    return calls, seconds


def run_driver(tmp: Path, suite: Path, mode: str, plain: bool, out: Path) -> None:
    args = ["-q", "-p", "no:cacheprovider", f"--basetemp={tmp / 'basetemp'}", str(suite)]
    if plain:
        args[:0] = ["-p", "no:trio_groups"]
    subprocess.run(
        [sys.executable, str(tmp / "driver.py"), str(out), mode, *args],
        cwd=suite,
        env=ENV,
        stdout=subprocess.DEVNULL,
        check=True,
    )


def import_seconds(names: list[str], repeats: int, before: tuple[str, ...] = ()) -> float:
    """Median seconds to import ``names`` in a fresh interpreter, after pytest and ``before``."""
    times = []
    for _ in range(repeats):
        result = subprocess.run(
            [sys.executable, "-c", IMPORT_TIMER, json.dumps(names), json.dumps(before)],
            capture_output=True,
            text=True,
            check=True,
            env=ENV,
        )
        times.append(float(result.stdout))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs for the GC and import medians")
    args = parser.parse_args()
    lines = [
        "# Where a member's time goes",
        "",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "- Command: `python benchmarks/overhead.py"
        + (f" --repeats {args.repeats}`" if args.repeats != 5 else "`"),
        f"- Machine: {os.cpu_count()} cores, Python {platform.python_version()}",
        "",
        "trio-groups: the suite of `run.py` with its `trio_group` mark; plain: the same",
        "tests as sync functions, modules importing trio, `-p no:trio_groups`.",
        "Calls and profiled ms are per test, from one cProfile run each (the",
        "profiler inflates short calls: read the ms as shares, not as wall time).",
        "",
    ]
    modules: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as name:
        tmp = Path(name)
        (tmp / "driver.py").write_text(DRIVER)
        for key, (kind, n_tests) in WORKLOADS.items():
            suites = {
                "trio-groups": write_suite(
                    tmp / key / "groups", STYLES["trio-groups"], kind, n_tests, group="g"
                ),
                "plain": write_suite(
                    tmp / key / "plain", STYLES["sync-importing-trio"], kind, n_tests, group="g"
                ),
            }
            calls: dict[str, Counter[str]] = {}
            seconds: dict[str, Counter[str]] = {}
            gc_runs: dict[str, list[dict[str, list[float]]]] = {}
            for who, suite in suites.items():
                plain = who == "plain"
                # A first run compiles the modules, as run.py's warm-up does.
                run_driver(tmp, suite, "gc", plain, tmp / "warm.json")
                run_driver(tmp, suite, "profile", plain, tmp / f"{key}-{who}.prof")
                calls[who], seconds[who] = by_area(tmp / f"{key}-{who}.prof")
                gc_runs[who] = []
                for _ in range(args.repeats):
                    out = tmp / "gc.json"
                    run_driver(tmp, suite, "gc", plain, out)
                    data = json.loads(out.read_text())
                    gc_runs[who].append(data)
                    if not plain:
                        modules = data["modules"]
                print(f"{key}: profiled and timed", file=sys.stderr)
            lines += [
                f"## {key}: {kind.value}, {n_tests} tests",
                "",
                "| where | calls/test trio-groups | plain | difference | profiled ms/test"
                " trio-groups | plain | difference |",
                "|---|--:|--:|--:|--:|--:|--:|",
            ]
            for where in AREAS:
                a, b = calls["trio-groups"][where] / n_tests, calls["plain"][where] / n_tests
                c = seconds["trio-groups"][where] * 1000 / n_tests
                d = seconds["plain"][where] * 1000 / n_tests
                lines.append(
                    f"| {where} | {a:.0f} | {b:.0f} | {a - b:+.0f} | {c:.3f} | {d:.3f} | {c - d:+.3f} |"
                )
            total_a = sum(calls["trio-groups"].values()) / n_tests
            total_b = sum(calls["plain"].values()) / n_tests
            sec_a = sum(seconds["trio-groups"].values()) * 1000 / n_tests
            sec_b = sum(seconds["plain"].values()) * 1000 / n_tests
            lines.append(
                f"| **all** | {total_a:.0f} | {total_b:.0f} | {total_a - total_b:+.0f} | "
                f"{sec_a:.3f} | {sec_b:.3f} | {sec_a - sec_b:+.3f} |"
            )
            lines += [
                "",
                f"Garbage collection, median of {args.repeats} runs without the profiler"
                " (collections per generation; ms per generation):",
                "",
                "| | collections | ms gen 0 / 1 / 2 | ms total |",
                "|---|---|---|--:|",
            ]
            for who, runs in gc_runs.items():
                per_gen = [
                    statistics.median(r["seconds"][g] * 1000 for r in runs) for g in range(3)
                ]
                counts = [statistics.median(r["counts"][g] for r in runs) for g in range(3)]
                total = statistics.median(sum(r["seconds"]) * 1000 for r in runs)
                lines.append(
                    f"| {who} | {' / '.join(f'{c:g}' for c in counts)} | "
                    f"{' / '.join(f'{s:.1f}' for s in per_gen)} | {total:.1f} |"
                )
            lines.append("")
    plugin_import = import_seconds(modules, args.repeats, before=("trio", "outcome"))
    trio_import = import_seconds(["trio"], args.repeats)
    asyncio_import = import_seconds(["asyncio"], args.repeats)
    lines += [
        "## Imports",
        "",
        f"Median of {args.repeats} fresh interpreters, after `import pytest`, without",
        "pytest's assertion-rewriting hook (a session adds it to the plugin's modules):",
        "",
        "| what | ms |",
        "|---|--:|",
        f"| the {len(modules)} plugin modules a W3 run loads, after trio and outcome |"
        f" {plugin_import * 1000:.1f} |",
        f"| trio | {trio_import * 1000:.1f} |",
        f"| asyncio | {asyncio_import * 1000:.1f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (HERE / "RESULTS-overhead.md").write_text(text)


if __name__ == "__main__":
    main()
