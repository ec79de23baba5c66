from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # pytest-randomly (in the test extra) shuffles and reseeds every run it
    # is installed for; the runs here keep pytest's order unless a test asks
    # for it with ``-p randomly``.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester


HAVE_PYTEST_TRIO = importlib.util.find_spec("pytest_trio") is not None


@dataclass(frozen=True)
class TrioEnv:
    """One of the two environments a pytest-trio suite meets: with pytest-trio, or without."""

    name: str
    #: Command-line arguments that make the environment (``-p no:trio`` blocks pytest-trio).
    args: tuple[str, ...]
    #: Whether pytest-trio is active in it.
    pytest_trio: bool

    @property
    def trio_fixture_import(self) -> str:
        """The import line a test file uses for ``trio_fixture`` here."""
        if self.pytest_trio:
            return "from pytest_trio import trio_fixture"
        return "from pytest_trio_groups import trio_fixture"


@pytest.fixture(params=["with-pytest-trio", "without-pytest-trio"])
def trio_env(request: pytest.FixtureRequest) -> TrioEnv:
    """Run the test beside pytest-trio 0.8, and without it (skipped where it is not installed)."""
    if request.param == "with-pytest-trio":
        if not HAVE_PYTEST_TRIO:
            pytest.skip("pytest-trio is not installed")
        return TrioEnv(request.param, (), pytest_trio=True)
    return TrioEnv(request.param, ("-p", "no:trio"), pytest_trio=False)
