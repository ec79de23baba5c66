"""Nothing a member patches with monkeypatch or unittest.mock outlives its group (P6)."""

from __future__ import annotations

import pytest

SETTINGS = """
MODE = "original"

def connect():
    return "real connection"
"""

CONFTEST = """
import pytest, trio

A_PATCHED = trio.Event()
B_PATCHED = trio.Event()
A_DONE = trio.Event()

@pytest.fixture
async def a_done():
    # Set up before monkeypatch and mocker, so torn down after their undos;
    # async, so that it runs in the group's trio run (sync fixtures see none).
    yield
    A_DONE.set()
"""

# test_a patches, test_b patches over it, test_a ends and undoes, then
# test_b undoes: each undo puts back what it found, so test_a's patches come
# back for good.
OVERLAPPING = """
import os, sys, pytest
from unittest import mock
import settings
from conftest import A_PATCHED, B_PATCHED, A_DONE

def patch_all(name, monkeypatch, mocker, tmp_path):
    monkeypatch.setenv("APP_MODE", name)
    monkeypatch.setattr(settings, "MODE", name)
    mocker.patch.object(settings, "connect", return_value=f"fake {name}")
    mocker.patch.dict(os.environ, {"APP_DICT": name})
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

@pytest.mark.trio_group("g")
async def test_a(a_done, monkeypatch, mocker, tmp_path):
    patch_all("a", monkeypatch, mocker, tmp_path)
    A_PATCHED.set()
    await B_PATCHED.wait()

@pytest.mark.trio_group("g")
async def test_b(monkeypatch, mocker, tmp_path):
    await A_PATCHED.wait()
    patch_all("b", monkeypatch, mocker, tmp_path)
    with mock.patch("settings.MODE", "b, nested"):
        assert settings.MODE == "b, nested"
    B_PATCHED.set()
    await A_DONE.wait()

def test_after_the_group(pytestconfig):
    assert "APP_MODE" not in os.environ
    assert "APP_DICT" not in os.environ
    assert settings.MODE == "original"
    assert settings.connect() == "real connection"
    assert os.getcwd() == str(pytestconfig.rootpath)
    assert not any(path.endswith(("test_a0", "test_b0")) for path in sys.path)
"""


def _leftover(target: str) -> str:
    target = target.replace("[", "[[]")
    return (
        f"*test_overlap.py:*: PytestWarning: trio_group 'g': {target} was still patched after the group ended "
        "(patched by test_overlap.py::test_a, test_overlap.py::test_b, whose undos did not "
        "nest); restored to its value from before the group"
    )


LEFTOVERS = [
    "os.environ['APP_MODE']",
    "os.environ['APP_DICT']",
    "settings.MODE",
    "settings.connect",
    "the current directory",
    "sys.path",
]


def test_patches_of_overlapping_members_are_undone_after_the_group(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(settings=SETTINGS, test_overlap=OVERLAPPING)
    # The overlapping patches also give shared-state warnings while the
    # group runs (tests/test_hazards.py); here only what is left after it counts.
    result = pytester.runpytest("-p", "no:cacheprovider", "--trio-group-hazards=off")
    result.assert_outcomes(passed=3, warnings=len(LEFTOVERS))
    result.stdout.fnmatch_lines(["*warnings summary*", "test_overlap.py::test_a"])
    for target in LEFTOVERS:
        result.stdout.fnmatch_lines([_leftover(target)])


def test_leftover_warning_under_an_error_filter_is_still_a_warning(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(settings=SETTINGS, test_overlap=OVERLAPPING)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-W", "error::pytest.PytestWarning", "--trio-group-hazards=off"
    )
    result.assert_outcomes(passed=3, warnings=len(LEFTOVERS))
    result.stdout.fnmatch_lines([_leftover("os.environ['APP_MODE']")])
    assert "INTERNALERROR" not in result.stdout.str()


def test_nested_patches_and_a_wider_fixtures_patch_are_left_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        settings=SETTINGS,
        test_nested="""
        import os, pytest, trio
        import settings

        @pytest.fixture(scope="module")
        def feature():
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(settings, "MODE", "module-wide")
                yield

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(3))
        async def test_member(n, feature, monkeypatch, mocker):
            monkeypatch.setenv("APP_MODE", str(n))
            mocker.patch.object(settings, "connect")
            mocker.patch.dict(os.environ, {"APP_DICT": str(n)}, clear=n == 2)
            monkeypatch.setattr(settings, "MODE", f"member {n}")
            await trio.lowlevel.checkpoint()

        def test_module_fixture_still_applies(feature):
            assert settings.MODE == "module-wide"
            assert settings.connect() == "real connection"
            assert "APP_MODE" not in os.environ
            assert "APP_DICT" not in os.environ
        """,
    )
    # Members start and end in order here, so their undos nest.
    result = pytester.runpytest("-p", "no:cacheprovider", "--trio-group-limit=1")
    result.assert_outcomes(passed=4, warnings=0)


