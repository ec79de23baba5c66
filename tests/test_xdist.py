"""Under pytest-xdist every group runs whole on one worker; groups spread over workers (P6)."""

from __future__ import annotations

import inspect
import json
import re
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict

import pytest

pytest.importorskip("xdist")

#: ``-v`` under xdist: ``[gw0] [ 50%] PASSED test_x.py::test_a[3]``.
VERDICT = re.compile(r"^\[(?P<worker>gw\d+)\] \[\s*\d+%\] (?P<word>[A-Z]+) (?P<nodeid>\S+)")

#: Two groups whose ten members each wait until all ten have started.
TWO_GROUPS = """
import pytest, trio

ARRIVED = {"a": 0, "b": 0}
EVERYONE_HERE = {"a": trio.Event(), "b": trio.Event()}

async def arrive(group):
    ARRIVED[group] += 1
    if ARRIVED[group] == 10:
        EVERYONE_HERE[group].set()
    await EVERYONE_HERE[group].wait()

@pytest.mark.trio_group("a", timeout=30)
@pytest.mark.parametrize("n", range(10))
async def test_a(n):
    await arrive("a")

@pytest.mark.trio_group("b", timeout=30)
@pytest.mark.parametrize("n", range(10))
async def test_b(n):
    await arrive("b")
"""


def verdicts(lines: list[str]) -> list[tuple[str, str, str]]:
    """(worker, word, nodeid) of each ``-v`` result line."""
    return [
        (match["worker"], match["word"], match["nodeid"])
        for line in lines
        if (match := VERDICT.match(line))
    ]


def workers_by_test(lines: list[str], prefix: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for worker, _, nodeid in verdicts(lines):
        name = nodeid.split("::", 1)[1]
        if name.startswith(prefix):
            found[nodeid].append(worker)
    return found


@pytest.mark.parametrize("dist", [[], ["--dist", "worksteal"], ["--dist", "loadgroup"]], ids=str)
def test_each_group_runs_whole_and_concurrently_on_one_worker(
    pytester: pytest.Pytester, dist: list[str]
) -> None:
    pytester.makepyfile(test_groups=TWO_GROUPS)
    result = pytester.runpytest("-p", "xdist", "-n", "2", "-v", *dist)
    result.assert_outcomes(passed=20)
    placed = {}
    for group in ("a", "b"):
        found = workers_by_test(result.outlines, f"test_{group}[")
        assert len(found) == 10
        assert all(len(workers) == 1 for workers in found.values()), found
        (placed[group],) = {workers[0] for workers in found.values()}
    assert placed["a"] != placed["b"]
    result.stdout.fnmatch_lines(
        [
            "*= trio_group summary =*",
            f"trio_group 'a' on {placed['a']}: 10 tests (10 passed) in *, 10 at once at most, CPU *% of wall",
            "    *s test_groups.py::test_a[[]*[]]",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(
        [
            f"trio_group 'b' on {placed['b']}: 10 tests (10 passed) in *, 10 at once at most, CPU *% of wall"
        ]
    )


MIXED = """
import pytest, trio

@pytest.mark.trio_group("g")
@pytest.mark.parametrize("n", range(4))
async def test_member(n):
    await trio.sleep(0)
    assert n != 3

@pytest.mark.trio_group("g")
@pytest.mark.skip(reason="not today")
async def test_member_skipped():
    pass

@pytest.mark.trio_group("g")
@pytest.mark.xfail(reason="known")
async def test_member_xfail():
    assert False

@pytest.mark.parametrize("n", range(6))
def test_plain(n):
    assert n != 5

@pytest.mark.skip(reason="later")
def test_plain_skipped():
    pass
"""


def test_totals_and_junit_match_a_run_without_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=MIXED)
    alone = pytester.runpytest().parseoutcomes()
    assert alone == {"failed": 2, "passed": 8, "skipped": 2, "xfailed": 1}
    result = pytester.runpytest("-p", "xdist", "-n", "2", "-v", "--junitxml=junit.xml")
    assert result.parseoutcomes() == alone
    members = workers_by_test(result.outlines, "test_member")
    assert len(members) == 6
    assert len({worker for workers in members.values() for worker in workers}) == 1
    cases = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    ]
    assert len(cases) == len(set(cases)) == 13
    assert {case for case in cases if "member" in case} == {
        *(f"test_mixed::test_member[{n}]" for n in range(4)),
        "test_mixed::test_member_skipped",
        "test_mixed::test_member_xfail",
    }


def test_ungrouped_tests_spread_over_the_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=MIXED)
    result = pytester.runpytest("-p", "xdist", "-n", "2", "-v", "-k", "plain")
    result.assert_outcomes(passed=5, failed=1, skipped=1)
    plain = workers_by_test(result.outlines, "test_plain")
    assert len(plain) == 7
    assert {worker for workers in plain.values() for worker in workers} == {"gw0", "gw1"}


