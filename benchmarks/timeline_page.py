"""The timeline page at scale, and the screenshot in the docs.

``python3 benchmarks/timeline_page.py`` runs a generated suite of
``--groups`` groups of ``--tests`` tests each (default 100 x 100: 10,000
tests) with ``--trio-group-timeline``, then draws the page in headless
Chromium ``--repeat`` times and prints the page's size, the time its own
script took to draw it (the page records it on its root element) and the
browser's wall time. The results go to stdout; copy them into
``RESULTS-timeline.md``.

``--screenshot PNG`` instead runs the example suite (``examples/``) and
saves a screenshot of its page, as the docs show it.

Uses the Python it runs with (with the plugin installed) and Debian's
``chromium``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no Chromium found (Debian: apt-get install chromium)")


#: Plugins of the test extra that would only add noise to these runs.
QUIET_PLUGINS = ["-p", "no:randomly", "-p", "no:asyncio", "-p", "no:anyio"]
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def write_suite(where: Path, groups: int, tests: int) -> None:
    for g in range(groups):
        (where / f"test_g{g:03d}.py").write_text(
            "import pytest, trio\n\n"
            f'@pytest.mark.trio_group("g{g:03d}")\n'
            f'@pytest.mark.parametrize("n", range({tests}))\n'
            "async def test_wait(n):\n"
            "    await trio.sleep(0.001 * (n % 7))\n"
            "    assert n % 97 != 13\n",
            encoding="utf-8",
        )


def run_pytest(where: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=where,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def draw(page: Path) -> tuple[float, float, int]:
    """Draw the page once: (the page's own drawing time in ms, the browser's wall s, lanes)."""
    start = time.perf_counter()
    done = subprocess.run(
        [browser(), *BROWSER_FLAGS, "--virtual-time-budget=30000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    wall = time.perf_counter() - start
    root = re.search(r"<html[^>]*>", done.stdout)
    assert root is not None and 'data-rendered="yes"' in root.group(0), done.stdout[:300]
    assert "data-errors" not in root.group(0), root.group(0)
    render = re.search(r'data-render-ms="([0-9.]+)"', root.group(0))
    lanes = re.search(r'data-lanes="([0-9]+)"', root.group(0))
    assert render is not None and lanes is not None
    return float(render.group(1)), wall, int(lanes.group(1))


def scale(groups: int, tests: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        write_suite(where, groups, tests)
        seconds = run_pytest(where, "--trio-group-timeline", "t.html")
        page = where / "t.html"
        size = page.stat().st_size
        draws = [draw(page) for _ in range(repeat)]
        lanes = {lanes for _, _, lanes in draws}
        assert lanes == {groups * tests}, lanes
        print(
            f"suite: {groups} groups x {tests} tests = {groups * tests} tests, pytest {seconds:.1f}s"
        )
        print(f"page: {size / 1e6:.2f} MB ({size} bytes), {groups * tests} lanes drawn")
        print(
            "page's own drawing time: median "
            f"{statistics.median(d[0] for d in draws):.0f} ms "
            f"({', '.join(f'{d[0]:.0f}' for d in draws)})"
        )
        print(
            "headless Chromium wall time (start, load, draw, dump): median "
            f"{statistics.median(d[1] for d in draws):.2f} s "
            f"({', '.join(f'{d[1]:.2f}' for d in draws)})"
        )


def screenshot(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "timeline.html"
        run_pytest(PROJECT, "examples", "--trio-group-timeline", str(page))
        subprocess.run(
            [
                browser(),
                *BROWSER_FLAGS,
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--virtual-time-budget=5000",
                f"--screenshot={target.resolve()}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    if not target.exists():
        sys.exit(f"the browser wrote no screenshot to {target}")
    print(f"screenshot written to {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--screenshot", type=Path, metavar="PNG")
    args = parser.parse_args()
    if args.screenshot is not None:
        screenshot(args.screenshot)
    else:
        scale(args.groups, args.tests, args.repeat)


if __name__ == "__main__":
    main()
