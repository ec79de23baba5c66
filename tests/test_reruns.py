"""pytest-rerunfailures reruns a failed member in its group (P6)."""

from __future__ import annotations

import pytest

SUITE = """
    import pytest, trio

    ATTEMPTS = {"flaky": 0, "broken": 0, "sibling": 0}
    FIXTURES = []
    THIRD_ATTEMPT = trio.Event()

    @pytest.fixture
    def fresh():
        FIXTURES.append("setup")
        yield []
        FIXTURES.append("teardown")

    @pytest.mark.trio_group("g")
    async def test_flaky(fresh):
        ATTEMPTS["flaky"] += 1
        fresh.append(ATTEMPTS["flaky"])
        assert len(fresh) == 1
        await trio.sleep(0)
        if ATTEMPTS["flaky"] < 3:
            raise ConnectionError(f"attempt {ATTEMPTS['flaky']}")
        THIRD_ATTEMPT.set()

    @pytest.mark.trio_group("g")
    async def test_broken():
        ATTEMPTS["broken"] += 1
        raise ConnectionError("always")

    @pytest.mark.trio_group("g", timeout=10)
    async def test_sibling():
        ATTEMPTS["sibling"] += 1
        # Reruns happen inside the group: this member is still running.
        await THIRD_ATTEMPT.wait()

    def test_counts():
        assert ATTEMPTS == {"flaky": 3, "broken": 3, "sibling": 1}
        assert FIXTURES == ["setup", "teardown"] * 3
"""


def test_reruns_option_reruns_failed_members_in_their_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-v", "--reruns=2")
    assert result.parseoutcomes() == {"passed": 3, "failed": 1, "rerun": 4}
    result.stdout.fnmatch_lines(["*= 1 failed, 3 passed, 4 rerun in *"])
    # The verbose lines only: each starts with the node id.
    lines = [
        line for line in result.stdout.lines if line.startswith("test_") and "::test_flaky " in line
    ]
    assert [line.split()[1] for line in lines] == ["RERUN", "RERUN", "PASSED"]
    lines = [
        line
        for line in result.stdout.lines
        if line.startswith("test_") and "::test_broken " in line
    ]
    assert [line.split()[1] for line in lines] == ["RERUN", "RERUN", "FAILED"]
    result.stdout.fnmatch_lines(["trio_group 'g': 3 tests (1 failed, 2 passed, 4 rerun) in *"])


def test_flaky_mark_delay_and_only_rerun(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        ATTEMPTS = {"value": 0, "type": 0, "marked": 0}

        @pytest.mark.trio_group("g")
        async def test_value_error():
            ATTEMPTS["value"] += 1
            if ATTEMPTS["value"] == 1:
                raise ValueError("first time")

        @pytest.mark.trio_group("g")
        async def test_type_error():
            ATTEMPTS["type"] += 1
            raise TypeError("never retried")

        @pytest.mark.trio_group("g")
        @pytest.mark.flaky(reruns=3, reruns_delay=0.01)
        async def test_marked():
            ATTEMPTS["marked"] += 1
            if ATTEMPTS["marked"] < 4:
                raise ValueError(f"attempt {ATTEMPTS['marked']}")

        def test_counts():
            assert ATTEMPTS == {"value": 2, "type": 1, "marked": 4}
        """
    )
    result = pytester.runpytest(
        "-rR", "--reruns=1", "--reruns-delay=0.01", "--only-rerun=ValueError"
    )
    # The mark's reruns win over --reruns; --only-rerun applies to both.
    assert result.parseoutcomes() == {"passed": 3, "failed": 1, "rerun": 4}
    result.stdout.fnmatch_lines(
        [
            "*= rerun test summary info =*",
            "RERUN *::test_value_error",
            "PASSED *::test_value_error",
        ]
    )


def test_flaky_mark_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        ATTEMPTS = []

        @pytest.fixture
        def marker(request):
            return request.node.execution_count

        @pytest.mark.trio_group("g")
        @pytest.mark.flaky(reruns=2)
        async def test_marked(marker):
            ATTEMPTS.append(marker)
            assert len(ATTEMPTS) == 3

        @pytest.mark.trio_group("g")
        async def test_sibling():
            await trio.sleep(0)

        def test_attempts():
            assert ATTEMPTS == [1, 2, 3]
        """
    )
    result = pytester.runpytest()
    assert result.parseoutcomes() == {"passed": 3, "rerun": 2}
    result.stdout.fnmatch_lines(["*= 3 passed, 2 rerun in *"])


