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
