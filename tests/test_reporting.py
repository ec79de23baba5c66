"""Every member gets its own honest pytest reports, streamed as it finishes (P2)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

MIXED = """
import pytest, trio

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup exploded")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown exploded")

pytestmark = pytest.mark.trio_group("mixed", timeout=5)

async def test_pass():
    await trio.sleep(0)

async def test_fail():
    await trio.sleep(0)
    assert 1 + 1 == 3, "arithmetic in test_fail"

async def test_error_in_setup(broken_setup):
    raise AssertionError("never runs")

async def test_error_in_teardown(broken_teardown):
    await trio.sleep(0)

async def test_skip_inside():
    pytest.skip("skipped from inside")

@pytest.mark.skip(reason="skipped by mark")
async def test_skip_mark():
    raise AssertionError("never runs")

@pytest.mark.xfail(reason="known bug")
async def test_xfail():
    assert False

@pytest.mark.xfail(reason="fixed bug")
async def test_xpass():
    pass

async def test_xfail_inside():
    pytest.xfail("gave up inside")
"""


def test_mixed_outcomes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXED)
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=2, failed=1, errors=2, skipped=2, xfailed=2, xpassed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_fail _*",
            '*assert 1 + 1 == 3, "arithmetic in test_fail"',
            "E * AssertionError: arithmetic in test_fail",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_error_in_setup _*",
            '*raise RuntimeError("setup exploded")',
            "E * RuntimeError: setup exploded",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at teardown of test_error_in_teardown _*",
            '*raise RuntimeError("teardown exploded")',
            "E * RuntimeError: teardown exploded",
        ]
    )
    for line in [
        "SKIPPED [[]1[]] test_mixed_outcomes.py:*: skipped from inside",
        "SKIPPED [[]1[]] test_mixed_outcomes.py:*: skipped by mark",
        "XFAIL test_mixed_outcomes.py::test_xfail - known bug",
        "XFAIL test_mixed_outcomes.py::test_xfail_inside - gave up inside",
        "XPASS test_mixed_outcomes.py::test_xpass - fixed bug",
        "PASSED test_mixed_outcomes.py::test_error_in_teardown",
        "ERROR test_mixed_outcomes.py::test_error_in_teardown - RuntimeError: teardown*",
    ]:
        result.stdout.fnmatch_lines([line])


def test_each_member_reported_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXED)
    pytester.makeconftest(
        """
        import collections
        STARTS = collections.Counter()
        FINISHES = collections.Counter()
        PHASES = collections.defaultdict(list)

        def pytest_runtest_logstart(nodeid):
            STARTS[nodeid] += 1

        def pytest_runtest_logreport(report):
            PHASES[report.nodeid].append(report.when)

        def pytest_runtest_logfinish(nodeid):
            FINISHES[nodeid] += 1

        def pytest_sessionfinish(session):
            for item in session.items:
                phases = PHASES[item.nodeid]
                expected = (
                    ["setup", "teardown"] if phases and phases[0] == "setup" and len(phases) == 2
                    else ["setup", "call", "teardown"]
                )
                assert STARTS[item.nodeid] == FINISHES[item.nodeid] == 1
                assert phases == expected, (item.nodeid, phases)
            print("every member reported once:", len(session.items))
        """
    )
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines(["*every member reported once: 9"])


def test_reports_stream_as_members_finish(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import trio

        LOGGED = []
        SLOW_MAY_FINISH = trio.Event()

        def pytest_runtest_logreport(report):
            if report.when == "teardown":
                LOGGED.append(report.nodeid.split("::")[-1])
                if report.nodeid.endswith("test_fast"):
                    SLOW_MAY_FINISH.set()
        """
    )
    pytester.makepyfile(
        """
        import pytest
        from conftest import LOGGED, SLOW_MAY_FINISH

        @pytest.mark.trio_group("g", timeout=5)
        async def test_slow():
            # Finishes only after test_fast's report has reached the hooks.
            await SLOW_MAY_FINISH.wait()
            assert LOGGED == ["test_fast"]

        @pytest.mark.trio_group("g", timeout=5)
        async def test_fast():
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_junitxml_has_one_testcase_per_member_with_its_own_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g")
        async def test_short():
            await trio.sleep(0.01)

        @pytest.mark.trio_group("g")
        async def test_long():
            await trio.sleep(0.3)

        @pytest.mark.trio_group("g")
        async def test_failing():
            assert 0
        """
    )
    pytester.runpytest("--junitxml=out.xml")
    root = ET.parse(pytester.path / "out.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert sorted(cases) == ["test_failing", "test_long", "test_short"]
    assert float(cases["test_long"].get("time", 0)) >= 0.3
    assert float(cases["test_short"].get("time", 1)) < 0.3
    assert cases["test_failing"].find("failure") is not None
    assert cases["test_short"].find("failure") is None


def test_durations_are_per_member(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        @pytest.mark.trio_group("g")
        async def test_long():
            await trio.sleep(0.3)

        @pytest.mark.trio_group("g")
        async def test_short():
            pass
        """
    )
    result = pytester.runpytest("--durations=0", "-vv")
    result.stdout.fnmatch_lines(["0.3*s call *::test_long"])
    result.stdout.no_fnmatch_line("0.3*s call *::test_short")


def test_last_failed_reruns_only_the_failed_member(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.trio_group("g")
        async def test_ok():
            pass

        @pytest.mark.trio_group("g")
        async def test_broken():
            assert 0
        """
    )
    pytester.runpytest().assert_outcomes(passed=1, failed=1)
    result = pytester.runpytest("--lf", "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*::test_broken FAILED*"])
    result.stdout.no_fnmatch_line("*test_ok*")
