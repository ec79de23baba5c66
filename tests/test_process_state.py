"""Process-wide state each member sees as its own: random draws, PYTEST_CURRENT_TEST, coverage contexts (P6)."""

from __future__ import annotations

import json
import sys

import pytest

RANDOMLY = ("-p", "randomly")

DRAWS = """
import json, random, pytest, trio

@pytest.fixture
async def background():
    # An async generator fixture runs in a task of its own, the test's too.
    values = [random.random()]
    await trio.lowlevel.checkpoint()
    yield values
    await trio.lowlevel.checkpoint()
    values.append(random.random())

@pytest.fixture
def drawn(request, background):
    values = [random.random()]
    yield values
    values.append(random.random())
    with open(f"draws-{request.node.callspec.id}.json", "w") as f:
        json.dump(values + background, f)

@pytest.mark.trio_group("g")
@pytest.mark.parametrize("n", range(3))
async def test_draws(n, drawn):
    for _ in range(3):
        drawn.append(random.random())
        await trio.lowlevel.checkpoint()
"""


def _draws(pytester: pytest.Pytester) -> dict[str, list[float]]:
    return {path.stem: json.loads(path.read_text()) for path in pytester.path.glob("draws-*.json")}


def test_randomly_draws_are_the_same_as_the_test_run_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_draws=DRAWS)
    grouped = pytester.runpytest(*RANDOMLY, "--randomly-seed=1234", "-v")
    grouped.assert_outcomes(passed=3)
    grouped.stdout.fnmatch_lines(["Using --randomly-seed=1234"])
    together = _draws(pytester)
    assert len(together) == 3
    for n in range(3):
        alone = pytester.runpytest(
            *RANDOMLY, "--randomly-seed=1234", f"test_draws.py::test_draws[{n}]"
        )
        alone.assert_outcomes(passed=1)
        # setup, three calls and teardown: pytest-randomly's reseeds per phase hold
        assert _draws(pytester)[f"draws-{n}"] == together[f"draws-{n}"]
    assert len({tuple(values) for values in together.values()}) == 3


SCHEDULE = """
import pytest, trio

ORDER = []

@pytest.mark.trio_group("g")
@pytest.mark.parametrize("n", range(4))
async def test_steps(n):
    for _ in range(8):
        ORDER.append(n)
        await trio.lowlevel.checkpoint()

def test_zz_write_order():
    with open("order.txt", "a") as f:
        f.write("".join(map(str, ORDER)) + "\\n")
"""


def test_same_randomly_seed_gives_the_same_trio_schedule(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_schedule=SCHEDULE)
    for seed in ("7", "7", "8"):
        result = pytester.runpytest(*RANDOMLY, f"--randomly-seed={seed}", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=5)
    first, second, other = (pytester.path / "order.txt").read_text().splitlines()
    assert len(first) == 32
    assert first == second
    # trio shuffles each batch of runnable tasks: the seed decides how.
    assert other != first


def test_shuffling_never_splits_a_group(pytester: pytest.Pytester) -> None:
    for module in "abc":
        pytester.makepyfile(
            **{
                f"test_{module}": """
                import pytest

                @pytest.mark.trio_group("shared")
                async def test_member():
                    pass

                def test_plain_1():
                    pass

                def test_plain_2():
                    pass
                """
            }
        )
    for seed in (1, 2, 3):
        args = (*RANDOMLY, f"--randomly-seed={seed}", "--collect-only", "-q")
        members = [f"test_{module}.py::test_member" for module in "abc"]
        # Without this plugin, pytest-randomly's shuffle scatters the members...
        scattered = pytester.runpytest(*args, "-p", "no:trio_groups").stdout.lines[:9]
        positions = sorted(scattered.index(member) for member in members)
        assert positions[-1] - positions[0] > 2
        # ...with it, they stay together, in the shuffled order of the modules.
        ordered = pytester.runpytest(*args).stdout.lines[:9]
        positions = sorted(ordered.index(member) for member in members)
        assert positions[-1] - positions[0] == 2
        assert set(ordered) == set(scattered)


