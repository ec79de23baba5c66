from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # pytest-randomly (in the test extra) shuffles and reseeds every run it
    # is installed for; the runs here keep pytest's order unless a test asks
    # for it with ``-p randomly``.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester
