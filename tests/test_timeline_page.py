"""The timeline page: one self-contained HTML file, a lane per test (P8)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SUITE = """
import time, pytest, trio

@pytest.mark.trio_group("io", timeout=5)
@pytest.mark.parametrize("n", range(3))
async def test_waits(n):
    await trio.sleep(0.01 * n)

@pytest.mark.trio_group("io", timeout=0.2)
async def test_times_out():
    await trio.sleep_forever()

@pytest.mark.trio_group("io", timeout=5)
async def test_fails(monkeypatch):
    monkeypatch.setenv("SHARED", "1")
    await trio.sleep(0.05)
    assert False, "</script><!-- the reply was lost"

@pytest.mark.trio_group("io", timeout=5)
async def test_blocks(monkeypatch):
    monkeypatch.setenv("SHARED", "2")
    time.sleep(0.3)

@pytest.mark.trio_group("io")
async def test_skips():
    pytest.skip("no network here")

@pytest.mark.trio_group("other")
async def test_alone():
    pass
"""

SPAN_FIELDS = ("phase", "start", "duration", "outcome", "message", "timeout", "attempt", "alone")


def _page(path: Path) -> tuple[str, dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    found = re.search(
        r'<script type="application/json" id="timeline-data">(.*?)</script>', text, re.S
    )
    assert found is not None
    return text, json.loads(found.group(1))


def _lanes(data: dict[str, Any]) -> dict[str, tuple[str, list[dict[str, Any]], list[list[Any]]]]:
    """Each test's group, spans (as dicts) and marks."""
    lanes = {}
    for group in data["groups"]:
        for nodeid, spans, marks in group["lanes"]:
            assert nodeid not in lanes
            lanes[nodeid] = (
                group["name"],
                [dict(zip(SPAN_FIELDS, span, strict=True)) for span in spans],
                marks,
            )
    return lanes


def test_the_page_holds_every_tests_phases_outcomes_and_warnings(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_page=SUITE)
    result = pytester.runpytest(
        "--trio-group-timeline", "out/timeline.html", "--trio-group-blocked-threshold", "0.1"
    )
    result.assert_outcomes(passed=5, failed=2, skipped=1, warnings=2)
    result.stdout.fnmatch_lines(["trio_group timeline page written to *out?timeline.html"])
    text, data = _page(pytester.path / "out" / "timeline.html")

    # Self-contained: nothing is fetched.
    assert not re.search(r"<(script|link|img|iframe)[^>]*\b(src|href)=", text)
    assert "url(" not in text and "@import" not in text and "http" not in text.lower()
    # A message cannot end the data's script element.
    assert "</script><!--" not in text

    groups = {group["name"]: group for group in data["groups"]}
    assert set(groups) == {"trio_group 'io'", "trio_group 'other'"}
    # Each group's summary line, as the terminal shows it.
    assert groups["trio_group 'io'"]["line"].startswith(
        "trio_group 'io': 7 tests (2 failed, 4 passed, 1 skipped) in "
    )
    assert "event loop blocked once" in groups["trio_group 'io'"]["line"]
    result.stdout.fnmatch_lines([groups["trio_group 'io'"]["line"].replace("[", "[[]")])

    lanes = _lanes(data)
    assert sorted(lanes) == sorted(
        [f"test_page.py::test_waits[{n}]" for n in range(3)]
        + [f"test_page.py::test_{name}" for name in ("times_out", "fails", "blocks", "skips")]
        + ["test_page.py::test_alone"]
    )
    for nodeid, (group, spans, _) in lanes.items():
        assert group == ("trio_group 'other'" if nodeid.endswith("alone") else "trio_group 'io'")
        assert [span["phase"] for span in spans] == ["setup", "call", "teardown"][: len(spans)]
        for earlier, later in itertools.pairwise(spans):
            assert earlier["start"] + earlier["duration"] <= later["start"] + 1e-6
        start, end = groups[group]["start"], groups[group]["end"]
        assert all(start <= s["start"] and s["start"] + s["duration"] <= end for s in spans)

    def calls(nodeid: str) -> dict[str, Any]:
        return next(span for span in lanes[nodeid][1] if span["phase"] == "call")

    timed_out = calls("test_page.py::test_times_out")
    assert (timed_out["outcome"], timed_out["timeout"]) == ("failed", 1)
    assert timed_out["message"].startswith("Failed: Timeout: test exceeded 0.2s (trio_group 'io')")
    failed = calls("test_page.py::test_fails")
    assert (failed["outcome"], failed["timeout"]) == ("failed", 0)
    assert failed["message"] == "AssertionError: </script><!-- the reply was lost"
    skipped = calls("test_page.py::test_skips")
    assert (skipped["outcome"], skipped["message"]) == ("skipped", "no network here")
    passed = calls("test_page.py::test_waits[2]")
    assert (passed["outcome"], passed["message"], passed["attempt"], passed["alone"]) == (
        "passed",
        "",
        1,
        0,
    )
    assert passed["duration"] >= 0.02

    marks = {nodeid: marks for nodeid, (_, _, marks) in lanes.items() if marks}
    assert list(marks) == ["test_page.py::test_blocks"]
    blocked, hazard = sorted(marks["test_page.py::test_blocks"])
    assert blocked[0] == "blocked" and blocked[2] >= 0.25
    assert blocked[3] == "at test_page.py:21 in test_blocks"
    # The block is drawn where it happened: inside the test's call.
    call = calls("test_page.py::test_blocks")
    assert call["start"] - 0.01 <= blocked[1] <= call["start"] + call["duration"]
    assert hazard[0] == "hazard"
    assert hazard[3].startswith("os.environ['SHARED'] changed at test_page.py:20 in test_blocks")
    assert "while running: test_page.py::test_fails" in hazard[3]