def test_pytest_current_test_names_the_member_and_its_phase(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import os

        def pytest_unconfigure():
            # pytest's runner removes it after each test's teardown.
            with open("after-run.txt", "w") as f:
                f.write(os.environ.get("PYTEST_CURRENT_TEST", "<unset>"))
        """
    )
    pytester.makepyfile(
        test_current="""
        import os, pytest, trio

        SEEN = {}

        def seen(request):
            return SEEN.setdefault(request.node.name, [])

        @pytest.fixture
        async def resource(request):
            seen(request).append(os.environ["PYTEST_CURRENT_TEST"])
            yield
            await trio.lowlevel.checkpoint()
            seen(request).append(os.environ["PYTEST_CURRENT_TEST"])

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(3))
        async def test_member(n, resource, request):
            for _ in range(2):
                seen(request).append(os.environ["PYTEST_CURRENT_TEST"])
                await trio.lowlevel.checkpoint()

        def test_after():
            assert os.environ["PYTEST_CURRENT_TEST"] == "test_current.py::test_after (call)"
            for n in range(3):
                nodeid = f"test_current.py::test_member[{n}]"
                assert SEEN[f"test_member[{n}]"] == [
                    f"{nodeid} (setup)",
                    f"{nodeid} (call)",
                    f"{nodeid} (call)",
                    f"{nodeid} (teardown)",
                ]
        """,
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=4)
    assert (pytester.path / "after-run.txt").read_text() == "<unset>"


APP = """
def first():
    total = 0
    for step in range(3):
        total += step
    return total

def second():
    text = ""
    for step in range(3):
        text += str(step)
    return text

def prepared():
    return "ready"
"""

MEMBERS = """
import pytest, trio
import app

@pytest.fixture
def resource():
    return app.prepared()

@pytest.mark.trio_group("g")
async def test_first(resource):
    for _ in range(3):
        app.first()
        await trio.lowlevel.checkpoint()

@pytest.mark.trio_group("g")
async def test_second():
    for _ in range(3):
        app.second()
        await trio.lowlevel.checkpoint()
"""


def _function_lines(source: str, name: str) -> set[int]:
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    body = set()
    for number, line in enumerate(lines[start + 1 :], start + 2):
        if not line.startswith("    "):
            break
        body.add(number)
    return body


def test_coverage_contexts_credit_each_member(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_cov")
    from coverage import CoverageData

    pytester.makepyfile(app=APP, test_members=MEMBERS)
    result = pytester.runpytest_subprocess(
        "--cov=app", "--cov-context=test", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    data = CoverageData(basename=str(pytester.path / ".coverage"))
    data.read()
    by_line = data.contexts_by_lineno(str(pytester.path / "app.py"))
    expected = {
        "first": {"test_members.py::test_first|run"},
        "second": {"test_members.py::test_second|run"},
        "prepared": {"test_members.py::test_first|setup"},
    }
    for function, contexts in expected.items():
        for line in _function_lines(APP.lstrip("\n"), function):
            assert set(by_line[line]) == contexts, (function, line, by_line[line])


def test_no_per_member_state_without_the_plugins(pytester: pytest.Pytester) -> None:
    """Without pytest-randomly and pytest-cov, neither's support module is imported."""
    pytester.makepyfile(
        """
        import sys, pytest

        @pytest.mark.trio_group("g")
        async def test_member():
            loaded = [m for m in sys.modules if m.startswith("pytest_trio_groups._plugins.")]
            assert "pytest_trio_groups._plugins.randomly" not in loaded
            assert "pytest_trio_groups._plugins.coverage" not in loaded
        """
    )
    for module in ("pytest_trio_groups._plugins.randomly", "pytest_trio_groups._plugins.coverage"):
        sys.modules.pop(module, None)
    pytester.runpytest().assert_outcomes(passed=1)