def test_timed_out_member_is_rerun_with_a_fresh_deadline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, trio

        ATTEMPTS = []

        @pytest.mark.trio_group("g", timeout=0.2)
        @pytest.mark.flaky(reruns=1)
        async def test_hangs_once():
            ATTEMPTS.append(1)
            if len(ATTEMPTS) == 1:
                await trio.sleep_forever()

        @pytest.mark.trio_group("g")
        @pytest.mark.flaky(reruns=2, condition=False)
        async def test_condition_false():
            raise ValueError("not retried")

        @pytest.mark.trio_group("g")
        @pytest.mark.flaky(reruns=2)
        async def test_excepted():
            raise KeyError("not retried either")
        """
    )
    result = pytester.runpytest("-rR", "--fail-on-flaky", "--rerun-except=KeyError")
    assert result.parseoutcomes() == {"passed": 1, "failed": 2, "rerun": 1}
    result.stdout.fnmatch_lines(
        ["RERUN *::test_hangs_once", "PASSED *::test_hangs_once"], consecutive=True
    )
    result.stdout.no_fnmatch_line("RERUN *::test_condition_false")
    result.stdout.no_fnmatch_line("RERUN *::test_excepted")
    assert result.ret == 1

    pytester.makepyfile(
        """
        import pytest, trio

        ATTEMPTS = []

        @pytest.mark.trio_group("g")
        @pytest.mark.flaky(reruns=1)
        async def test_flaky():
            ATTEMPTS.append(1)
            assert len(ATTEMPTS) == 2
        """
    )
    result = pytester.runpytest("--fail-on-flaky")
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}
    assert result.ret == 7


def test_rerun_delay_is_real_seconds_under_a_virtual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        import pytest, trio

        STARTS = []

        @pytest.mark.trio_group("g")
        @pytest.mark.flaky(reruns=1, reruns_delay=0.3)
        async def test_flaky(autojump_clock):
            STARTS.append(time.monotonic())
            await trio.sleep(3600)
            assert len(STARTS) == 2

        def test_waited():
            assert STARTS[1] - STARTS[0] >= 0.3
        """
    )
    result = pytester.runpytest()
    assert result.parseoutcomes() == {"passed": 2, "rerun": 1}


needs_pytest_trio = pytest.mark.skipif(
    not __import__("conftest").HAVE_PYTEST_TRIO, reason="pytest-trio is not installed"
)

#: The same file runs grouped, and one test at a time by pytest-trio with
#: ``-p no:trio_groups``: the second run is what the first must match.
ORACLE_INI = (
    "[pytest]\ntrio_mode = true\nmarkers =\n    trio_group: grouped by pytest-trio-groups\n"
)


def rerun_lines(result: pytest.RunResult) -> list[str]:
    """The ``-rR`` summary lines, sorted: group members finish in no fixed order."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "rerun test summary info" in line)
    return sorted(
        line for line in lines[start + 1 :] if line.startswith(("RERUN ", "FAILED ", "PASSED "))
    )


ALWAYS_FAILING = """
    import pytest, trio

    @pytest.mark.trio_group("g")
    @pytest.mark.flaky(reruns=5)
    async def test_marked_more():
        await trio.sleep(0)
        assert False

    @pytest.mark.trio_group("g")
    @pytest.mark.flaky(reruns=0)
    async def test_marked_none():
        await trio.sleep(0)
        assert False

    @pytest.mark.trio_group("g")
    async def test_unmarked():
        await trio.sleep(0)
        assert False

    def test_plain():
        assert False
"""


@needs_pytest_trio
@pytest.mark.parametrize(
    ("forced", "outcomes"),
    [("2", {"failed": 4, "rerun": 8}), ("0", {"failed": 4})],
)
def test_force_reruns_overrides_marks_for_members_as_for_plain_tests(
    pytester: pytest.Pytester, forced: str, outcomes: dict[str, int]
) -> None:
    pytester.makeini(ORACLE_INI)
    pytester.makepyfile(ALWAYS_FAILING)
    args = ("-rR", f"--force-reruns={forced}", "--reruns=4")
    grouped = pytester.runpytest(*args)
    alone = pytester.runpytest(*args, "-p", "no:trio_groups")
    # --force-reruns wins over every mark and over --reruns, also when it is 0.
    assert grouped.parseoutcomes() == alone.parseoutcomes() == outcomes
    if forced != "0":
        assert rerun_lines(grouped) == rerun_lines(alone)
        marked_none = [line for line in rerun_lines(grouped) if line.endswith("::test_marked_none")]
        assert [line.split()[0] for line in marked_none] == ["FAILED", "RERUN", "RERUN"]
    grouped.stdout.fnmatch_lines(
        [f"trio_group 'g': 3 tests (3 failed{', 6 rerun' if forced != '0' else ''}) in *"]
    )


MANY_FAILING = """
    import pytest, trio

    @pytest.mark.trio_group("g")
    async def test_a():
        await trio.sleep(0)
        assert False

    @pytest.mark.trio_group("g")
    async def test_b():
        await trio.sleep(0)
        assert False

    @pytest.mark.trio_group("g")
    async def test_c():
        await trio.sleep(0)
        assert False

    def test_plain():
        assert False