def test_reruns_and_runs_alone_are_marked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_page="""
        import pytest, trio

        RUNNING = []
        SEEN = set()  # the tests that ran since none was running

        @pytest.mark.trio_group("g")
        @pytest.mark.parametrize("n", range(2))
        async def test_alone_only(n):
            if not RUNNING:
                SEEN.clear()
            RUNNING.append(n)
            SEEN.add(n)
            try:
                await trio.sleep(0.05)
                assert SEEN == {n}, "another test ran"
            finally:
                RUNNING.remove(n)
        """
    )
    result = pytester.runpytest("--trio-group-timeline", "t.html", "--trio-group-pass-alone")
    result.assert_outcomes(passed=2, warnings=2)
    _, data = _page(pytester.path / "t.html")
    for nodeid, (_, spans, _) in _lanes(data).items():
        # The failed attempt in the group, then the run alone after it.
        assert [(s["phase"], s["outcome"], s["attempt"], s["alone"]) for s in spans] == [
            ("setup", "passed", 1, 0),
            ("call", "failed", 1, 0),
            ("teardown", "passed", 1, 0),
            ("setup", "passed", 2, 1),
            ("call", "passed", 2, 1),
            ("teardown", "passed", 2, 1),
        ], nodeid


def test_under_xdist_the_controller_writes_one_page_for_every_worker(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    for name in ("a", "b"):
        pytester.makepyfile(
            **{
                f"test_{name}": f"""
                import pytest, trio

                @pytest.mark.trio_group("{name}")
                @pytest.mark.parametrize("n", range(3))
                async def test_one(n):
                    await trio.sleep(0.2)
                """
            }
        )
    result = pytester.runpytest("-n", "2", "--trio-group-timeline", "t.html")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["trio_group timeline page written to *t.html"])
    assert not list(pytester.path.glob("t-gw*.html"))
    _, data = _page(pytester.path / "t.html")
    names = sorted(group["name"] for group in data["groups"])
    assert len(names) == 2
    assert {name.rsplit(" ", 1)[0] for name in names} == {"trio_group 'a'", "trio_group 'b'"}
    assert {name.rsplit(" ", 1)[1] for name in names} <= {"[gw0]", "[gw1]"}
    assert sorted(_lanes(data)) == sorted(
        f"test_{name}.py::test_one[{n}]" for name in "ab" for n in range(3)
    )


def test_no_page_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_page=SUITE)
    result = pytester.runpytest()
    result.stdout.no_fnmatch_line("*timeline page written*")
    assert not list(pytester.path.rglob("*.html"))


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render_in_browser(page: Path, browser: str) -> tuple[str, str]:
    """The page's DOM after its script ran in headless Chromium, and the browser's log."""
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_the_page_renders_a_lane_per_test_without_script_errors(
    pytester: pytest.Pytester,
) -> None:
    browser = _browser()
    if browser is None:
        if os.environ.get("TRIO_GROUPS_REQUIRE_BROWSER"):
            pytest.fail("TRIO_GROUPS_REQUIRE_BROWSER is set and no Chromium is installed")
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    pytester.makepyfile(test_page=SUITE)
    pytester.runpytest("--trio-group-timeline", "t.html", "--trio-group-blocked-threshold", "0.1")
    dom, log = render_in_browser(pytester.path / "t.html", browser)
    root = re.search(r"<html[^>]*>", dom)
    assert root is not None, dom[:500]
    assert 'data-rendered="yes"' in root.group(0), root.group(0)
    assert "data-errors" not in root.group(0)
    assert "Uncaught" not in log
    assert 'data-lanes="8"' in root.group(0)
    # A lane per test, each with its name, in the drawn document.
    names = re.findall(r'<div class="lane"[^>]*><span class="name" title="([^"]+)"', dom)
    assert sorted(names) == sorted(
        [f"test_page.py::test_waits[{n}]" for n in range(3)]
        + [f"test_page.py::test_{name}" for name in ("times_out", "fails", "blocks", "skips")]
        + ["test_page.py::test_alone"]
    )
    assert dom.count('class="call o-failed timeout"') == 1
    assert dom.count('class="blocked"') == 1 and dom.count('class="hazard"') == 1
