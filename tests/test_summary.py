"""The per-group summary at the end of the run (P7)."""

from __future__ import annotations

import re

import pytest

SUITE = """
import pytest, trio

@pytest.mark.trio_group("io")
@pytest.mark.parametrize("n", range(4))
async def test_wait(n):
    await trio.sleep(0.2)
    assert n != 3

@pytest.mark.trio_group("io")
@pytest.mark.skip(reason="not today")
async def test_skipped():
    pass

@pytest.mark.trio_group("other")
async def test_other():
    pass
"""

LINE = re.compile(
    r"^trio_group 'io': 5 tests \(1 failed, 3 passed, 1 skipped\) in (?P<wall>[\d.]+)s wall, "
    r"(?P<total>[\d.]+)s of test time, (?P<speedup>[\d.]+)x speed-up, 5 at once at most$"
)


def test_summary_line_per_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "trio_group summary" in line)
    io_line, other_line = lines[start + 1], lines[start + 2]
    match = LINE.match(io_line)
    assert match, io_line
    wall, total, speedup = (float(match[name]) for name in ("wall", "total", "speedup"))
    # Four members slept 0.2 s each, side by side.
    assert total >= 0.8
    assert wall < total
    # Printed values are rounded: allow for it.
    assert speedup == pytest.approx(total / wall, rel=0.06)
    assert other_line.startswith("trio_group 'other': 1 test (1 passed) in ")
    assert other_line.endswith(", 1 at once at most")


def test_verbose_summary_lists_slowest_members(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        [
            "trio_group 'io': 5 tests*",
            "    0.2*s test_verbose_summary_lists_slowest_members.py::test_wait[[]*[]]",
            "    0.2*s test_verbose_summary_lists_slowest_members.py::test_wait[[]*[]]",
            "    0.2*s test_verbose_summary_lists_slowest_members.py::test_wait[[]*[]]",
            "trio_group 'other': 1 test*",
        ]
    )


@pytest.mark.parametrize("args", [["-q"], ["--no-trio-group-summary"]])
def test_summary_can_be_silenced(pytester: pytest.Pytester, args: list[str]) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    result.stdout.no_fnmatch_line("*trio_group summary*")
    result.stdout.no_fnmatch_line("trio_group 'io'*")
