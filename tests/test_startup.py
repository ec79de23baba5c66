"""A session without trio tests pays nothing for the plugin: trio is never imported (P7)."""

from __future__ import annotations

import json

import pytest

#: Records, at the end of the session, which of the plugin's heavy
#: dependencies were imported -- and that the plugin was loaded at all.
CONFTEST = """
import json, sys

def pytest_sessionfinish(session):
    heavy = (
        "trio", "outcome", "attr", "sysconfig", "pytest_trio_groups._runner",
        # What watches group runs and routes their output.
        "pytest_trio_groups._blocked_loop", "pytest_trio_groups._hazards",
        "pytest_trio_groups._trace", "pytest_trio_groups._capture",
    )
    with open("loaded.json", "w") as f:
        json.dump({
            "plugin": session.config.pluginmanager.hasplugin("trio_groups"),
            "imported": [name for name in heavy if name in sys.modules],
        }, f)
"""

SYNC_SUITE = """
def test_sync():
    assert True
"""


def _loaded(pytester: pytest.Pytester) -> dict[str, object]:
    result: dict[str, object] = json.loads((pytester.path / "loaded.json").read_text())
    return result


# pytest-trio imports trio itself when it is loaded: blocked here, so that
# only this plugin's imports are seen.
@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="defaults"),
        # Support for other plugins is loaded for them, yet must not need trio either.
        pytest.param(("--timeout=30", "-o", "faulthandler_timeout=30"), id="timeout-plugins"),
    ],
)
def test_a_sync_session_never_imports_trio(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(SYNC_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:trio", *args)
    result.assert_outcomes(passed=1)
    assert _loaded(pytester) == {"plugin": True, "imported": []}


def test_a_session_with_a_group_imports_trio_when_it_runs_it(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        SYNC_SUITE
        + """
import pytest, sys

@pytest.mark.trio_group("g")
async def test_member():
    assert "trio" in sys.modules
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:trio")
    result.assert_outcomes(passed=2)
    loaded = _loaded(pytester)
    assert loaded["plugin"] is True
    assert set(loaded["imported"]) >= {  # type: ignore[call-overload]
        "trio",
        "pytest_trio_groups._runner",
        "pytest_trio_groups._blocked_loop",
        "pytest_trio_groups._hazards",
    }


#: Records every module of the plugin's that the session imported.
MODULES_CONFTEST = """
import json, sys

def pytest_sessionfinish(session):
    with open("modules.json", "w") as f:
        json.dump(sorted(name for name in sys.modules if name.startswith("pytest_trio_groups")), f)
"""

#: What registering the options, ini keys, marks and pytest-trio's fixtures needs.
START_UP_MODULES = [
    "pytest_trio_groups",
    "pytest_trio_groups._context",
    "pytest_trio_groups._options",
    "pytest_trio_groups._plugins",
    "pytest_trio_groups._trio_fixtures",
    "pytest_trio_groups.plugin",
]

#: pytest-trio imports trio when it loads. pytest-timeout, pytest-rerunfailures
#: and pytest-xdist stay active: the support for them is loaded only once a
#: session has group members (pytest-xdist's where tests are distributed).
ALONE = ("-p", "no:trio")


def _modules(pytester: pytest.Pytester) -> list[str]:
    modules: list[str] = json.loads((pytester.path / "modules.json").read_text())
    return modules


def test_a_sync_session_imports_only_the_start_up_modules(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(MODULES_CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def value():
            return 1

        @pytest.mark.parametrize("n", [1, 2])
        def test_sync(value, n, capsys):
            print("out")
            assert capsys.readouterr().out == "out\\n"
        """
    )
    # With every option of the plugin's given a good value: each is read and
    # checked at start-up without the modules that use it.
    result = pytester.runpytest_subprocess(
        *ALONE,
        "-v",
        "--trio-group-limit=2",
        "--trio-group-timeout=5",
        "--trio-group-teardown-timeout=2",
        "--trio-group-blocked-threshold=off",
        "--trio-group-hazards=error",
        "-o",
        "trio_mode=false",
        "--timeout=30",
        "-o",
        "faulthandler_timeout=30",
    )
    result.assert_outcomes(passed=2)
    assert _modules(pytester) == START_UP_MODULES


def test_a_group_member_imports_the_rest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(MODULES_CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        def test_sync():
            pass

        @pytest.mark.trio_group("g")
        async def test_member():
            pass
        """
    )
    result = pytester.runpytest_subprocess(*ALONE, "--timeout=30")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*trio_group summary*", "trio_group 'g': 1 test (1 passed) in *"])
    assert {
        "pytest_trio_groups._grouping",
        "pytest_trio_groups._runner",
        "pytest_trio_groups._summary",
        "pytest_trio_groups._plugins.timeout",
        "pytest_trio_groups._plugins.rerunfailures",
    } <= set(_modules(pytester))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--trio-group-timeout=0", "--trio-group-timeout must be a positive number of seconds"),
        ("--trio-group-by=package", "--trio-group-by must be one of none, module, class, session"),
        ("--trio-group-hazards=loud", "--trio-group-hazards must be one of 'warn', 'error' or"),
        ("--trio-group-blocked-threshold=-1", "--trio-group-blocked-threshold must be a number"),
    ],
)
def test_a_bad_option_is_an_error_at_start_up_in_a_sync_session(
    pytester: pytest.Pytester, option: str, message: str
) -> None:
    pytester.makepyfile("def test_sync(): pass")
    result = pytester.runpytest_subprocess(*ALONE, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])
    result.stdout.no_fnmatch_line("*test_sync*")


def test_markers_and_options_are_listed_without_loading_the_rest(
    pytester: pytest.Pytester,
) -> None:
    markers = pytester.runpytest_subprocess(*ALONE, "--markers")
    markers.stdout.fnmatch_lines(
        [
            "@pytest.mark.trio_group(name=None, *, timeout=None): run this async test*",
            "@pytest.mark.trio_alone: a trio test that never joins*",
            "@pytest.mark.trio: run this async test with trio*",
        ],
        consecutive=False,
    )
    help_ = pytester.runpytest_subprocess(*ALONE, "--help")
    help_.stdout.fnmatch_lines(
        [
            "*--no-trio-group-summary*",
            "*--trio-group-rerun-alone*",
            "*--trio-group-remember-alone*",
            "*--trio-group-forget-alone*",
            "*--trio-group-by=SCOPE*",
            "*trio_mode (bool):*",
        ]
    )


def test_a_session_whose_only_trio_test_has_a_bad_mark_reports_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_sync():
            pass

        @pytest.mark.trio_group("")
        async def test_bad():
            pass

        @pytest.mark.trio_group("g")
        def test_generator():
            yield
        """
    )
    result = pytester.runpytest_subprocess(*ALONE)
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*invalid trio_group mark on test_a_session_whose_only_trio_test_has_a_bad_mark_reports_it.py::test_bad: the group name must be a non-empty string, got ''",
        ]
    )


