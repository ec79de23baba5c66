"""Each concurrent test's stdout and stderr, routed by the task that wrote them.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import pytest

from . import _pytest_compat as compat
from ._context import CURRENT_MEMBER


class MemberOutput:
    """What one test wrote to ``sys.stdout``/``sys.stderr``, and its ``capsys``."""

    def __init__(self, pass_through: bool) -> None:
        self._pass_through = pass_through
        #: What the test wrote to stdout and stderr since the last ``take``;
        #: most tests write nothing, so a stream is made at the first write.
        self._streams: list[io.StringIO | None] = [None, None]
        #: The test's ``capsys``-style fixture while it is active.
        self.fixture: GroupCaptureFixture | None = None

    def write(self, index: int, text: str, underlying: TextIO) -> None:
        fixture = self.fixture
        if fixture is not None and not fixture.is_disabled:
            fixture.buffers[index].write(text)
            if not fixture.tee:
                return
        if self._pass_through:
            underlying.write(text)
            return
        stream = self._streams[index]
        if stream is None:
            stream = self._streams[index] = io.StringIO()
        stream.write(text)

    def take(self) -> tuple[str, str]:
        """The output since the last call: (stdout, stderr)."""
        out, err = self._streams
        if out is None and err is None:
            return "", ""
        self._streams = [None, None]
        return ("" if out is None else out.getvalue()), ("" if err is None else err.getvalue())


def _owner() -> MemberOutput | None:
    member = CURRENT_MEMBER.get(None)
    return None if member is None else member.output


class RoutingStream(io.TextIOBase):
    """Stands in for ``sys.stdout`` or ``sys.stderr`` while a group runs.

    A write made in a group member's task -- or a task or ``trio.to_thread``
    thread it started, which inherit its context -- goes to that test.
    Anything else goes on to the stream pytest would have used.
    """

    def __init__(self, underlying: TextIO, index: int) -> None:
        self._underlying = underlying
        self._index = index

    @property
    def underlying(self) -> TextIO:
        return self._underlying

    def write(self, text: str) -> int:
        owner = _owner()
        if owner is None:
            return self._underlying.write(text)
        owner.write(self._index, text, self._underlying)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._underlying.flush()

    def writable(self) -> bool:
        return True

    @property
    def buffer(self) -> _RoutingBuffer:
        return _RoutingBuffer(self)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._underlying, "encoding", "utf-8")

    def isatty(self) -> bool:
        return self._underlying.isatty()

    def fileno(self) -> int:
        return self._underlying.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._underlying, name)


class _RoutingBuffer:
    """``sys.stdout.buffer`` of a ``RoutingStream``: bytes, decoded and routed."""

    def __init__(self, stream: RoutingStream) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        if _owner() is None:
            return self._stream.underlying.buffer.write(data)
        self._stream.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream.underlying.buffer, name)


class GroupCapture:
    """Installs the routing streams for one group run and takes them away after.

    Under ``--capture=sys`` and ``--capture=fd`` the streams sit inside
    pytest's own capture, which stays on for the whole run: output that no
    test owns -- a wider-scoped fixture's, and under ``--capture=fd`` what
    subprocesses and C code write to the file descriptors -- is captured for
    the group as a whole (``unattributed``).
    """

    def __init__(self, config: pytest.Config) -> None:
        self._capman = config.pluginmanager.getplugin("capturemanager")
        method = config.getoption("capture", "fd")
        self.pass_through = method == "no"
        self._captures = compat.global_sys_captures(self._capman) if self._capman else []
        self._saved: list[tuple[Any, Any]] = []
        self._saved_sys: tuple[Any, Any] | None = None
        #: Output captured while the group ran that no test owned: (stdout, stderr).
        self.unattributed = ("", "")

    def install(self) -> None:
        if self._captures:
            for index, capture in enumerate(self._captures):
                self._saved.append((capture, capture.tmpfile))
                capture.tmpfile = RoutingStream(capture.tmpfile, index)
            self._capman.resume_global_capture()
        else:
            self._saved_sys = (sys.stdout, sys.stderr)
            sys.stdout = RoutingStream(sys.stdout, 0)
            sys.stderr = RoutingStream(sys.stderr, 1)

    def uninstall(self) -> None:
        if self._captures:
            self._capman.suspend_global_capture(in_=False)
            for capture, tmpfile in self._saved:
                capture.tmpfile = tmpfile
            out, err = self._capman.read_global_capture()
            self.unattributed = (out, err)
        elif self._saved_sys is not None:
            sys.stdout, sys.stderr = self._saved_sys

    def paused(self) -> contextlib.AbstractContextManager[None]:
        """Let pytest's terminal output through (reports are logged meanwhile)."""
        if self._captures:
            return self._capman.global_and_fixture_disabled()  # type: ignore[no-any-return]
        return contextlib.nullcontext()


class GroupCaptureFixture:
    """``capsys`` / ``capsysbinary`` / ``capteesys`` for a group member.

    pytest's own fixtures swap ``sys.stdout`` for the whole process and allow
    one at a time; this one collects only its own test's writes.
    """

    def __init__(self, output: MemberOutput, *, binary: bool, tee: bool) -> None:
        self._output = output
        self._binary = binary
        self.tee = tee
        self.is_disabled = False
        self.buffers = (io.StringIO(), io.StringIO())

    def readouterr(self) -> Any:
        """Read and reset the test's captured output: ``(out, err)``."""
        out, err = (buffer.getvalue() for buffer in self.buffers)
        self.buffers = (io.StringIO(), io.StringIO())
        if self._binary:
            return compat.capture_result(out.encode(), err.encode())
        return compat.capture_result(out, err)

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Let the test's output through to the report (or terminal with ``-s``) meanwhile."""
        self.is_disabled = True
        try:
            yield
        finally:
            self.is_disabled = False

    def close(self) -> None:
        if self._output.fixture is self:
            self._output.fixture = None
