"""Benchmark pytest-trio-groups against plain pytest and other concurrency plugins.

Run ``python3 benchmarks/run.py`` (``--help`` for the options). Each
contender gets its own virtual environment under ``benchmarks/.envs/``; the
results go to stdout and to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workloads import SLEEP_SECONDS, STYLES, Kind, write_suite

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
ENVS = HERE / ".envs"

# Pins. PYTEST_VERSIONS is tried newest first for the third-party plugins
# until one passes the environment's smoke test; trio-groups takes the newest
# 9.x, and plain pytest and xdist take whatever trio-groups got.
PYTEST_VERSIONS = ("9.2.0", "9.1.1", "9.0.3", "8.4.2")
TRIO = "trio==0.35.0"
PYINSTRUMENT = "pyinstrument==5.1.3"

RUN_TIMEOUT = 900.0
SMOKE_TESTS = 4
FAR_BELOW = 0.5  # "CPU time far below wall" means CPU <= this share of wall


# --------------------------------------------------------------------------
# Contenders and workloads


@dataclass(frozen=True)
class EnvSpec:
    """One virtual environment: what goes into it and how to check it works."""

    name: str
    requirements: tuple[str, ...]
    style: str
    #: pytest versions to try, newest first; ``None``: trio-groups' version.
    pytest_versions: tuple[str, ...] | None
    install_project: bool = False
    smoke_args: tuple[str, ...] = ()


ENV_SPECS: tuple[EnvSpec, ...] = (
    EnvSpec("trio-groups", (TRIO,), "trio-groups", PYTEST_VERSIONS[:1], install_project=True),
    EnvSpec("plain", (), "sync", None),
    EnvSpec("pytest-trio", ("pytest-trio==0.8.0", TRIO), "pytest-trio", PYTEST_VERSIONS),
    EnvSpec("xdist", ("pytest-xdist==3.8.0",), "sync", None, smoke_args=("-n", "2")),
    EnvSpec(
        "asyncio-concurrent",
        ("pytest-asyncio-concurrent==0.5.2",),
        "asyncio-concurrent",
        PYTEST_VERSIONS,
    ),
    EnvSpec(
        "asyncio-cooperative",
        ("pytest-asyncio-cooperative==0.40.0",),
        "asyncio-cooperative",
        PYTEST_VERSIONS,
    ),
)


@dataclass(frozen=True)
class Contender:
    """One row label: an environment, a test dialect and extra pytest arguments."""

    name: str
    env: str
    style: str
    args: tuple[str, ...] = ()
    #: Runs tests one at a time: W1 runs a sample and scales the time.
    sequential: bool = False
    #: Run with ``PYTHONDONTWRITEBYTECODE=1``, as many CI images do: nothing
    #: pytest compiles (rewritten modules) is cached between runs.
    no_bytecode: bool = False


WATCHDOG_OFF = "trio-groups (watchdog off)"
PLAIN_IMPORTING_TRIO = "plain (modules import trio)"
NO_PYC = "trio-groups (PYTHONDONTWRITEBYTECODE)"
PLAIN_IMPORTING_TRIO_NO_PYC = "plain (modules import trio, PYTHONDONTWRITEBYTECODE)"
#: Workloads profiled when one of their targets is missed.
PROFILED = ("W2", "W3", "W4")
#: The watchdog's cost counts as nothing measurable up to this ratio (noise).
WATCHDOG_NOISE = 1.03

CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        Contender("trio-groups", "trio-groups", "trio-groups"),
        # The same with the blocked-loop watchdog off: what the watchdog costs.
        Contender(
            WATCHDOG_OFF, "trio-groups", "trio-groups", ("--trio-group-blocked-threshold=off",)
        ),
        Contender("plain", "plain", "sync", sequential=True),
        # trio-groups' environment with the plugin off: plain's has no trio.
        Contender(
            PLAIN_IMPORTING_TRIO,
            "trio-groups",
            "sync-importing-trio",
            ("-p", "no:trio_groups"),
            sequential=True,
        ),
        Contender(NO_PYC, "trio-groups", "trio-groups", no_bytecode=True),
        Contender(
            PLAIN_IMPORTING_TRIO_NO_PYC,
            "trio-groups",
            "sync-importing-trio",
            ("-p", "no:trio_groups"),
            sequential=True,
            no_bytecode=True,
        ),
        Contender("pytest-trio", "pytest-trio", "pytest-trio", sequential=True),
        Contender("xdist -n 2", "xdist", "sync", ("-n", "2")),
        Contender("xdist -n 8", "xdist", "sync", ("-n", "8")),
        Contender("asyncio-concurrent", "asyncio-concurrent", "asyncio-concurrent"),
        Contender("asyncio-cooperative", "asyncio-cooperative", "asyncio-cooperative"),
    )
}


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    kind: Kind
    n_tests: int
    quick_n_tests: int
    contenders: tuple[str, ...]
    repeats: int
    #: Tests run by sequential contenders (then scaled up); ``None``: all.
    sequential_sample: int | None = None


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "W1",
        f"I/O-bound: each test waits {SLEEP_SECONDS} s",
        Kind.SLEEP,
        200,
        40,
        tuple(c for c in CONTENDERS if not CONTENDERS[c].no_bytecode),
        repeats=3,
        sequential_sample=20,
    ),
    Workload(
        "W2",
        "overhead: trivial tests",
        Kind.TRIVIAL,
        2_000,
        200,
        (
            "trio-groups",
            WATCHDOG_OFF,
            "plain",
            PLAIN_IMPORTING_TRIO,
            NO_PYC,
            PLAIN_IMPORTING_TRIO_NO_PYC,
            "pytest-trio",
        ),
        repeats=5,
    ),
    Workload(
        "W3",
        "fixtures: function-scoped async yield fixture + tmp_path",
        Kind.FIXTURE,
        500,
        50,
        ("trio-groups", "plain", PLAIN_IMPORTING_TRIO, "pytest-trio"),
        repeats=5,
    ),
    Workload(
        "W4",
        "scale: trivial tests in one group",
        Kind.TRIVIAL,
        10_000,
        1_000,
        ("trio-groups", "plain", PLAIN_IMPORTING_TRIO),
        repeats=5,
    ),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Running pytest and measuring it


@dataclass
class Run:
    """One pytest process: its exit, its summary line and what it cost."""

    exit_code: int
    wall: float
    cpu: float
    maxrss_kib: int
    output: str
    counts: dict[str, int]

    @property
    def summary(self) -> str:
        lines = [line.strip("= ") for line in self.output.splitlines() if line.strip()]
        return lines[-1] if lines else "(no output)"

    def first_error(self) -> str | None:
        for line in self.output.splitlines():
            if line.startswith("E "):
                return line[1:].strip()
        return None


_COUNT = re.compile(
    r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected|tests? collected)"
)


def parse_counts(summary: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for number, word in _COUNT.findall(summary):
        key = "collected" if word.endswith("collected") else word
        key = {"error": "errors", "warning": "warnings"}.get(key, key)
        counts[key] = counts.get(key, 0) + int(number)
    return counts


def child_env(no_bytecode: bool = False) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # Without .pyc files every run would compile every module again;
        # unbuffered output would make each write to the terminal a system call.
        if k
        not in {
            "PYTHONPATH",
            "PYTEST_ADDOPTS",
            "PYTEST_PLUGINS",
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONUNBUFFERED",
        }
    }
    env["PY_COLORS"] = "0"
    if no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_pytest(
    python: Path,
    args: Sequence[str],
    cwd: Path,
    timeout: float = RUN_TIMEOUT,
    no_bytecode: bool = False,
) -> Run:
    """Run ``python -m pytest -q -p no:cacheprovider *args`` in ``cwd`` and measure it.

    Wall time is ``time.perf_counter`` from spawn to reaping. CPU time
    (user + sys) and peak RSS come from ``os.wait4``'s rusage: the pytest
    process plus the children it reaped (xdist's workers); Linux reports
    ``ru_maxrss`` in KiB, as the largest of those processes, not their sum.
    """
    cmd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(no_bytecode),
            start_new_session=True,
        )
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode("utf-8", "replace")
    run = Run(
        exit_code=proc.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        maxrss_kib=usage.ru_maxrss,
        output=output,
        counts={},
    )
    run.counts = parse_counts(run.summary)
    return run


def _kill_group(pid: int) -> None:
    # The pytest process leads its own session: this ends it and its workers.
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def check_run(run: Run, expected: int, *, collect_only: bool = False) -> str | None:
    """Why ``run`` does not count, or ``None`` when it ran ``expected`` tests cleanly."""
    key = "collected" if collect_only else "passed"
    bad = {k: v for k, v in run.counts.items() if k in ("failed", "errors", "xpassed")}
    if run.exit_code == 0 and run.counts.get(key, 0) == expected and not bad:
        return None
    reason = f"exit {run.exit_code}: {run.summary!r}, expected {expected} {key}"
    error = run.first_error()
    return f"{reason}; first error: {error}" if error else reason


# --------------------------------------------------------------------------
# Virtual environments


@dataclass
class EnvInfo:
    name: str
    python: Path
    pytest_version: str | None
    attempts: list[dict[str, str]]
    packages: dict[str, str]
    project_hash: str | None = None

    @property
    def usable(self) -> bool:
        return self.pytest_version is not None


def project_hash() -> str:
    """A digest of what ``pip install`` takes from the project."""
    digest = hashlib.sha256()
    for path in sorted(_project_files()):
        digest.update(str(path.relative_to(PROJECT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _project_files() -> Iterable[Path]:
    for name in ("pyproject.toml", "README.rst", "LICENSE"):
        if (PROJECT / name).is_file():
            yield PROJECT / name
    for path in (PROJECT / "src").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            yield path


def _copy_project(dest: Path) -> Path:
    """Copy the project's sources to ``dest``: pip builds there, not in the work tree."""
    for path in _project_files():
        target = dest / path.relative_to(PROJECT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return dest


def _pip(python: Path, args: Sequence[str], logfile: Path) -> None:
    cmd = [str(python), "-m", "pip", "--disable-pip-version-check", "install", *args]
    with logfile.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(logfile.read_text().splitlines()[-15:])
        raise RuntimeError(f"pip install failed ({' '.join(args)}):\n{tail}")


def _installed(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    skip = {"pip", "setuptools", "wheel"}
    return {p["name"]: p["version"] for p in json.loads(out) if p["name"].lower() not in skip}


def smoke_test(spec: EnvSpec, python: Path) -> str | None:
    """Run a few tests with fixtures in the env; ``None`` when all pass."""
    with tempfile.TemporaryDirectory(prefix=f"bench-smoke-{spec.name}-") as tmp:
        root = write_suite(
            Path(tmp), STYLES[spec.style], Kind.SMOKE, SMOKE_TESTS, group="smoke", modules=2
        )
        run = run_pytest(python, [*spec.smoke_args, "."], root, timeout=300)
    return check_run(run, SMOKE_TESTS)


def ensure_env(spec: EnvSpec, versions: tuple[str, ...]) -> EnvInfo:
    """Build (or reuse) the env; try pytest ``versions`` until the smoke test passes."""
    env_dir = ENVS / spec.name
    python = env_dir / "bin" / "python"
    meta_path = env_dir / "bench-env.json"
    digest = project_hash() if spec.install_project else None
    fingerprint = {
        "requirements": list(spec.requirements),
        "pytest_versions": list(versions),
        "project": digest,
        "python": sys.version,
    }
    if meta_path.is_file() and python.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint:
            log(f"[env] {spec.name}: reusing {env_dir}")
            return EnvInfo(
                spec.name,
                python,
                meta["pytest_version"],
                meta["attempts"],
                meta["packages"],
                digest,
            )
    log(f"[env] {spec.name}: building {env_dir}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(env_dir)], check=True)
    logfile = env_dir / "pip.log"
    attempts: list[dict[str, str]] = []
    chosen: str | None = None
    with tempfile.TemporaryDirectory(prefix="bench-project-") as tmp:
        extra = [str(_copy_project(Path(tmp)))] if spec.install_project else []
        for version in versions:
            log(f"[env] {spec.name}: installing pytest=={version} {' '.join(spec.requirements)}")
            try:
                _pip(python, ["--quiet", f"pytest=={version}", *spec.requirements, *extra], logfile)
            except RuntimeError as exc:
                attempts.append({"pytest": version, "result": f"install failed: {exc}"})
                continue
            problem = smoke_test(spec, python)
            attempts.append({"pytest": version, "result": problem or "smoke test passed"})
            log(f"[env] {spec.name}: pytest {version}: {problem or 'smoke test passed'}")
            if problem is None:
                chosen = version
                break
    packages = _installed(python)
    meta = {
        "fingerprint": fingerprint,
        "pytest_version": chosen,
        "attempts": attempts,
        "packages": packages,
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return EnvInfo(spec.name, python, chosen, attempts, packages, digest)


def build_envs(needed: set[str]) -> dict[str, EnvInfo]:
    ENVS.mkdir(parents=True, exist_ok=True)
    envs: dict[str, EnvInfo] = {}
    specs = {spec.name: spec for spec in ENV_SPECS}
    base = ensure_env(specs["trio-groups"], specs["trio-groups"].pytest_versions or ())
    envs[base.name] = base
    for spec in ENV_SPECS:
        if spec.name in envs or spec.name not in needed:
            continue
        if spec.pytest_versions is None:
            if base.pytest_version is None:
                envs[spec.name] = EnvInfo(spec.name, Path(), None, [], {})
                continue
            versions: tuple[str, ...] = (base.pytest_version,)
        else:
            versions = spec.pytest_versions
        envs[spec.name] = ensure_env(spec, versions)
    return envs


# --------------------------------------------------------------------------
# Benchmark rows


@dataclass
class Row:
    workload: Workload
    contender: Contender
    n_tests: int
    n_run: int
    suite: Path
    runs: list[Run] = field(default_factory=list)
    collects: list[Run] = field(default_factory=list)
    error: str | None = None

    @property
    def scale(self) -> float:
        return self.n_tests / self.n_run

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.runs)

    def _median(self, values: Callable[[Run], float], runs: list[Run] | None = None) -> float:
        return statistics.median(values(r) for r in (self.runs if runs is None else runs))

    @property
    def measured_wall(self) -> float:
        return self._median(lambda r: r.wall)

    @property
    def wall(self) -> float:
        return self.measured_wall * self.scale

    @property
    def cpu(self) -> float:
        return self._median(lambda r: r.cpu) * self.scale

    @property
    def rss_mib(self) -> float:
        return self._median(lambda r: r.maxrss_kib) / 1024

    @property
    def collect(self) -> float:
        return self._median(lambda r: r.wall, self.collects)

    @property
    def collect_cpu(self) -> float:
        return self._median(lambda r: r.cpu, self.collects)

    @property
    def warnings(self) -> int:
        return max((r.counts.get("warnings", 0) for r in self.runs), default=0)


def run_workload(
    workload: Workload, envs: dict[str, EnvInfo], repeats: int, quick: bool, tmp: Path
) -> list[Row]:
    n_tests = workload.quick_n_tests if quick else workload.n_tests
    rows: list[Row] = []
    suites: dict[tuple[str, int], Path] = {}
    for name in workload.contenders:
        contender = CONTENDERS[name]
        n_run = n_tests
        if contender.sequential and workload.sequential_sample:
            n_run = workload.sequential_sample // (10 if quick else 1)
        key = (contender.style, n_run)
        if key not in suites:
            root = tmp / workload.key / f"{contender.style}-{n_run}"
            suites[key] = write_suite(
                root, STYLES[contender.style], workload.kind, n_run, group=workload.key.lower()
            )
        row = Row(workload, contender, n_tests, n_run, suites[key])
        env = envs[contender.env]
        if not env.usable:
            row.error = "not run: no pytest version passed the environment's smoke test"
        rows.append(row)

    live = [row for row in rows if row.error is None]
    for row in live:
        # Untimed: imports the test modules once (writing their .pyc) and
        # checks that every test is collected.
        warm = run_pytest(
            envs[row.contender.env].python,
            ["--collect-only", "."],
            row.suite,
            no_bytecode=row.contender.no_bytecode,
        )
        row.error = check_run(warm, row.n_run, collect_only=True)
    for repeat in range(repeats):
        for row in [r for r in live if r.error is None]:
            python = envs[row.contender.env].python
            log(
                f"[{workload.key}] {row.contender.name}: {row.n_run} tests, run {repeat + 1}/{repeats}"
            )
            no_bytecode = row.contender.no_bytecode
            collect = run_pytest(
                python, ["--collect-only", "."], row.suite, no_bytecode=no_bytecode
            )
            row.error = check_run(collect, row.n_run, collect_only=True)
            if row.error:
                continue
            row.collects.append(collect)
            run = run_pytest(python, [*row.contender.args, "."], row.suite, no_bytecode=no_bytecode)
            row.error = check_run(run, row.n_run)
            if row.error:
                log(f"[{workload.key}] {row.contender.name}: FAILED: {row.error}")
                continue
            row.runs.append(run)
            log(
                f"    wall {run.wall:.2f} s, cpu {run.cpu:.2f} s, rss {run.maxrss_kib / 1024:.0f} MiB"
            )
    return rows


# --------------------------------------------------------------------------
# Start-up and scale


#: Runs of each side in the start-up workload, alternating: a one-test run
#: takes a few hundred ms, and on a shared machine single runs vary by more
#: than the difference measured.
STARTUP_REPEATS = 30
#: The start-up target: a session with no group member against ``-p no:trio_groups``.
STARTUP_TARGET_MS = 10.0
#: Group sizes of the scaling row; 100,000 only with ``--scale-100k``.
SCALE_COUNTS = (1_000, 10_000)
SCALE_RSS_TARGET = 1.30


def measure_startup(env: EnvInfo, repeats: int, tmp: Path) -> list[str]:
    """One sync test, with the plugin installed and with ``-p no:trio_groups``, alternating.

    Judged on the median CPU time (user + sys) of each side: wall time on a
    shared machine measures the queue for a core as much as the run. The
    minimum, the run least disturbed, is shown beside it.
    """
    root = write_suite(tmp / "startup", STYLES["sync"], Kind.TRIVIAL, 1, group="s", modules=1)
    # Untimed: writes the .pyc files of the test module, and of the plugin's
    # modules as pytest's assertion rewriting caches them.
    run_pytest(env.python, ["."], root)
    plugin, without = "plugin installed", "-p no:trio_groups"
    sides: dict[str, list[Run]] = {plugin: [], without: []}
    for repeat in range(repeats):
        for label, args in ((plugin, ["."]), (without, ["-p", "no:trio_groups", "."])):
            log(f"[start-up] {label}: run {repeat + 1}/{repeats}")
            run = run_pytest(env.python, args, root)
            problem = check_run(run, 1)
            if problem:
                return [f"The start-up workload failed ({label}): {problem}"]
            sides[label].append(run)

    def ms(runs: list[Run], measure: str, pick: Callable[[list[float]], float]) -> float:
        return pick([getattr(run, measure) for run in runs]) * 1000

    table = {
        label: {
            (measure, name): ms(runs, measure, pick)
            for measure in ("wall", "cpu")
            for name, pick in (("median", statistics.median), ("min", min))
        }
        for label, runs in sides.items()
    }
    delta = {key: table[plugin][key] - table[without][key] for key in table[plugin]}
    met = "met" if delta["cpu", "median"] <= STARTUP_TARGET_MS else "NOT met"
    lines = [
        "## Start-up: one sync test",
        "",
        f"The trio-groups environment (no pytest-trio), {repeats} alternating runs of each side.",
        "",
        "| run | CPU ms, median | CPU ms, min | wall ms, median | wall ms, min |",
        "|---|--:|--:|--:|--:|",
    ]
    order = [("cpu", "median"), ("cpu", "min"), ("wall", "median"), ("wall", "min")]
    for label, row in [*table.items(), ("difference", delta)]:
        cells = " | ".join(
            f"{row[key]:+.1f}" if label == "difference" else f"{row[key]:.0f}" for key in order
        )
        lines.append(f"| {label} | {cells} |")
    lines += [
        "",
        f"The plugin costs {delta['cpu', 'median']:+.1f} ms CPU at the median "
        f"({delta['cpu', 'min']:+.1f} ms at the minimum; wall time "
        f"{delta['wall', 'median']:+.1f} ms at the median); target <= "
        f"{STARTUP_TARGET_MS:g} ms of median CPU: {met}.",
    ]
    # The same two runs counted in instructions, which the machine's load
    # does not change: the difference the timings above can only estimate.
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
    counted = [
        count_instructions(env.python, [*pytest_args, *args, "."], root)
        for args in ([], ["-p", "no:trio_groups"])
    ]
    if counted[0] is not None and counted[1] is not None:
        with_plugin, without_plugin = counted[0], counted[1]
        lines += [
            "",
            f"Instructions (valgrind callgrind, one run each): {with_plugin / 1e6:.1f} M with "
            f"the plugin, {without_plugin / 1e6:.1f} M without, "
            f"{(with_plugin - without_plugin) / 1e6:+.1f} M "
            f"({(with_plugin - without_plugin) / without_plugin:+.1%}).",
        ]
    return lines


#: Suite sizes whose instruction counts give the per-test slope and the fixed part.
INSTRUCTION_COUNTS = (5, 500)


def count_instructions(python: Path, args: Sequence[str], cwd: Path) -> int | None:
    """Instructions executed by ``python *args`` under valgrind's callgrind, or ``None``."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    cmd = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", str(python), *args]
    done = subprocess.run(
        cmd, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    match = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    return int(match.group(1)) if match else None


def measure_instructions(envs: dict[str, EnvInfo], tmp: Path) -> list[str]:
    """Instructions per test and fixed instructions, from two suite sizes under callgrind.

    Instruction counts do not depend on what else the machine is doing, so
    they separate the plugin's own work from noise; what they leave out
    (cache misses, the memory the run touches) is in the timed rows.
    """
    if shutil.which("valgrind") is None:
        return ["## Instructions", "", "Not measured: valgrind is not installed."]
    small, large = INSTRUCTION_COUNTS
    sides = (
        ("trio-groups: one group", "trio-groups", "trio-groups", False),
        ("plain pytest: sync tests", "plain", "sync", False),
        # (plain's environment has no trio: trio-groups' one, the plugin off.)
        (
            "plain pytest: sync tests whose modules import trio",
            "trio-groups",
            "sync-importing-trio",
            True,
        ),
    )
    counts: dict[str, dict[int, int]] = {}
    for label, env_name, style, import_trio in sides:
        counts[label] = {}
        for n in (small, large):
            root = write_suite(
                tmp / f"instructions-{style}-{int(import_trio)}-{n}",
                STYLES[style],
                Kind.TRIVIAL,
                n,
                group="g",
                modules=5,
            )
            python = envs[env_name].python
            off = ["-p", "no:trio_groups"] if import_trio else []
            pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *off, "."]
            run_pytest(python, [*off, "."], root)  # untimed: writes the .pyc files
            log(f"[instructions] {label}: {n} tests")
            total = count_instructions(python, pytest_args, root)
            if total is None:
                return ["## Instructions", "", f"Not measured: callgrind gave no count ({label})."]
            counts[label][n] = total
    trio_import = [
        count_instructions(envs["trio-groups"].python, ["-c", code], tmp)
        for code in ("import pytest", "import pytest, trio")
    ]
    plain_slope = (counts[sides[1][0]][large] - counts[sides[1][0]][small]) / (large - small)
    lines = [
        "## Instructions: per test and fixed",
        "",
        f"Instructions executed (valgrind callgrind) by whole pytest runs of {small} and {large} "
        "trivial tests; per test is the difference over the extra tests, fixed is what is left "
        f"at {small} tests (start-up, imports, collection set-up, exit). Counts are exact and "
        "do not depend on the machine's load; the time a run takes also depends on cache "
        "misses and memory, which the timed rows above include.",
        "",
        f"| run | {small} tests (M) | {large} tests (M) | per test (k) | per test x plain "
        "| fixed (M) |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for label, *_ in sides:
        slope = (counts[label][large] - counts[label][small]) / (large - small)
        fixed = counts[label][small] - small * slope
        lines.append(
            f"| {label} | {counts[label][small] / 1e6:.0f} | {counts[label][large] / 1e6:.0f} "
            f"| {slope / 1e3:.0f} | {slope / plain_slope:.3f} | {fixed / 1e6:.0f} |"
        )
    if None not in trio_import:
        assert trio_import[0] is not None and trio_import[1] is not None
        lines += [
            "",
            f"Importing trio after pytest (`python -c 'import pytest, trio'` minus "
            f"`python -c 'import pytest'`): {(trio_import[1] - trio_import[0]) / 1e6:.0f} M "
            "instructions, paid by every suite whose tests use trio.",
        ]
    return lines


def measure_scale(envs: dict[str, EnvInfo], counts: Sequence[int], tmp: Path) -> list[str]:
    """Trivial tests in one group against as many trivial sync tests: ms per test and peak RSS."""
    lines = [
        "## Scale: one group of N trivial tests against N trivial sync tests",
        "",
        "One run of each (after an untimed `--collect-only`). ms/test is the whole "
        "process's wall time divided by N, start-up included.",
        "",
        "| N | trio-groups ms/test | plain ms/test | wall ratio | trio-groups RSS MiB "
        "| plain RSS MiB | RSS ratio |",
        "|--:|--:|--:|--:|--:|--:|--:|",
    ]
    worst_rss = 0.0
    for n in counts:
        runs: dict[str, Run] = {}
        for env_name, style in (("trio-groups", "trio-groups"), ("plain", "sync")):
            root = write_suite(
                tmp / f"scale-{style}-{n}", STYLES[style], Kind.TRIVIAL, n, group="scale"
            )
            python = envs[env_name].python
            run_pytest(python, ["--collect-only", "."], root)
            log(f"[scale] {env_name}: {n} tests")
            run = run_pytest(python, ["."], root)
            problem = check_run(run, n)
            if problem:
                lines.append(f"| {n:,} | failed ({env_name}): {problem} | | | | | |")
                break
            runs[env_name] = run
        if len(runs) < 2:
            continue
        tg, plain = runs["trio-groups"], runs["plain"]
        rss = tg.maxrss_kib / plain.maxrss_kib
        worst_rss = max(worst_rss, rss)
        lines.append(
            f"| {n:,} | {tg.wall / n * 1000:.3f} | {plain.wall / n * 1000:.3f} | "
            f"{tg.wall / plain.wall:.2f} | {tg.maxrss_kib / 1024:.0f} | "
            f"{plain.maxrss_kib / 1024:.0f} | {rss:.2f} |"
        )
    if worst_rss:
        met = "met" if worst_rss <= SCALE_RSS_TARGET else "NOT met"
        lines += ["", f"Peak RSS target <= {SCALE_RSS_TARGET:.2f} x plain at every N: {met}."]
    return lines


# --------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    workload: str
    text: str
    met: bool | None  # None: could not be judged


def _find(rows: list[Row], workload: str, contender: str) -> Row | None:
    for row in rows:
        if row.workload.key == workload and row.contender.name == contender:
            return row
    return None


def evaluate_targets(rows: list[Row]) -> list[Target]:
    targets: list[Target] = []
    keys = {row.workload.key for row in rows}

    def unjudged(workload: str, what: str, why: str) -> None:
        targets.append(Target(workload, f"{what}: cannot be judged ({why})", None))

    if "W1" in keys:
        tg = _find(rows, "W1", "trio-groups")
        what = "W1: trio-groups wall <= 1.1 x (slowest test + collection)"
        if tg is None or not tg.ok:
            unjudged("W1", what, "trio-groups did not run")
        else:
            bound = 1.1 * (SLEEP_SECONDS + tg.collect)
            targets.append(
                Target(
                    "W1",
                    f"{what}: {tg.wall:.3f} s vs 1.1 x ({SLEEP_SECONDS} s + {tg.collect:.3f} s) = {bound:.3f} s",
                    tg.wall <= bound,
                )
            )
            others = [
                r
                for r in rows
                if r.workload.key == "W1"
                and not r.contender.name.startswith("trio-groups")
                and r.ok
            ]
            failed = [r.contender.name for r in rows if r.workload.key == "W1" and not r.ok]
            if others:
                best = min(others, key=lambda r: r.wall)
                note = f"; not counted (failed): {', '.join(failed)}" if failed else ""
                targets.append(
                    Target(
                        "W1",
                        f"W1: trio-groups no slower than any other contender: {tg.wall:.3f} s vs "
                        f"fastest other {best.contender.name} {best.wall:.3f} s{note}",
                        tg.wall <= best.wall,
                    )
                )
            targets.append(
                Target(
                    "W1",
                    f"W1: trio-groups CPU far below wall (CPU <= {FAR_BELOW:g} x wall): "
                    f"{tg.cpu:.2f} s CPU vs {tg.wall:.2f} s wall ({tg.cpu / tg.wall:.0%}); "
                    f"start-up and collection alone (collect-only run) use {tg.collect_cpu:.2f} s CPU",
                    tg.cpu <= FAR_BELOW * tg.wall,
                )
            )
    if "W2" in keys:
        tg, ptrio = (_find(rows, "W2", c) for c in ("trio-groups", "pytest-trio"))
        for mine, theirs, baseline in (
            ("trio-groups", "plain", "plain pytest"),
            ("trio-groups", PLAIN_IMPORTING_TRIO, PLAIN_IMPORTING_TRIO),
            (NO_PYC, PLAIN_IMPORTING_TRIO_NO_PYC, PLAIN_IMPORTING_TRIO_NO_PYC),
        ):
            a, b = _find(rows, "W2", mine), _find(rows, "W2", theirs)
            what = f"W2: {mine} wall <= 1.05 x {baseline}"
            if a and b and a.ok and b.ok:
                targets.append(
                    Target(
                        "W2",
                        f"{what}: {a.wall:.2f} s vs {b.wall:.2f} s ({a.wall / b.wall:.2f} x)",
                        a.wall <= 1.05 * b.wall,
                    )
                )
            else:
                unjudged("W2", what, "a row failed")
        what = "W2: trio-groups wall < pytest-trio"
        if tg and ptrio and tg.ok and ptrio.ok:
            targets.append(
                Target(
                    "W2",
                    f"{what}: {tg.wall:.2f} s vs {ptrio.wall:.2f} s ({tg.wall / ptrio.wall:.2f} x)",
                    tg.wall < ptrio.wall,
                )
            )
        else:
            unjudged("W2", what, "a row failed")
    if "W3" in keys:
        tg = _find(rows, "W3", "trio-groups")
        for theirs, bound in (("plain", 1.2), (PLAIN_IMPORTING_TRIO, 1.2), ("pytest-trio", 1.0)):
            other = _find(rows, "W3", theirs)
            what = f"W3: trio-groups wall <= {bound:g} x {theirs}"
            if tg and other and tg.ok and other.ok:
                targets.append(
                    Target(
                        "W3",
                        f"{what}: {tg.wall:.2f} s vs {other.wall:.2f} s "
                        f"({tg.wall / other.wall:.2f} x)",
                        tg.wall <= bound * other.wall,
                    )
                )
            else:
                unjudged("W3", what, "a row failed")
    if "W4" in keys:
        tg, plain = (_find(rows, "W4", c) for c in ("trio-groups", "plain"))
        if tg and plain and tg.ok and plain.ok:
            targets.append(
                Target(
                    "W4",
                    f"W4: trio-groups wall <= 1.1 x plain pytest: {tg.wall:.2f} s vs {plain.wall:.2f} s "
                    f"({tg.wall / plain.wall:.2f} x)",
                    tg.wall <= 1.1 * plain.wall,
                )
            )
            targets.append(
                Target(
                    "W4",
                    f"W4: trio-groups peak RSS <= 1.3 x plain pytest: {tg.rss_mib:.0f} MiB vs "
                    f"{plain.rss_mib:.0f} MiB ({tg.rss_mib / plain.rss_mib:.2f} x)",
                    tg.rss_mib <= 1.3 * plain.rss_mib,
                )
            )
        else:
            unjudged("W4", "W4: trio-groups wall and RSS vs plain pytest", "a row failed")
    for key in ("W1", "W2"):
        if key not in keys:
            continue
        on, off = _find(rows, key, "trio-groups"), _find(rows, key, WATCHDOG_OFF)
        what = (
            f"{key}: the blocked-loop watchdog costs nothing measurable "
            f"(wall <= {WATCHDOG_NOISE:g} x with it off)"
        )
        if on and off and on.ok and off.ok:
            targets.append(
                Target(
                    key,
                    f"{what}: {on.wall:.3f} s on vs {off.wall:.3f} s off "
                    f"({on.wall / off.wall:.3f} x); CPU {on.cpu:.2f} s vs {off.cpu:.2f} s",
                    on.wall <= WATCHDOG_NOISE * off.wall,
                )
            )
        else:
            unjudged(key, what, "a row did not run")
    return targets


# --------------------------------------------------------------------------
# Profile


@dataclass
class Profile:
    workload: str
    n_tests: int
    pyinstrument: str = "?"
    duration: float = 0.0
    samples: int = 0
    error: str | None = None
    #: (label, share of all samples)
    phases: list[tuple[str, float]] = field(default_factory=list)
    packages: list[tuple[str, float]] = field(default_factory=list)
    by_self: list[tuple[str, float]] = field(default_factory=list)
    #: (file:function, inclusive share, share with no other plugin function below it)
    plugin: list[tuple[str, float, float]] = field(default_factory=list)


_PHASES = (
    ("pytest_collection", "collection (pytest_collection)"),
    ("pytest_runtestloop", "running the tests (pytest_runtestloop)"),
    ("pytest_sessionfinish", "session finish and summary"),
    ("pytest_terminal_summary", "session finish and summary"),
)
_PLUGIN = "pytest_trio_groups/"


def _frame_name(ident: str, suite: Path) -> tuple[str, str]:
    """``(file:function, function)`` for a pyinstrument frame identifier."""
    func, path, *rest = ident.split("\x00")
    attrs = rest[0].split("\x01") if rest else []
    cls = next((a[1:] for a in attrs if a.startswith("c")), None)
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(str(suite)):
        path = "<tests>" + path[len(str(suite)) :]
    elif "/lib/python3" in path:
        path = "<stdlib>/" + path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    name = f"{cls}.{func}" if cls else func
    return f"{path}:{name}", func


def _package(name: str) -> str:
    path = name.rsplit(":", 1)[0]
    if path.startswith("<frozen"):
        return "<frozen importlib> (imports)"
    return path.split("/", 1)[0]


def _summarise(records: list[tuple[list[str], float]], suite: Path, profile: Profile) -> None:
    total = sum(seconds for _, seconds in records) or 1.0
    phases: dict[str, float] = defaultdict(float)
    packages: dict[str, float] = defaultdict(float)
    self_time: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    innermost: dict[str, float] = defaultdict(float)
    for stack, seconds in records:
        names = [_frame_name(ident, suite) for ident in stack]
        funcs = {func for _, func in names}
        phase = next((label for f, label in _PHASES if f in funcs), "start-up, plugins, imports")
        phases[phase] += seconds
        self_time[names[-1][0]] += seconds
        # A builtin's time is charged to the package that called it.
        package = next(
            (_package(n) for n, _ in reversed(names) if _package(n) != "<built-in>"), "?"
        )
        packages[package] += seconds
        plugin_frames = [n for n, _ in names if n.startswith(_PLUGIN)]
        for name in set(plugin_frames):
            inclusive[name] += seconds
        if plugin_frames:
            innermost[plugin_frames[-1]] += seconds

    def top(table: dict[str, float], n: int) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in sorted(table.items(), key=lambda kv: -kv[1])[:n]]

    profile.phases = top(phases, 5)
    profile.packages = top(packages, 8)
    profile.by_self = top(self_time, 10)
    profile.plugin = [(k, v, innermost[k] / total) for k, v in top(inclusive, 12)]


def profile_trio_groups(workload: Workload, env: EnvInfo, quick: bool, tmp: Path) -> Profile:
    """One pyinstrument-profiled run of ``workload`` for trio-groups."""
    n_tests = workload.quick_n_tests if quick else workload.n_tests
    profile = Profile(workload.key, n_tests)
    suite = write_suite(
        tmp / f"profile-{workload.key}",
        STYLES["trio-groups"],
        workload.kind,
        n_tests,
        group=workload.key.lower(),
    )
    session_file = tmp / f"profile-{workload.key}.pyisession"
    cmd = [str(env.python), "-m", "pyinstrument", "-r", "pyisession", "-o", str(session_file)]
    cmd += ["-m", "pytest", "-q", "-p", "no:cacheprovider", "."]
    try:
        _pip(env.python, ["--quiet", PYINSTRUMENT], ENVS / env.name / "pip.log")
        profile.pyinstrument = _installed(env.python).get("pyinstrument", "?")
        # Like the timed runs: the test modules are compiled before the profile.
        warm = run_pytest(env.python, ["--collect-only", "."], suite)
        problem = check_run(warm, n_tests, collect_only=True)
        if problem:
            raise RuntimeError(problem)
        result = subprocess.run(cmd, cwd=suite, env=child_env(), capture_output=True, text=True)
        if result.returncode != 0 or not session_file.is_file():
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise RuntimeError(f"exit {result.returncode}: {' / '.join(tail)}")
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        profile.error = str(exc)
        return profile
    data: dict[str, Any] = json.loads(session_file.read_text())
    profile.duration = data["duration"]
    profile.samples = data["sample_count"]
    _summarise(data["frame_records"], suite, profile)
    return profile


# --------------------------------------------------------------------------
# Report


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def workload_table(rows: list[Row]) -> list[str]:
    plain = next((r for r in rows if r.contender.name == "plain" and r.ok), None)
    out = [
        "| contender | tests run | wall (s) | x plain | ms/test | CPU (s) | CPU/wall | peak RSS (MiB) | RSS x plain | collect-only (s) | notes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        c = row.contender
        if not row.ok:
            out.append(
                f"| {c.name} | {row.n_run} | — | — | — | — | — | — | — | — | **FAILED** — {row.error} |"
            )
            continue
        notes: list[str] = []
        if row.scale != 1:
            notes.append(
                f"scaled from {row.n_run} tests (x{row.scale:g}; measured {row.measured_wall:.2f} s); "
                "CPU scaled too"
            )
        if "-n" in c.args:
            notes.append(f"`{' '.join(c.args)}`; CPU includes workers, RSS is the largest process")
        elif c.args:
            notes.append(f"`{' '.join(c.args)}`")
        if STYLES[c.style].single_module:
            notes.append("all tests in one module (its groups cannot span modules)")
        if row.warnings:
            notes.append(f"{row.warnings} warnings")
        ratio = _fmt(row.wall / plain.wall) if plain else "—"
        rss_ratio = _fmt(row.rss_mib / plain.rss_mib) if plain else "—"
        out.append(
            f"| {c.name} | {row.n_run} | {_fmt(row.wall)} | {ratio} | {_fmt(1000 * row.wall / row.n_tests, 3)} | "
            f"{_fmt(row.cpu)} | {row.cpu / row.wall:.0%} | {_fmt(row.rss_mib, 1)} | {rss_ratio} | "
            f"{_fmt(row.collect)} | {'; '.join(notes)} |"
        )
    return out


def render(
    rows: list[Row],
    envs: dict[str, EnvInfo],
    targets: list[Target],
    profiles: list[Profile],
    args: argparse.Namespace,
    repeats: dict[str, int],
    elapsed: float,
) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python3 benchmarks/run.py" + "".join(f" {a}" for a in sys.argv[1:])
    lines = [
        "# pytest-trio-groups benchmarks",
        "",
        f"- Date: {now}; the whole run took {elapsed / 60:.1f} min",
        f"- Command: `{command}`"
        + (" (quick smoke run: fewer tests and repeats)" if args.quick else ""),
        f"- Machine: {os.cpu_count()} cores (os.cpu_count()), Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.platform()}",
        "- Repeats (medians reported): "
        + ", ".join(f"{k} {v}" for k, v in repeats.items())
        + "; each row also has one untimed `--collect-only` warm-up run that compiles the test modules",
    ]
    tg = envs.get("trio-groups")
    if tg and tg.project_hash:
        lines.append(
            f"- pytest-trio-groups source digest: `{tg.project_hash}` (sha256 of pyproject.toml, README.rst, LICENSE, src/)"
        )
    lines += [
        "",
        "Each cell is the median over the repeats. wall: spawn to exit of "
        "`python -m pytest -q -p no:cacheprovider <dir>` (time.perf_counter). CPU: user + sys of that "
        "process and the children it reaped (os.wait4). peak RSS: ru_maxrss from os.wait4, for xdist "
        "the largest single process among the controller and its workers (not their sum). "
        "collect-only: the same directory with `--collect-only -q` (for xdist rows, without `-n`). "
        "x plain: ratio to plain pytest's median on the same workload and number of tests. "
        "ms/test: wall / number of tests.",
        "",
    ]
    for workload in WORKLOADS:
        wrows = [r for r in rows if r.workload.key == workload.key]
        if not wrows:
            continue
        n = wrows[0].n_tests
        lines += [f"## {workload.key} — {workload.title} ({n} tests)", ""]
        lines += workload_table(wrows)
        lines.append("")
        if workload.kind is Kind.SLEEP:
            busy = [r.contender.name for r in wrows if r.ok and r.cpu >= 0.9 * r.wall]
            lines += [
                "Busy-waiting (CPU >= 90% of wall while the tests only wait): "
                + (", ".join(busy) if busy else "none")
                + ".",
                "",
            ]
    lines += ["## Targets", ""]
    for t in targets:
        mark = {True: "**met**", False: "**NOT met**", None: "**not judged**"}[t.met]
        lines.append(f"- {mark} — {t.text}")
    if not targets:
        lines.append("- (no workload with a target was run)")
    lines += ["", "## Contenders and versions", ""]
    lines += [
        "| env | used by | pytest | pytest versions tried (newest first) | installed packages |",
        "|---|---|---|---|---|",
    ]
    for name, env in envs.items():
        used = ", ".join(c.name for c in CONTENDERS.values() if c.env == name)
        tried = "<br>".join(f"{a['pytest']}: {a['result']}" for a in env.attempts) or "—"
        pkgs = ", ".join(
            f"{k}=={v}" for k, v in sorted(env.packages.items(), key=lambda kv: kv[0].lower())
        )
        lines.append(
            f"| {name} | {used} | {env.pytest_version or 'none works'} | {tried.replace('|', '/')} | {pkgs} |"
        )
    lines += [
        "",
        "Notes:",
        "",
        "- plain pytest and xdist use trio-groups' pytest; the other plugins get the newest pytest on which "
        "their smoke test (2 modules x 2 tests using a function-scoped yield fixture, an async fixture "
        "where the plugin has them, tmp_path and a short wait) passes.",
        "- pytest-asyncio-cooperative's smoke test leaves out tmp_path: with 0.40.0 a test requesting "
        "tmp_path fails with a KeyError from pytest's item stash on every pytest tried (8.4.2, 9.0.3, 9.2.0). "
        "W1 uses no fixtures.",
        "- pytest-asyncio-concurrent skips every test of a group whose members sit in different modules "
        "('has children from different parents'), so its W1 tests are in one module.",
        "- Scaled rows (plain and pytest-trio in W1) run a sample one test at a time and multiply wall and CPU "
        "time by N / sample; their start-up and collection are multiplied too, so they slightly overstate.",
    ]
    for p in profiles:
        lines += ["", f"## Where the time goes: trio-groups, {p.workload} ({p.n_tests} tests)", ""]
        if p.error:
            lines.append(f"The profiled run failed: {p.error}")
            continue
        lines += [
            f"One run under pyinstrument {p.pyinstrument}, {p.samples} samples over {p.duration:.2f} s. "
            "The profiler slows the run down (most where calls are many and short): read shares, not "
            "seconds. Shares are of all samples.",
            "",
            "By phase: " + ", ".join(f"{label} {share:.0%}" for label, share in p.phases) + ".",
            "",
            "By package of the running code (a builtin counts for its caller): "
            + ", ".join(f"`{name}` {share:.0%}" for name, share in p.packages)
            + ".",
            "",
            "Top functions by own time:",
            "",
            "| share | file:function |",
            "|--:|---|",
        ]
        lines += [f"| {share:.1%} | `{name}` |" for name, share in p.by_self]
        lines += [
            "",
            "The plugin's functions: inclusive share, and the share where it is the innermost "
            "plugin frame (its own code plus the pytest, pluggy and trio code it calls):",
            "",
            "| inclusive | innermost | file:function |",
            "|--:|--:|---|",
        ]
        lines += [f"| {inc:.1%} | {own:.1%} | `{name}` |" for name, inc, own in p.plugin]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1/10 of the tests, 1 repeat"
    )
    parser.add_argument("--only", metavar="W1,W2", help="run only these workloads")
    parser.add_argument(
        "--startup",
        action="store_true",
        help="also run the start-up workload (one sync test, plugin vs -p no:trio_groups)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="also run the scaling row: groups of 1k and 10k trivial tests against plain pytest",
    )
    parser.add_argument(
        "--scale-100k", action="store_true", help="add a group of 100k to the scaling row (slow)"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per test and fixed (needs valgrind; a few minutes)",
    )
    parser.add_argument(
        "--extras-only",
        action="store_true",
        help="run only --startup / --scale, none of the W workloads",
    )
    parser.add_argument(
        "--contenders",
        metavar="NAME,NAME",
        help="run only these contenders (names as in the tables, comma-separated)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        metavar="N",
        help="repeats for every workload (default: W1 3, others 5)",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile trio-groups on W2/W3/W4 with pyinstrument: when a target is missed (auto)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the report (default: benchmarks/RESULTS.md, "
        "or RESULTS-partial.md for --quick/--only runs)",
    )
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.only:
        wanted = {k.strip().upper() for k in args.only.split(",") if k.strip()}
        unknown = wanted - {w.key for w in WORKLOADS}
        if unknown:
            parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
        args.workloads = [w for w in WORKLOADS if w.key in wanted]
    else:
        args.workloads = list(WORKLOADS)
    if args.contenders:
        chosen = {name.strip() for name in args.contenders.split(",") if name.strip()}
        unknown = chosen - set(CONTENDERS)
        if unknown:
            parser.error(f"unknown contender(s): {', '.join(sorted(unknown))}")
        args.workloads = [
            dataclasses.replace(w, contenders=tuple(c for c in w.contenders if c in chosen))
            for w in args.workloads
        ]
        args.workloads = [w for w in args.workloads if w.contenders]
    if args.output is None:
        partial = args.quick or len(args.workloads) < len(WORKLOADS) or bool(args.contenders)
        args.output = HERE / ("RESULTS-partial.md" if partial else "RESULTS.md")
    return args


#: Sections other scripts write into the results file (``scale_out.py``):
#: a new report keeps them.
KEPT_SECTION = re.compile(r"<!-- (?P<name>[\w-]+):start -->.*?<!-- (?P=name):end -->\n", re.S)


def with_kept_sections(path: Path, report: str) -> str:
    if not path.exists():
        return report
    text = path.read_text()
    return report + "".join("\n" + match.group(0) for match in KEPT_SECTION.finditer(text))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    workloads: list[Workload] = [] if args.extras_only else args.workloads
    needed = {CONTENDERS[c].env for w in workloads for c in w.contenders}
    if args.scale or args.scale_100k or args.instructions:
        needed.add("plain")
    envs = build_envs(needed)
    repeats = {w.key: args.repeats or (1 if args.quick else w.repeats) for w in workloads}
    rows: list[Row] = []
    profiles: list[Profile] = []
    with tempfile.TemporaryDirectory(prefix="trio-groups-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for workload in workloads:
            rows += run_workload(workload, envs, repeats[workload.key], args.quick, tmp)
        targets = evaluate_targets(rows)
        missed = {t.workload for t in targets if t.met is False and t.workload in PROFILED}
        if args.profile == "always":
            missed = {w.key for w in workloads if w.key in PROFILED}
        if args.profile != "never" and envs["trio-groups"].usable:
            for workload in workloads:
                if workload.key in missed:
                    log(f"[profile] trio-groups {workload.key}")
                    profiles.append(
                        profile_trio_groups(workload, envs["trio-groups"], args.quick, tmp)
                    )
        extras: list[str] = []
        if args.startup:
            extras += ["", *measure_startup(envs["trio-groups"], STARTUP_REPEATS, tmp)]
        if args.scale or args.scale_100k:
            counts = (*SCALE_COUNTS, 100_000) if args.scale_100k else SCALE_COUNTS
            extras += ["", *measure_scale(envs, counts, tmp)]
        if args.instructions:
            extras += ["", *measure_instructions(envs, tmp)]
    report = render(rows, envs, targets, profiles, args, repeats, time.perf_counter() - started)
    report += "\n".join(extras) + ("\n" if extras else "")
    args.output.write_text(with_kept_sections(args.output, report))
    print(report)
    log(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