@pytest.mark.parametrize("options", [(), ("-o", "trio_group_by=module")])
def test_a_module_object_that_raises_on_any_attribute_read_is_left_to_pytest(
    pytester: pytest.Pytester, options: tuple[str, ...]
) -> None:
    # Like a web framework's context-local proxy (``from quart import
    # request``): callable, and every attribute read outside a request raises.
    pytester.makepyfile(
        """
        import trio

        class Proxy:
            def __call__(self, *args, **kwargs):
                raise RuntimeError("Not within a request context")

            def __getattr__(self, name):
                raise RuntimeError("Not within a request context")

        request = Proxy()

        def test_sync():
            pass

        async def test_async():
            await trio.sleep(0)
        """
    )
    result = pytester.runpytest_subprocess(*ALONE, "-o", "trio_mode=true", *options)
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*Not within a request context*")


def test_async_fixture_of_a_sync_test_is_refused_in_a_sync_session(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        async def resource():
            return 1

        def test_sync(resource):
            pass
        """
    )
    # pytest-asyncio and anyio would take the fixture over.
    result = pytester.runpytest_subprocess(*ALONE, "-p", "no:asyncio", "-p", "no:anyio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_sync requested async fixture 'resource', but is not a trio test*"]
    )


def test_trio_mode_alone_makes_async_tests_trio_tests(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makeconftest(MODULES_CONFTEST)
    pytester.makepyfile(
        """
        import sys

        async def test_async():
            assert "trio" in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(*ALONE, "-p", "no:asyncio", "-p", "no:anyio")
    result.assert_outcomes(passed=1)
    assert "pytest_trio_groups._runner" in _modules(pytester)


def test_pytest_leaves_every_module_of_the_plugin_unrewritten() -> None:
    # pytest rewrites the asserts of an installed plugin's modules in every
    # session, uncached under PYTHONDONTWRITEBYTECODE; the marker opts out.
    import ast
    from pathlib import Path

    from _pytest.assertion.rewrite import AssertionRewriter

    import pytest_trio_groups

    package = Path(pytest_trio_groups.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 30
    for module in modules:
        docstring = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8")), clean=False)
        assert docstring is not None, module
        assert AssertionRewriter.is_rewrite_disabled(docstring), module
