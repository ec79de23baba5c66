"""Overlapping tests that change the same process-wide state are named (P8)."""

from __future__ import annotations

import pytest

ENVIRON = """
import os, pytest, trio

pytestmark = pytest.mark.trio_group("env", timeout=10)
first_set = trio.Event()
second_set = trio.Event()

async def test_first(monkeypatch):
    monkeypatch.setenv("SERVICE_URL", "http://one")
    first_set.set()
    await second_set.wait()

async def test_second():
    await first_set.wait()
    second_set.set()  # test_first is still running until its next step
    os.environ["SERVICE_URL"] = "http://two"
    del os.environ["SERVICE_URL"]
"""


def test_overlapping_members_setting_one_variable_get_one_warning(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_env=ENVIRON)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "test_env.py::test_second",
            "  *test_env.py:15: SharedStateWarning: test_env.py::test_second changed "
            "os.environ?'SERVICE_URL'? at test_env.py:15 in test_second while "
            "test_env.py::test_first, which changed it too, was running: tests of "
            "trio_group 'env' run at the same time in one process. Give each test its own "
            "copy, guard the change with a trio.Lock, or mark one of them "
            "@pytest.mark.trio_alone to run it on its own.",
        ]
    )
    result.stdout.fnmatch_lines(
        ["trio_group 'env': 2 tests (2 passed) in *, 1 shared-state warning"]
    )


def test_members_that_do_not_overlap_get_no_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_env="""
        import pytest

        @pytest.mark.trio_group("env")
        @pytest.mark.parametrize("n", range(3))
        async def test_sets(n, monkeypatch):
            monkeypatch.setenv("SERVICE_URL", f"http://{n}")
        """
    )
    result = pytester.runpytest("--trio-group-limit", "1")
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("*SharedStateWarning*")


def test_member_that_changes_directory_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_cwd="""
        import pytest, trio

        pytestmark = pytest.mark.trio_group("cwd", timeout=10)
        moved = trio.Event()

        async def test_reads_relative_paths():
            await moved.wait()

        async def test_moves(monkeypatch, tmp_path):
            monkeypatch.chdir(tmp_path)
            moved.set()
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "test_cwd.py::test_moves",
            "  *test_cwd.py:10: SharedStateWarning: test_cwd.py::test_moves changed the "
            "working directory (os.chdir to '*test_moves0') at test_cwd.py:10 in test_moves "
            "while test_cwd.py::test_reads_relative_paths was running and could see the "
            "change: tests of trio_group 'cwd' run at the same time in one process.*",
        ]
    )


def test_same_monkeypatched_attribute_in_overlapping_members(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        settings="MODE = 'normal'\nLEVEL = 1\n",
        test_attrs="""
        import pytest, trio
        import settings

        pytestmark = pytest.mark.trio_group("attrs", timeout=10)
        patched, two_done, other_done = trio.Event(), trio.Event(), trio.Event()

        async def test_one(monkeypatch):
            monkeypatch.setattr(settings, "MODE", "maintenance")
            patched.set()
            await two_done.wait()
            await other_done.wait()

        async def test_two(monkeypatch):
            await patched.wait()
            monkeypatch.setattr("settings.MODE", "read-only")
            two_done.set()

        async def test_other_attribute(monkeypatch):
            await patched.wait()
            monkeypatch.setattr(settings, "LEVEL", 2)
            other_done.set()
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "test_attrs.py::test_two",
            "  *SharedStateWarning: test_attrs.py::test_two changed settings.MODE at "
            "test_attrs.py:15 in test_two while test_attrs.py::test_one, which changed it "
            "too, was running:*",
        ]
    )