"""


@needs_pytest_trio
@pytest.mark.parametrize("limit", [0, 3, 7, 20])
def test_max_suite_reruns_counts_members_and_plain_tests_together(
    pytester: pytest.Pytester, limit: int
) -> None:
    pytester.makeini(ORACLE_INI)
    pytester.makepyfile(MANY_FAILING)
    args = ("--reruns=2", f"--max-suite-reruns={limit}")
    grouped = pytester.runpytest(*args)
    alone = pytester.runpytest(*args, "-p", "no:trio_groups")
    reruns = min(limit, 8)
    expected = {"failed": 4, "rerun": reruns} if reruns else {"failed": 4}
    assert grouped.parseoutcomes() == alone.parseoutcomes() == expected


@needs_pytest_trio
def test_max_suite_reruns_a_teardown_error_is_rerun_as_for_a_plain_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(ORACLE_INI)
    pytester.makepyfile(
        """
        import pytest, trio

        LOG = []

        @pytest.fixture(scope="module")
        def shared():
            LOG.append("module setup")
            yield
            LOG.append("module teardown")

        @pytest.fixture
        def breaks_on_teardown():
            yield
            LOG.append("teardown error")
            raise RuntimeError("teardown")

        @pytest.mark.trio_group("g")
        async def test_teardown_fails(shared, breaks_on_teardown):
            await trio.sleep(0)

        def test_log():
            # One slot: one rerun of the failed teardown, in the same module setup.
            assert LOG == ["module setup", "teardown error", "teardown error"]
        """
    )
    args = ("--reruns=2", "--max-suite-reruns=1")
    grouped = pytester.runpytest(*args)
    alone = pytester.runpytest(*args, "-p", "no:trio_groups")
    expected = {"passed": 3, "errors": 1, "rerun": 1}
    assert grouped.parseoutcomes() == alone.parseoutcomes() == expected


def test_max_suite_reruns_is_one_limit_across_xdist_workers(pytester: pytest.Pytester) -> None:
    # A group per module, so that each worker runs one and both draw on the
    # one limit. (No plain test: on pytest 8.4, pytest-rerunfailures' own
    # rerun loop for one, racing the other worker for the last rerun, left
    # its module set up in about one run in five -- "previous item was not
    # torn down properly" at the next plain test.)
    for module in ("a", "b"):
        source = MANY_FAILING.replace('"g"', f'"g_{module}"')
        pytester.makepyfile(**{f"test_{module}": source.split("    def test_plain")[0]})
    result = pytester.runpytest(
        "-p", "xdist", "-n", "2", "--reruns=2", "--max-suite-reruns=3", "-v"
    )
    assert result.parseoutcomes() == {"failed": 6, "rerun": 3}
    workers = {line.split("]")[0] for line in result.outlines if line.startswith("[gw")}
    assert workers == {"[gw0", "[gw1"}


@needs_pytest_trio
def test_a_teardown_error_that_rules_a_rerun_out_takes_no_suite_rerun(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(ORACLE_INI)
    pytester.makepyfile(
        """
        import pytest, trio

        TORN_DOWN = []
        ATTEMPTS = []

        @pytest.fixture
        def key_error_on_teardown():
            # A sync fixture sees no trio run: a flag, not a trio.Event.
            yield
            TORN_DOWN.append(True)
            raise KeyError("not to be rerun")

        @pytest.mark.trio_group("g")
        async def test_call_and_teardown_fail(key_error_on_teardown):
            await trio.sleep(0)
            raise ValueError("call")

        @pytest.mark.trio_group("g")
        async def test_flaky():
            ATTEMPTS.append(1)
            while not TORN_DOWN:
                await trio.sleep(0.001)
            assert len(ATTEMPTS) == 2
        """
    )
    # The teardown's KeyError is --rerun-except: the first test is not rerun,
    # so the one rerun --max-suite-reruns allows is left for the second.
    args = ("-rR", "--reruns=2", "--max-suite-reruns=1", "--rerun-except=KeyError")
    grouped = pytester.runpytest(*args)
    alone = pytester.runpytest(*args, "-p", "no:trio_groups")
    expected = {"passed": 1, "failed": 1, "errors": 1, "rerun": 1}
    assert grouped.parseoutcomes() == alone.parseoutcomes() == expected
    assert rerun_lines(grouped) == rerun_lines(alone)
    grouped.stdout.fnmatch_lines(["RERUN *::test_flaky", "PASSED *::test_flaky"])