def test_output_no_test_owned_reaches_the_controller(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys, pytest, trio

        @pytest.mark.trio_group("g")
        async def test_subprocess():
            await trio.run_process([sys.executable, "-c", "print('from a subprocess')"])

        @pytest.mark.trio_group("g")
        async def test_fails():
            assert False
        """
    )
    result = pytester.runpytest("-p", "xdist", "-n", "1", "--capture=fd")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- trio_group 'g' on gw0: captured stdout not attributed to a test -*",
            "from a subprocess",
        ]
    )


CRASH = """
import os
import pytest, trio, trio.testing

@pytest.mark.trio_group("crashing", timeout=60)
async def test_done_before():
    pass

@pytest.mark.trio_group("crashing", timeout=60)
@pytest.mark.parametrize("n", range(2))
async def test_waiting(n):
    await trio.sleep_forever()

@pytest.mark.trio_group("crashing", timeout=60)
async def test_exit():
    # Once test_done_before is reported and the others are waiting.
    await trio.testing.wait_all_tasks_blocked()
    os._exit(1)

@pytest.mark.trio_group("fine")
@pytest.mark.parametrize("n", range(3))
async def test_fine(n):
    await trio.sleep(0)
"""


def test_worker_crash_inside_a_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_crash=CRASH)
    result = pytester.runpytest("-p", "xdist", "-n", "2", "-v")
    result.assert_outcomes(passed=4, failed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    crashed = ["test_crash.py::test_exit", *(f"test_crash.py::test_waiting[{n}]" for n in (0, 1))]
    found = workers_by_test(result.outlines, "test_")
    (worker,) = found["test_crash.py::test_exit"]
    # Each in-flight member once in the failures section, as xdist words it.
    failure_lines = [line for line in result.outlines if line.startswith("worker 'gw")]
    assert sorted(failure_lines) == sorted(
        f"worker '{worker}' crashed while running '{nodeid}'" for nodeid in crashed
    )
    assert [word for _, word, nodeid in verdicts(result.outlines) if "done_before" in nodeid] == [
        "PASSED"
    ]
    for nodeid in crashed:
        assert len(found[nodeid]) == 1, nodeid
    fine = {workers[0] for nodeid, workers in found.items() if "test_fine" in nodeid}
    assert len(fine) == 1
    assert fine != {worker}
    result.stdout.fnmatch_lines(["*replacing crashed worker gw*"])


STOPPING = """
import pytest, trio, trio.testing

@pytest.mark.trio_group("stopping")
async def test_fails_once_all_wait():
    await trio.testing.wait_all_tasks_blocked()
    assert False

@pytest.mark.trio_group("stopping")
@pytest.mark.parametrize("n", range(3))
async def test_waiting(n):
    await trio.sleep_forever()
"""


def test_exitfirst_cancels_the_group_on_its_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stop=STOPPING)
    result = pytester.runpytest("-p", "xdist", "-n", "2", "-x", "-rs")
    result.assert_outcomes(failed=1, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]3[]] test_stop.py:8: cancelled: the run is stopping "
            "(stopping after 1 failures)",
            "*stopping after 1 failures*",
        ],
        consecutive=False,
    )


FILES = {
    "test_one": """
import pytest

@pytest.mark.trio_group("across")
async def test_grouped_one():
    pass

@pytest.mark.parametrize("n", range(3))
def test_plain_one(n):
    pass
""",
    "test_two": """
import pytest

@pytest.mark.trio_group("across")
async def test_grouped_two():
    pass

@pytest.mark.parametrize("n", range(3))
def test_plain_two(n):
    pass
""",
}


@pytest.mark.parametrize("dist", ["loadfile", "loadscope"])
def test_loadfile_and_loadscope_keep_files_and_groups_whole(
    pytester: pytest.Pytester, dist: str
) -> None:
    pytester.makepyfile(**FILES)
    result = pytester.runpytest("-p", "xdist", "-n", "2", "-v", "--dist", dist)
    result.assert_outcomes(passed=8)
    found = workers_by_test(result.outlines, "test_")
    by_unit: dict[str, set[str]] = defaultdict(set)
    for nodeid, workers in found.items():
        unit = "across" if "grouped" in nodeid else nodeid.split("::")[0]
        by_unit[unit].update(workers)
    assert sorted(by_unit) == ["across", "test_one.py", "test_two.py"]
    assert all(len(workers) == 1 for workers in by_unit.values()), by_unit
    assert by_unit["test_one.py"] != by_unit["test_two.py"]


def test_dist_each_runs_every_group_whole_on_every_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_groups=TWO_GROUPS)
    result = pytester.runpytest("-p", "xdist", "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=40)
    lines = [line for line in result.outlines if line.startswith("trio_group '")]
    assert sorted(line.split(":")[0] for line in lines) == [
        "trio_group 'a' on gw0",
        "trio_group 'a' on gw1",
        "trio_group 'b' on gw0",
        "trio_group 'b' on gw1",
    ]
    assert all(", 10 at once at most, CPU " in line for line in lines)


ORDER = """
import pytest

@pytest.mark.trio_group("big")
@pytest.mark.parametrize("n", range(3))
async def test_big(n):
    pass

@pytest.mark.trio_group("small")
@pytest.mark.parametrize("n", range(2))
async def test_small(n):
    pass

def test_plain():
    pass
"""


def run_order(lines: list[str]) -> list[str]:
    """Group names (or the test's name) in the order ``-v`` reported them."""
    order: list[str] = []
    for _, _, nodeid in verdicts(lines):
        name = nodeid.split("::")[1].split("[")[0].removeprefix("test_")
        if name not in order:
            order.append(name)
    return order


def test_largest_group_first_without_recorded_durations(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_order=ORDER)
    result = pytester.runpytest("-p", "xdist", "-n", "1", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    assert run_order(result.outlines) == ["big", "small", "plain"]


def test_longest_recorded_work_first(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_order=ORDER)
    cache = pytester.path / ".pytest_cache" / "v" / "trio_group" / "durations"
    cache.parent.mkdir(parents=True)
    cache.write_text(
        json.dumps(
            {
                "tests": {"test_order.py::test_plain": 9.0},
                "groups": {"trio_group 'big'": 1.0, "trio_group 'small'": 5.0},
            }
        )
    )
    result = pytester.runpytest("-p", "xdist", "-n", "1", "-v")
    result.assert_outcomes(passed=6)
    assert run_order(result.outlines) == ["plain", "small", "big"]


def test_a_run_records_durations_for_the_next(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_order=ORDER)
    pytester.runpytest().assert_outcomes(passed=6)
    recorded = json.loads(
        (pytester.path / ".pytest_cache" / "v" / "trio_group" / "durations").read_text()
    )
    assert sorted(recorded["groups"]) == ["trio_group 'big'", "trio_group 'small'"]
    assert sorted(recorded["tests"]) == sorted(
        [
            *(f"test_order.py::test_big[{n}]" for n in range(3)),
            *(f"test_order.py::test_small[{n}]" for n in range(2)),
            "test_order.py::test_plain",
        ]
    )
    assert all(seconds >= 0 for seconds in recorded["tests"].values())


def test_a_session_without_groups_records_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    pytester.runpytest().assert_outcomes(passed=1)
    assert not (pytester.path / ".pytest_cache" / "v" / "trio_group").exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_remote_worker_over_a_socket(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_groups=TWO_GROUPS)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "execnet.script.socketserver", f"127.0.0.1:{port}"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # The server takes one connection at a time and drops one
                # that sends nothing.
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        # In a subprocess: execnet leaves its socket to the garbage collector.
        result = pytester.runpytest_subprocess(
            "-p",
            "xdist",
            "--tx",
            f"socket=127.0.0.1:{port}//chdir={pytester.path}",
            "--tx",
            "popen",
            "--dist",
            "load",
            "-v",
            timeout=120,
        )
    finally:
        server.kill()
        server.wait(timeout=30)
    result.assert_outcomes(passed=20)
    placed = set()
    for group in ("a", "b"):
        found = workers_by_test(result.outlines, f"test_{group}[")
        assert len(found) == 10
        (worker,) = {workers[0] for workers in found.values()}
        placed.add(worker)
    assert placed == {"gw0", "gw1"}
    result.stdout.fnmatch_lines(["*socket=127.0.0.1:*chdir=*", "*2 workers [[]20 items[]]*"])


def test_xdist_internals_we_rely_on() -> None:
    """The private parts of pytest-xdist named in ``_plugins/xdist.py`` (3.8.0)."""
    from xdist import remote, workermanage

    controller = workermanage.WorkerController
    assert callable(controller.process_from_remote)
    assert callable(controller.sendcommand)
    setup = inspect.getsource(controller.setup)
    assert setup.index("pytest_configure_node") < setup.index(
        "setcallback(self.process_from_remote"
    )
    interactor = remote.WorkerInteractor
    assert callable(interactor.sendevent)
    assert "setcallback(self.handle_command" in inspect.getsource(interactor.pytest_runtestloop)
    assert "self.item_index = " in inspect.getsource(interactor.run_one_test)
    assert "item_index=self.item_index" in inspect.getsource(interactor.run_one_test)
    assert 'data["item_index"] = self.item_index' in inspect.getsource(
        interactor.pytest_runtest_logreport
    )
    assert 'kwargs["indices"]' in inspect.getsource(interactor.handle_command)


def test_a_scheduler_from_a_conftest_wins_and_members_run_one_by_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        from xdist.scheduler import LoadScheduling

        def pytest_xdist_make_scheduler(config, log):
            return LoadScheduling(config, log)
        """
    )
    pytester.makepyfile(test_groups=TWO_GROUPS.replace("== 10", "== 1"))
    result = pytester.runpytest("-p", "xdist", "-n", "2", "-v")
    result.assert_outcomes(passed=20)
    result.stdout.fnmatch_lines(["scheduling tests via LoadScheduling"])
    found = workers_by_test(result.outlines, "test_")
    assert len(found) == 20
    assert all(len(workers) == 1 for workers in found.values())
    lines = [line for line in result.outlines if line.startswith("trio_group '")]
    assert len(lines) == 20
    assert all(": 1 test (1 passed)" in line for line in lines)


def test_a_group_leaves_set_up_only_what_the_worker_runs_next(pytester: pytest.Pytester) -> None:
    # In collection order test_solo is followed by test_a_plain, but the
    # recorded durations make the worker run test_b_plain after it.
    pytester.makepyfile(
        **{
            "pkg_a/test_a": """
                import pytest

                @pytest.mark.trio_group("solo")
                async def test_solo():
                    pass

                def test_a_plain():
                    pass
                """,
            "pkg_b/test_b": """
                import pytest

                @pytest.mark.trio_group("pair")
                async def test_1():
                    pass

                @pytest.mark.trio_group("pair")
                async def test_2():
                    pass

                def test_b_plain():
                    pass
                """,
        }
    )
    cache = pytester.path / ".pytest_cache" / "v" / "trio_group" / "durations"
    cache.parent.mkdir(parents=True)
    cache.write_text(
        json.dumps(
            {
                "tests": {
                    "pkg_a/test_a.py::test_a_plain": 9.0,
                    "pkg_a/test_a.py::test_solo": 1.0,
                    "pkg_b/test_b.py::test_b_plain": 0.0,
                },
                "groups": {"trio_group 'pair'": 5.0},
            }
        )
    )
    result = pytester.runpytest("-p", "xdist", "-n", "1", "-v")
    result.assert_outcomes(passed=5)
    assert [nodeid for _, _, nodeid in verdicts(result.outlines)][-2:] == [
        "pkg_a/test_a.py::test_solo",
        "pkg_b/test_b.py::test_b_plain",
    ]


#: A plugin standing in for pytest-xdist's CPU count: this machine "has" 2 CPUs.
TWO_CPUS = """
import pytest

@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    return 2
"""


@pytest.mark.parametrize(
    ("args", "env", "workers"),
    [
        pytest.param(("-o", "trio_group_by=module"), {}, 3, id="grouped"),
        pytest.param(("--trio-group-by=class",), {}, 3, id="grouped-on-the-command-line"),
        pytest.param((), {}, 2, id="not-grouped"),
        pytest.param(
            ("-o", "trio_group_by=module"),
            {"PYTEST_XDIST_AUTO_NUM_WORKERS": "2"},
            2,
            id="count-set-by-the-user",
        ),
        pytest.param(
            ("-o", "trio_group_by=module", "--maxprocesses=2"), {}, 2, id="capped-by-maxprocesses"
        ),
    ],
)
def test_n_auto_starts_more_workers_than_cpus_when_tests_are_grouped(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    workers: int,
) -> None:
    pytester.makeconftest(TWO_CPUS)
    pytester.makepyfile(
        test_waits="""
        import trio

        async def test_a():
            await trio.sleep(0.05)

        async def test_b():
            await trio.sleep(0.05)
        """
    )
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = pytester.runpytest("-p", "xdist", "-n", "auto", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"created: {workers}/{workers} workers"])
    header = (
        "trio-groups: -n auto starts 3 workers for 2 CPUs, as trio_group_by groups tests "
        "that mostly wait (-n N or PYTEST_XDIST_AUTO_NUM_WORKERS sets the number)"
    )
    if workers == 3:
        assert header in result.outlines
    else:
        assert not any(line.startswith("trio-groups: -n auto") for line in result.outlines)


def test_n_auto_with_a_bad_trio_group_by_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("async def test_a():\n    pass\n")
    result = pytester.runpytest("-p", "xdist", "-n", "auto", "-o", "trio_group_by=modules")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: trio_group_by must be one of none, module, class, session, got 'modules'"]
    )
