"""What pytest learns at start-up -- options, ini keys, marks -- and the ``Settings`` read from them.

Imported when pytest loads the plugin, in every session: it imports nothing
of the plugin's own, and the modules a session with trio tests needs are
imported when it has some.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import math

import pytest

DEFAULT_TEARDOWN_TIMEOUT = 5.0
DEFAULT_BLOCKED_THRESHOLD = 0.5
DEFAULT_STALL_REPORT = 60.0
HAZARD_MODES = ("warn", "error", "off")
GROUP_BY_CHOICES = ("none", "module", "class", "session")

MARK_NAME = "trio_group"
ALONE_MARK_NAME = "trio_alone"
#: pytest-trio's mark, understood without pytest-trio too.
TRIO_MARK = "trio"

MARKER_HELP = (
    f"{MARK_NAME}(name=None, *, timeout=None): run this async test concurrently with "
    "the other tests of the same group name, as sibling tasks in one trio nursery, "
    "each under its own deadline of `timeout` seconds."
)
ALONE_MARKER_HELP = (
    f"{ALONE_MARK_NAME}: a trio test that never joins an automatic trio_group_by group; "
    "it runs on its own (for tests that change process-wide state)."
)
TRIO_MARKER_HELP = (
    f"{TRIO_MARK}: run this async test with trio (pytest-trio's mark; without pytest-trio, "
    "pytest-trio-groups runs it in a trio.run of its own, or in its trio_group_by group)"
)

RERUN_ALONE = "--trio-group-rerun-alone"
REMEMBER_ALONE = "--trio-group-remember-alone"
FORGET_ALONE = "--trio-group-forget-alone"
PASS_ALONE = "--trio-group-pass-alone"
ALONE_FILE = "--trio-group-alone-file"
_DIAGNOSIS_DESTS = (
    "trio_group_rerun_alone",
    "trio_group_remember_alone",
    "trio_group_forget_alone",
    "trio_group_pass_alone",
    "trio_group_alone_file",
)
#: Ini keys that turn the diagnosis on as the options of the same name do.
_DIAGNOSIS_INI = ("trio_group_pass_alone", "trio_group_alone_file")


class Settings:
    """The plugin's configuration for one pytest session (read-only).

    A plain class rather than a frozen dataclass: it is built at every
    start-up, and a dataclass compiles its methods when its module is
    imported, about 1 ms.
    """

    __slots__ = (
        "blocked_threshold",
        "default_timeout",
        "group_by",
        "hazards",
        "limit",
        "stall_report",
        "summary",
        "teardown_timeout",
        "timeline",
        "trace",
    )

    def __init__(
        self,
        *,
        limit: int | None,
        default_timeout: float | None,
        teardown_timeout: float,
        summary: bool = True,
        group_by: str = "none",
        blocked_threshold: float | None = DEFAULT_BLOCKED_THRESHOLD,
        hazards: str = "warn",
        trace: str | None = None,
        stall_report: float | None = DEFAULT_STALL_REPORT,
        timeline: str | None = None,
    ) -> None:
        #: Most tests of one group running at once; ``None`` for no bound.
        self.limit = limit
        #: Deadline for tests whose mark gives no ``timeout=``; ``None`` for none.
        self.default_timeout = default_timeout
        #: Grace period for one test's teardown, in seconds.
        self.teardown_timeout = teardown_timeout
        #: Whether to print the per-group summary.
        self.summary = summary
        #: ``trio_group_by``: the automatic group of trio tests without a mark.
        self.group_by = group_by
        #: Seconds the event loop may stay in one task step before it counts as
        #: blocked; ``None`` when the watchdog is off.
        self.blocked_threshold = blocked_threshold
        #: What a shared-state change by overlapping tests gives: a warning, an
        #: error in the test that made it, or nothing.
        self.hazards = hazards
        #: Where to write the timeline (Chrome trace-event JSON); ``None`` for nowhere.
        self.trace = trace
        #: Where to write the timeline as a self-contained HTML page; ``None`` for nowhere.
        self.timeline = timeline
        #: Seconds a group may go without any progress before the stall report
        #: says where each running test waits; ``None`` when off.
        self.stall_report = stall_report


def add_markers(config: pytest.Config, *, trio_mark: bool) -> None:
    """Register the marks (for ``pytest --markers`` and ``--strict-markers``).

    ``trio_mark``: also pytest-trio's ``trio`` mark, when pytest-trio does not.
    """
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", ALONE_MARKER_HELP)
    if trio_mark:
        config.addinivalue_line("markers", TRIO_MARKER_HELP)


def add_options(parser: pytest.Parser) -> None:
    """Register the command-line options and ini keys."""
    group = parser.getgroup("trio-groups", "run async tests concurrently in trio nurseries")
    group.addoption(
        "--trio-group-limit",
        dest="trio_group_limit",
        metavar="N",
        default=None,
        help="Run at most N tests of one trio_group at once (default: no limit).",
    )
    group.addoption(
        "--trio-group-timeout",
        dest="trio_group_timeout",
        metavar="SECONDS",
        default=None,
        help="Default per-test deadline for trio_group tests whose mark gives no timeout=.",
    )
    group.addoption(
        "--trio-group-teardown-timeout",
        dest="trio_group_teardown_timeout",
        metavar="SECONDS",
        default=None,
        help=(
            "Grace period for one trio_group test's teardown "
            f"(default: {DEFAULT_TEARDOWN_TIMEOUT:g})."
        ),
    )
    group.addoption(
        "--no-trio-group-summary",
        dest="trio_group_summary",
        action="store_false",
        default=True,
        help="Do not print the per-group summary at the end of the run.",
    )
    _add_diagnosis_options(group)
    group.addoption(
        "--trio-group-by",
        dest="trio_group_by",
        metavar="SCOPE",
        default=None,
        help=(
            "Group every trio test without a trio_group mark by none (the default), "
            "module, class or session."
        ),
    )
    parser.addini("trio_group_by", "Default for --trio-group-by.", default=None)
    # pytest-trio's ini keys, understood when pytest-trio is not installed
    # (registered alike by both plugins).
    parser.addini(
        "trio_mode", "Treat every async def test as a trio test.", type="bool", default=False
    )
    parser.addini(
        "trio_run", "The runner of trio tests: trio (or qtrio, with pytest-trio).", default="trio"
    )
    group.addoption(
        "--trio-group-blocked-threshold",
        dest="trio_group_blocked_threshold",
        metavar="SECONDS",
        default=None,
        help=(
            "Warn when a trio_group test keeps the event loop from running other tests "
            f"for longer than SECONDS (default: {DEFAULT_BLOCKED_THRESHOLD:g}; 0 or 'off' "
            "to disable)."
        ),
    )
    group.addoption(
        "--trio-group-hazards",
        dest="trio_group_hazards",
        metavar="MODE",
        default=None,
        help=(
            "What a change of process-wide state (os.environ, the working directory, "
            "a monkeypatched attribute, sys.path) by a test while others of its group "
            "run gives: 'warn' (default), 'error' (the test fails) or 'off'."
        ),
    )
    group.addoption(
        "--trio-group-trace",
        dest="trio_group_trace",
        metavar="FILE",
        default=None,
        help=(
            "Write a timeline of every group's tests to FILE, as Chrome trace-event "
            "JSON (open it in https://ui.perfetto.dev or chrome://tracing)."
        ),
    )
    group.addoption(
        "--trio-group-timeline",
        dest="trio_group_timeline",
        metavar="FILE",
        default=None,
        help=(
            "Write a timeline of every group's tests to FILE as one self-contained HTML "
            "page (a lane per test; open it in any browser)."
        ),
    )
    group.addoption(
        "--trio-group-stall-report",
        dest="trio_group_stall_report",
        metavar="SECONDS",
        default=None,
        help=(
            "When no test of a running group has made progress for SECONDS, print where "
            f"each one waits (default: {DEFAULT_STALL_REPORT:g}; 0 or 'off' to disable)."
        ),
    )
    parser.addini("trio_group_limit", "Default for --trio-group-limit.", default=None)
    parser.addini("trio_group_stall_report", "Default for --trio-group-stall-report.", default=None)
    parser.addini("trio_group_timeout", "Default for --trio-group-timeout.", default=None)
    parser.addini(
        "trio_group_teardown_timeout", "Default for --trio-group-teardown-timeout.", default=None
    )
    parser.addini(
        "trio_group_blocked_threshold",
        "Default for --trio-group-blocked-threshold.",
        default=None,
    )
    parser.addini("trio_group_hazards", "Default for --trio-group-hazards.", default=None)
    add_diagnosis_ini(parser)


def _add_diagnosis_options(group: pytest.OptionGroup) -> None:
    """The options of the run-alone diagnosis (``_diagnosis``)."""
    group.addoption(
        RERUN_ALONE,
        dest="trio_group_rerun_alone",
        action="store_true",
        default=False,
        help=(
            "Run each trio_group test that failed in its group once more, on its own, after "
            "the group; say in its report whether it passed alone. The test stays failed."
        ),
    )
    group.addoption(
        REMEMBER_ALONE,
        dest="trio_group_remember_alone",
        action="store_true",
        default=False,
        help=(
            f"Like {RERUN_ALONE}, and remember in pytest's cache the tests that passed "
            "alone: later runs with this option run them on their own, outside their groups."
        ),
    )
    group.addoption(
        FORGET_ALONE,
        dest="trio_group_forget_alone",
        action="store_true",
        default=False,
        help=f"Forget the tests {REMEMBER_ALONE} remembered: they run in their groups again.",
    )
    group.addoption(
        PASS_ALONE,
        dest="trio_group_pass_alone",
        action="store_true",
        default=None,
        help=(
            f"Like {RERUN_ALONE}, and report a test that failed in its group (in setup, call "
            "or teardown) and passed on its own as passed, with a warning naming the tests "
            "it overlapped with (default: ini trio_group_pass_alone)."
        ),
    )
    group.addoption(
        ALONE_FILE,
        dest="trio_group_alone_file",
        metavar="FILE",
        default=None,
        help=(
            "A file of node ids, one per line, that run on their own outside their groups; "
            f"{REMEMBER_ALONE} writes the tests that passed only on their own there instead "
            "of pytest's cache. Commit it, and every machine runs them alone "
            "(default: ini trio_group_alone_file, relative to the ini file)."
        ),
    )


def add_diagnosis_ini(parser: pytest.Parser) -> None:
    """The ini keys of the run-alone diagnosis."""
    parser.addini(
        "trio_group_pass_alone",
        f"Default for {PASS_ALONE}: a test that passes only on its own is reported as passed.",
        type="bool",
        default=False,
    )
    parser.addini(
        "trio_group_alone_file",
        f"Default for {ALONE_FILE}, relative to the ini file's directory.",
        default=None,
    )


def diagnosis_requested(config: pytest.Config) -> bool:
    """Whether one of the diagnosis options (or its ini key) is given."""
    return any(config.getoption(dest) for dest in _DIAGNOSIS_DESTS) or any(
        config.getini(name) for name in _DIAGNOSIS_INI
    )


def _raw(config: pytest.Config, name: str) -> tuple[str, str | None]:
    """The value of ``name`` from the command line, else the ini file, and where it came from."""
    value = config.getoption(name)
    if value is not None:
        return "--" + name.replace("_", "-"), str(value)
    ini = config.getini(name)
    if ini in (None, ""):
        return name, None
    return name, str(ini)


def read_group_by(config: pytest.Config) -> str:
    """``trio_group_by``, checked; raise ``pytest.UsageError`` naming a bad value."""
    where, group_by = _raw(config, "trio_group_by")
    group_by = (group_by or "none").strip()
    if group_by not in GROUP_BY_CHOICES:
        raise pytest.UsageError(
            f"{where} must be one of {', '.join(GROUP_BY_CHOICES)}, got {group_by!r}"
        )
    return group_by


def read_settings(config: pytest.Config) -> Settings:
    """Parse and validate the options; raise ``pytest.UsageError`` naming a bad value."""
    where, raw = _raw(config, "trio_group_limit")
    limit: int | None = None
    if raw is not None:
        try:
            limit = int(raw.strip())
        except ValueError:
            limit = 0
        if limit < 1:
            raise pytest.UsageError(f"{where} must be a positive integer, got {raw!r}")

    group_by = read_group_by(config)
    default_timeout = _seconds(config, "trio_group_timeout")
    teardown_timeout = _seconds(config, "trio_group_teardown_timeout")
    where, raw = _raw(config, "trio_group_hazards")
    hazards = "warn" if raw is None else raw.strip().lower()
    if hazards not in HAZARD_MODES:
        raise pytest.UsageError(f"{where} must be one of 'warn', 'error' or 'off', got {raw!r}")
    trace = config.getoption("trio_group_trace")
    timeline = config.getoption("trio_group_timeline")
    return Settings(
        limit=limit,
        default_timeout=default_timeout,
        teardown_timeout=(
            DEFAULT_TEARDOWN_TIMEOUT if teardown_timeout is None else teardown_timeout
        ),
        summary=bool(config.getoption("trio_group_summary")) and config.get_verbosity() >= 0,
        group_by=group_by,
        blocked_threshold=_blocked_threshold(config),
        hazards=hazards,
        trace=None if trace is None else str(trace),
        timeline=None if timeline is None else str(timeline),
        stall_report=_seconds_or_off(config, "trio_group_stall_report", DEFAULT_STALL_REPORT),
    )


def _blocked_threshold(config: pytest.Config) -> float | None:
    return _seconds_or_off(config, "trio_group_blocked_threshold", DEFAULT_BLOCKED_THRESHOLD)


def _seconds_or_off(config: pytest.Config, name: str, default: float) -> float | None:
    """A number of seconds, or ``None`` for 0 or 'off'."""
    where, raw = _raw(config, name)
    if raw is None:
        return default
    text = raw.strip().lower()
    if text == "off":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0 or math.isinf(value):
        raise pytest.UsageError(
            f"{where} must be a number of seconds (0 or 'off' to disable), got {raw!r}"
        )
    return value or None


def _seconds(config: pytest.Config, name: str) -> float | None:
    """A positive number of seconds (``inf`` for no deadline), as a mark's ``timeout=``."""
    where, raw = _raw(config, name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not value > 0:  # also false for NaN
        raise pytest.UsageError(f"{where} must be a positive number of seconds, got {raw!r}")
    return value
