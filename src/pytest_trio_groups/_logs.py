"""Each concurrent test's log records: its report section, its ``caplog``, live lines.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from . import _pytest_compat as compat
from ._context import CURRENT_MEMBER


class MemberLogs:
    """The log handlers of one test for its current phase, as pytest's logging plugin keeps them.

    Made when first needed: at the start of each phase for a test that uses
    ``caplog``, at its first log record for any other.
    """

    def __init__(self, item: pytest.Item, plugin: Any) -> None:
        self._item = item
        self._plugin = plugin
        self._uses_caplog = "caplog" in getattr(item, "fixturenames", ())
        self._when: str | None = None
        self.caplog_handler: Any = None
        self.report_handler: Any = None
        #: Whether ``caplog``'s stash entries were set, to be dropped after teardown.
        self._set_caplog = False

    def begin(self, when: str) -> None:
        """Start a phase; ``caplog`` reads its handler through the item's stash."""
        if self._plugin is None:
            return
        self._when = when
        self.caplog_handler = self.report_handler = None
        if self._uses_caplog:
            _ACTIVE.add(self)
            self._make_handlers()

    def _make_handlers(self) -> None:
        assert self._when is not None
        level = self._plugin.log_level
        self.caplog_handler = compat.new_log_capture_handler()
        self.report_handler = compat.new_log_capture_handler()
        self.report_handler.setFormatter(self._plugin.formatter)
        if level is not None:
            self.caplog_handler.setLevel(level)
            self.report_handler.setLevel(level)
        compat.set_caplog_phase(self._item, self._when, self.caplog_handler)
        self._set_caplog = True

    def end(self, when: str) -> None:
        """Add the phase's ``Captured log`` section to the test's report."""
        if self.report_handler is not None:
            self._item.add_report_section(
                when, "log", self.report_handler.stream.getvalue().strip()
            )
        if when == "teardown" and self._set_caplog:
            compat.clear_caplog(self._item)
            _ACTIVE.discard(self)
        self._when = None

    def handle(self, record: logging.LogRecord) -> None:
        if self._when is None or record.levelno < self._threshold(record.name):
            return
        if self.caplog_handler is None:
            self._make_handlers()
        for handler in (self.caplog_handler, self.report_handler):
            if record.levelno >= handler.level:
                handler.handle(record)

    def _threshold(self, name: str) -> int:
        """The level this test's logger ``name`` would have if no sibling re-levelled it.

        ``caplog.set_level`` changes a logger for the whole process; a record
        that got through only because a concurrent sibling lowered a level
        is not this test's to capture.
        """
        own = compat.caplog_changed_levels(self._item.funcargs.get("caplog"))  # type: ignore[attr-defined]
        others = _levels_changed_by_others(self)
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            key = None if logger is logging.root else logger.name
            level = logger.level if key in own or key not in others else others[key]
            if level:
                return level
            logger = logger.parent
        return logging.NOTSET


#: The ``MemberLogs`` of the running tests that use ``caplog``, to tell which
#: logger levels others changed.
_ACTIVE: set[MemberLogs] = set()


def _levels_changed_by_others(me: MemberLogs) -> dict[str | None, int]:
    levels: dict[str | None, int] = {}
    for logs in _ACTIVE:
        if logs is me:
            continue
        caplog = logs._item.funcargs.get("caplog")  # type: ignore[attr-defined]
        for name, level in compat.caplog_changed_levels(caplog).items():
            levels.setdefault(name, level)
    return levels


class RoutingLogHandler(logging.Handler):
    """On the root logger while a group runs: hands each record to its test."""

    def handle(self, record: logging.LogRecord) -> bool:
        member = CURRENT_MEMBER.get(None)
        if member is not None:
            member.logs.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        pass


class _NamingFormatter(logging.Formatter):
    """Wraps the live-log formatter so each line names the test it came from."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        text = self._inner.format(record)
        member = CURRENT_MEMBER.get(None)
        if member is None:
            return text
        return f"[{member.item.nodeid}] {text}"


class GroupLogs:
    """Installs the routing handler (and live-log naming) for one group run."""

    def __init__(self, config: pytest.Config) -> None:
        self.plugin = compat.logging_plugin(config)
        self._handler = RoutingLogHandler()
        self._live: Any = getattr(self.plugin, "log_cli_handler", None)
        self._live_formatter: logging.Formatter | None = None
        self._root_level: int | None = None

    def install(self) -> None:
        logging.root.addHandler(self._handler)
        level = getattr(self.plugin, "log_level", None)
        if level is not None:
            # As pytest's logging plugin does around each test phase.
            self._root_level = logging.root.level
            logging.root.setLevel(min(logging.root.level, level))
        if self._live is not None and self._live.formatter is not None:
            self._live_formatter = self._live.formatter
            self._live.setFormatter(_NamingFormatter(self._live.formatter))
        self.resume_live()

    def resume_live(self) -> None:
        """Put live logging back under a "live log call" heading.

        Logging a test's reports moves pytest's live-log handler on to its
        start/finish headings; the group's other tests are still running.
        """
        if self._live is not None:
            self._live.set_when("call")

    def uninstall(self) -> None:
        logging.root.removeHandler(self._handler)
        if self._root_level is not None:
            logging.root.setLevel(self._root_level)
            self._root_level = None
        if self._live_formatter is not None:
            self._live.setFormatter(self._live_formatter)
            self._live_formatter = None