def test_sys_path_change_while_others_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_path="""
        import pytest, trio

        pytestmark = pytest.mark.trio_group("path", timeout=10)
        changed = trio.Event()

        async def test_imports():
            await changed.wait()

        async def test_prepends(monkeypatch, tmp_path):
            monkeypatch.syspath_prepend(tmp_path)
            changed.set()
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("SharedStateWarning") == 1
    result.stdout.fnmatch_lines(
        [
            "  *SharedStateWarning: test_path.py::test_prepends changed sys.path "
            "(monkeypatch.syspath_prepend) at test_path.py:10 in test_prepends while "
            "test_path.py::test_imports was running and could see the change:*",
        ]
    )


def test_hazards_as_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_env=ENVIRON)
    result = pytester.runpytest("--trio-group-hazards=error")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   *SharedStateWarning: test_env.py::test_second changed "
            "os.environ?'SERVICE_URL'? at test_env.py:15 in test_second while "
            "test_env.py::test_first, which changed it too, was running:*",
            "FAILED test_env.py::test_second - pytest_trio_groups.SharedState*",
        ]
    )


@pytest.mark.parametrize("how", ["option", "ini"])
def test_hazards_can_be_turned_off(pytester: pytest.Pytester, how: str) -> None:
    pytester.makepyfile(test_env=ENVIRON)
    if how == "ini":
        pytester.makeini("[pytest]\ntrio_group_hazards = off\n")
        result = pytester.runpytest()
    else:
        result = pytester.runpytest("--trio-group-hazards", "off")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*SharedStateWarning*")


def test_bad_hazards_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--trio-group-hazards=loud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --trio-group-hazards must be one of 'warn', 'error' or 'off', got 'loud'"]
    )


def test_watches_are_gone_after_the_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_after="""
        import os, pytest

        ORIGINAL = (type(os.environ).__setitem__, os.chdir, pytest.MonkeyPatch.setattr)

        @pytest.mark.trio_group("g")
        async def test_in_group():
            assert (type(os.environ).__setitem__, os.chdir) != ORIGINAL[:2]

        def test_after_group():
            assert (type(os.environ).__setitem__, os.chdir, pytest.MonkeyPatch.setattr) == ORIGINAL
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_an_autouse_patch_from_one_line_is_one_note(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        settings="""
        TIMEOUT = 30
        """,
        test_same_line="""
        import pytest, trio
        import settings

        ALL_PATCHED = trio.Event()
        PATCHED = []

        @pytest.fixture(autouse=True)
        def short_timeout(monkeypatch):
            monkeypatch.setattr(settings, "TIMEOUT", 1)
            monkeypatch.setenv("APP_TIMEOUT", "1")

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(4))
        async def test_member(n):
            assert settings.TIMEOUT == 1
            PATCHED.append(n)
            if len(PATCHED) == 4:
                ALL_PATCHED.set()
            await ALL_PATCHED.wait()
        """,
        test_z_after="""
        import settings

        def test_after_the_group():
            assert settings.TIMEOUT == 30
        """,
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=5, warnings=2)
    result.stdout.fnmatch_lines(
        [
            "*test_same_line.py:9: PytestWarning: 4 tests of trio_group 'g' changed "
            "settings.TIMEOUT at test_same_line.py:9 in short_timeout while others did the "
            "same from the same line; one note rather than a SharedStateWarning per overlap.*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_same_line.py:10: PytestWarning: 4 tests of trio_group 'g' changed "
            "os.environ[[]'APP_TIMEOUT'] at test_same_line.py:10 in short_timeout while others*",
        ]
    )
    result.stdout.no_fnmatch_line("*SharedStateWarning:*")
    result.stdout.no_fnmatch_line("*still patched after the group*")


def test_every_monkeypatch_call_works_as_documented_in_a_group(pytester: pytest.Pytester) -> None:
    # The watch wraps monkeypatch's methods while a group runs: each takes
    # the arguments pytest documents, keywords included (``delenv`` passes
    # ``raising=`` to ``delitem``; ``pytester`` calls it when it is set up).
    pytester.makepyfile(
        """
        import os, sys, pytest, trio

        pytest_plugins = ["pytester"]

        class Box:
            value = 1

        @pytest.mark.trio_group("g")
        async def test_env(monkeypatch):
            monkeypatch.setenv("PROBE_X", "1", prepend=None)
            monkeypatch.delenv("PROBE_X")
            monkeypatch.delenv("PROBE_SURELY_UNSET", raising=False)
            assert "PROBE_X" not in os.environ

        @pytest.mark.trio_group("g")
        async def test_items(monkeypatch):
            d = {"k": 1}
            monkeypatch.setitem(d, "k", 2)
            monkeypatch.delitem(d, "k", raising=False)
            monkeypatch.delitem({}, "k", raising=False)
            monkeypatch.setitem(sys.modules, "probe_module", None)
            monkeypatch.delitem(sys.modules, "probe_module", raising=True)
            assert d == {}

        @pytest.mark.trio_group("g")
        async def test_attributes(monkeypatch, tmp_path):
            monkeypatch.setattr(Box, "value", 2, raising=True)
            monkeypatch.delattr(Box, "value", raising=False)
            monkeypatch.delattr(Box, "missing", raising=False)
            monkeypatch.syspath_prepend(str(tmp_path))
            monkeypatch.chdir(tmp_path)
            assert not hasattr(Box, "value")

        @pytest.mark.trio_group("g")
        async def test_uses_pytester(pytester):
            assert pytester.path.exists()

        def test_after_the_group():
            assert Box.value == 1
            assert "probe_module" not in sys.modules
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_a_change_a_library_makes_is_placed_in_that_librarys_code(
    pytester: pytest.Pytester,
) -> None:
    # pytester changes the working directory as it is set up: no line of the
    # test's own is to blame, and neither is the script that started pytest.
    pytester.makepyfile(
        """
        import pytest, trio

        pytest_plugins = ["pytester"]

        @pytest.mark.trio_group("g")
        async def test_waits():
            await trio.sleep(0.2)

        @pytest.mark.trio_group("g")
        async def test_uses_pytester(pytester):
            await trio.sleep(0)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*SharedStateWarning: *::test_uses_pytester changed the working directory "
            "(os.chdir to *) at *_pytest?pytester.py:* in * while *::test_waits was "
            "running*"
        ]
    )
