from __future__ import annotations

import importlib.util
import signal
from dataclasses import dataclass

import pytest

pytest_plugins = ["pytester"]

# Many tests here send a pytest subprocess a SIGINT (a Ctrl-C). A process
# started in the background by a non-interactive shell (``cmd &``, nohup)
# has SIGINT ignored, and so has every process it starts: those pytest runs
# would never see the Ctrl-C. Caught here, it is reset to the default in
# the processes started from now on, as when the suite runs in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

try:
    # pytester's in-process runs drop the modules first imported inside them,
    # and Hypothesis's pytest plugin imports hypothesis in every session it
    # ends: imported once here, it is not imported anew (seconds) per run.
    import hypothesis  # noqa: F401
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # pytest-randomly (in the test extra) shuffles and reseeds every run it
    # is installed for; the runs here keep pytest's order unless a test asks
    # for it with ``-p randomly``.
    # pytest-asyncio and anyio (also in the test extra) change what other
    # tests see: one warns at every start unless configured, the other's
    # fixture hook stands in the way of this plugin's message for async
    # fixtures outside groups. The runs here load them only when asked.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly -p no:asyncio -p no:anyio")
    return pytester


HAVE_PYTEST_TRIO = importlib.util.find_spec("pytest_trio") is not None

# pytest-trio registers its plugin under the name "trio"; blocking it is what
# uninstalling it looks like to the inner session.
_WITHOUT_PYTEST_TRIO = ("-p", "no:trio")
_GROUPED_BY_MODULE = ("-o", "trio_group_by=module")


@dataclass(frozen=True)
class TrioEnv:
    """One of the environments a pytest-trio suite meets: with pytest-trio, or without."""

    name: str
    #: Command-line arguments that make the environment (``-p no:trio`` blocks pytest-trio).
    args: tuple[str, ...]
    #: Whether pytest-trio is active in it.
    pytest_trio: bool
    #: Whether every trio test joins an automatic group named after its module.
    grouped: bool = False

    @property
    def ours(self) -> bool:
        """Whether this plugin, not pytest-trio, runs the trio tests."""
        return self.grouped or not self.pytest_trio

    @property
    def trio_fixture_import(self) -> str:
        """The import line a test file uses for ``trio_fixture`` here."""
        if self.pytest_trio:
            return "from pytest_trio import trio_fixture"
        return "from pytest_trio_groups import trio_fixture"

    def makepyfile(self, pytester: pytest.Pytester, source: str) -> None:
        """Write a test module as a pytest-trio user would, importable in this environment."""
        pytester.makepyfile(
            source.replace("from pytest_trio import trio_fixture", self.trio_fixture_import)
        )

    def enable_trio_mode(self, pytester: pytest.Pytester, how: str) -> None:
        """Turn on trio_mode the way ``how`` names: ``ini``, ``ini-trio-run`` or ``conftest``."""
        if how == "ini":
            pytester.makeini("[pytest]\ntrio_mode = true\n")
        elif how == "ini-trio-run":
            pytester.makeini("[pytest]\ntrio_mode = true\ntrio_run = trio\n")
        elif how == "conftest":
            if not self.pytest_trio:
                pytest.skip("the conftest import is pytest-trio's own module")
            pytester.makeconftest("from pytest_trio.enable_trio_mode import *\n")
        else:
            raise ValueError(f"unknown way to enable trio_mode: {how!r}")

    def skip_where_pytest_cannot_show_pytest_trio_groups(self) -> None:
        """Skip where pytest-trio runs the test on pytest < 9.

        pytest 8.4 stops with an INTERNALERROR (IndexError in ``repr_excinfo``)
        formatting an exception group whose frames are all hidden, which is
        how pytest-trio raises several errors of one test (pytest #13734).
        """
        if not self.ours and pytest.version_tuple < (9,):
            pytest.skip("pytest < 9 cannot format pytest-trio's exception groups")


def _skip_without_pytest_trio() -> None:
    if not HAVE_PYTEST_TRIO:
        pytest.skip("pytest-trio is not installed")


@pytest.fixture(params=["with-pytest-trio", "without-pytest-trio"])
def trio_env(request: pytest.FixtureRequest) -> TrioEnv:
    """Run the test beside pytest-trio 0.8, and without it (skipped where it is not installed)."""
    if request.param == "with-pytest-trio":
        _skip_without_pytest_trio()
        return TrioEnv(request.param, (), pytest_trio=True)
    return TrioEnv(request.param, _WITHOUT_PYTEST_TRIO, pytest_trio=False)


@pytest.fixture(
    params=[
        "with-pytest-trio-ungrouped",
        "with-pytest-trio-grouped",
        "without-pytest-trio-ungrouped",
        "without-pytest-trio-grouped",
    ]
)
def dropin_env(request: pytest.FixtureRequest) -> TrioEnv:
    """A pytest-trio suite as it is, beside pytest-trio and without it, grouped by module or not."""
    name: str = request.param
    with_pytest_trio = name.startswith("with-")
    grouped = name.endswith("-grouped")
    if with_pytest_trio:
        _skip_without_pytest_trio()
    args = () if with_pytest_trio else _WITHOUT_PYTEST_TRIO
    if grouped:
        args += _GROUPED_BY_MODULE
    return TrioEnv(name, args, pytest_trio=with_pytest_trio, grouped=grouped)


@pytest.fixture(params=["ini", "ini-trio-run", "conftest"])
def trio_mode_way(request: pytest.FixtureRequest) -> str:
    """The three ways pytest-trio documents to turn trio_mode on."""
    way: str = request.param
    return way
