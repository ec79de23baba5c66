"""The timeline file: every test's setup, call and teardown on one picture (P8)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

SUITE = """
import os, time, pytest, trio

@pytest.mark.trio_group("io", timeout=5)
@pytest.mark.parametrize("n", range(3))
async def test_waits(n):
    await trio.sleep(0.01 * n)

@pytest.mark.trio_group("io", timeout=0.05)
async def test_times_out():
    await trio.sleep_forever()

@pytest.mark.trio_group("io", timeout=5)
async def test_fails(monkeypatch):
    monkeypatch.setenv("SHARED", "1")
    await trio.sleep(0.02)
    assert False

@pytest.mark.trio_group("io", timeout=5)
async def test_blocks(monkeypatch):
    monkeypatch.setenv("SHARED", "2")
    time.sleep(0.3)

@pytest.mark.trio_group("other")
async def test_alone():
    pass
"""

#: Each phase's report duration, in microseconds, written by the conftest below.
CONFTEST = """
import itertools
import json

def pytest_runtest_logreport(report):
    with open("durations.jsonl", "a") as file:
        file.write(json.dumps([report.nodeid, report.when, report.duration * 1e6]) + "\\n")
"""


def _events(path: Any) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    assert data["displayTimeUnit"] == "ms"
    events: list[dict[str, Any]] = data["traceEvents"]
    return events


def test_timeline_holds_each_tests_phases(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_timeline=SUITE)
    result = pytester.runpytest(
        "--trio-group-trace", "out/trace.json", "--trio-group-blocked-threshold", "0.1"
    )
    result.assert_outcomes(passed=5, failed=2, warnings=2)
    result.stdout.fnmatch_lines(["trio_group timeline written to *out?trace.json"])
    events = _events(pytester.path / "out" / "trace.json")

    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert sorted(processes.values()) == ["trio_group 'io'", "trio_group 'other'"]
    tracks = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    nodeids = sorted(tracks.values())
    assert nodeids == sorted(
        [f"test_timeline.py::test_waits[{n}]" for n in range(3)]
        + [f"test_timeline.py::test_{name}" for name in ("times_out", "fails", "blocks", "alone")]
    )

    durations: dict[tuple[str, str], float] = {}
    for line in (pytester.path / "durations.jsonl").read_text().splitlines():
        nodeid, when, micros = json.loads(line)
        durations[nodeid, when] = micros

    outcomes = {}
    for key, nodeid in tracks.items():
        spans = [e for e in events if (e["pid"], e["tid"]) == key and e["ph"] == "X"]
        (test,) = [e for e in spans if e["cat"] == "test"]
        phases = sorted((e for e in spans if e["cat"] == "phase"), key=lambda e: e["ts"])
        assert test["name"] == nodeid
        assert processes[key[0]] == (
            "trio_group 'other'" if "alone" in nodeid else "trio_group 'io'"
        )
        # One span per phase, in order, one after the other, inside the test's span.
        assert [e["name"] for e in phases] == ["setup", "call", "teardown"]
        for earlier, later in itertools.pairwise(phases):
            assert earlier["ts"] + earlier["dur"] <= later["ts"]
        assert test["ts"] == phases[0]["ts"]
        assert test["ts"] + test["dur"] == pytest.approx(
            phases[-1]["ts"] + phases[-1]["dur"], abs=0.01
        )
        # The spans are the reports' own durations.
        for phase in phases:
            assert phase["dur"] == pytest.approx(durations[nodeid, phase["name"]], abs=0.01)
        outcomes[nodeid.partition("::")[2]] = (
            test["args"],
            [(e["args"]["outcome"], e["args"].get("timeout", False)) for e in phases],
        )

    assert outcomes["test_times_out"] == (
        {"outcome": "failed", "timeout": True},
        [("passed", False), ("failed", True), ("passed", False)],
    )
    assert outcomes["test_fails"] == (
        {"outcome": "failed"},
        [("passed", False), ("failed", False), ("passed", False)],
    )
    assert outcomes["test_waits[1]"] == (
        {"outcome": "passed"},
        [("passed", False), ("passed", False), ("passed", False)],
    )

    notices = {
        (tracks[e["pid"], e["tid"]].partition("::")[2], e["name"]): e["args"]
        for e in events
        if e["ph"] == "i"
    }
    assert set(notices) == {
        ("test_blocks", "event loop blocked"),
        ("test_blocks", "shared state changed"),
    }
    assert notices["test_blocks", "event loop blocked"]["at"] == (
        "test_timeline.py:21 in test_blocks"
    )
    assert notices["test_blocks", "shared state changed"]["what"] == "os.environ['SHARED']"
    assert notices["test_blocks", "shared state changed"]["running"] == [
        "test_timeline.py::test_fails"
    ]


def test_no_file_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_timeline=SUITE)
    result = pytester.runpytest()
    result.stdout.no_fnmatch_line("*timeline written*")
    assert not list(pytester.path.glob("*.json"))


def test_xdist_worker_names_its_file_and_processes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_timeline="""
        import pytest, trio

        @pytest.mark.trio_group("io")
        async def test_one():
            await trio.sleep(0)
        """
    )
    result = pytester.runpytest("-n", "1", "--trio-group-trace", "trace.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["trio_group timeline written to *trace-gw[*].json, one file per pytest-xdist worker"]
    )
    assert not (pytester.path / "trace.json").exists()
    events = _events(pytester.path / "trace-gw0.json")
    names = [e["args"]["name"] for e in events if e["name"] == "process_name"]
    assert names == ["trio_group 'io' [gw0]"]