def test_syspath_prepend_undone_in_time_is_no_leftover(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys
        import pytest, trio

        @pytest.mark.trio_group("g")
        async def test_prepends(monkeypatch, tmp_path):
            monkeypatch.syspath_prepend(str(tmp_path))
            await trio.sleep(0)

        @pytest.mark.trio_group("g")
        async def test_sibling():
            await trio.sleep(0)
        """
    )
    result = pytester.runpytest("-W", "error::pytest.PytestWarning", "--trio-group-hazards=off")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*sys.path was still patched*")


def test_leftover_warning_is_shown_at_the_first_patch_under_the_test_that_made_it(
    pytester: pytest.Pytester,
) -> None:
    # Not under the group's first member, which patched nothing; the
    # shared-state warning names the class as this warning does.
    pytester.makepyfile(
        test_where="""
        import pytest, trio

        class Box:
            value = "original"

        @pytest.mark.trio_group("g")
        async def test_patches_nothing():
            await trio.sleep(0.3)

        @pytest.mark.trio_group("g")
        async def test_a(monkeypatch):
            monkeypatch.setattr(Box, "value", "a")
            await trio.sleep(0.1)

        @pytest.mark.trio_group("g")
        async def test_b(monkeypatch):
            await trio.sleep(0.05)
            monkeypatch.setattr(Box, "value", "b")
            await trio.sleep(0.1)

        def test_after_the_group():
            assert Box.value == "original"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4, warnings=2)
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "test_where.py::test_b",
            "  *test_where.py:18: SharedStateWarning: test_where.py::test_b changed "
            "test_where.Box.value at test_where.py:18 in test_b while test_where.py::test_a*",
            "*",
            "",
            "test_where.py::test_a",
            "  *test_where.py:12: PytestWarning: trio_group 'g': test_where.Box.value was still "
            "patched after the group ended (patched by test_where.py::test_a, "
            "test_where.py::test_b, whose undos did not nest); restored to its value from "
            "before the group",
        ]
    )
    result.stdout.no_fnmatch_line("test_where.py::test_patches_nothing")


CONTEXT_BOUND = """
import contextlib, pytest, trio

class Request:
    # Like a web framework's request proxy: it can be changed only inside
    # a request, which each test opens for itself.
    active = 0

    def get_data(self):
        return "real"

    def __setattr__(self, name, value):
        if not Request.active:
            raise RuntimeError("Not within a request context")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if not Request.active:
            raise RuntimeError("Not within a request context")
        object.__delattr__(self, name)

request = Request()
A_PATCHED, B_PATCHED, A_DONE = trio.Event(), trio.Event(), trio.Event()

@contextlib.contextmanager
def in_a_request():
    Request.active += 1
    try:
        yield
    finally:
        Request.active -= 1
"""


def test_nested_patches_of_a_context_bound_object_are_not_touched_after_the_group(
    pytester: pytest.Pytester,
) -> None:
    # Each test's undo put the object back, inside its request: nothing is
    # left for the plugin to put back, and it must not try outside one.
    pytester.makepyfile(
        CONTEXT_BOUND
        + """
@pytest.mark.trio_group("g")
async def test_patches_in_a_request(monkeypatch):
    with in_a_request(), monkeypatch.context() as mp:
        mp.setattr(request, "get_data", lambda: "patched")
        await trio.sleep(0.01)
        assert request.get_data() == "patched"

@pytest.mark.trio_group("g")
async def test_sibling():
    await trio.sleep(0.01)

def test_after_the_group():
    assert request.get_data() == "real"
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert "INTERNALERROR" not in result.stdout.str()


def test_a_target_that_cannot_be_put_back_is_a_warning_and_the_session_goes_on(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        CONTEXT_BOUND
        + """
@pytest.mark.trio_group("g")
async def test_a(monkeypatch):
    with in_a_request():
        monkeypatch.setattr(request, "get_data", lambda: "a")
        A_PATCHED.set()
        await B_PATCHED.wait()
        monkeypatch.undo()
        A_DONE.set()

@pytest.mark.trio_group("g")
async def test_b(monkeypatch):
    with in_a_request():
        await A_PATCHED.wait()
        monkeypatch.setattr(request, "get_data", lambda: "b")
        B_PATCHED.set()
        await A_DONE.wait()
        monkeypatch.undo()

def test_after_the_group():
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--trio-group-hazards=off")
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*PytestWarning: trio_group 'g': <Request object at 0x*>.get_data may still be "
            "patched after the group ended (patched by *::test_a, *::test_b, whose undos did "
            "not nest); putting back its value from before the group failed: "
            "RuntimeError('Not within a request context')"
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str()
