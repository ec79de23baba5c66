"""The timeline page: the recording of ``_trace`` drawn as one self-contained HTML file.

The page holds its data as JSON and draws it with its own script: no
network, no external script, style or font. Times are seconds from the
start of the session (of the earliest worker, under pytest-xdist).

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import shlex
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

_PLACEHOLDER = "__TIMELINE_DATA__"


def _seconds(micros: float, shift: float) -> float:
    return round(micros / 1e6 + shift, 6)


def _mark(event: dict[str, Any], shift: float) -> list[Any]:
    args = event.get("args", {})
    at = _seconds(event["ts"], shift)
    if event["name"] == "event loop blocked":
        return ["blocked", at, round(args.get("seconds", 0.0), 6), f"at {args.get('at', '?')}"]
    running = ", ".join(args.get("running", []))
    text = f"{args.get('what', '?')} changed at {args.get('at', '?')}"
    if running:
        text += f"\nwhile running: {running}"
    return ["hazard", at, 0, text]


def _groups(recording: dict[str, Any], origin: float) -> list[dict[str, Any]]:
    """One recording's group runs, each with a lane per test in the order they started."""
    shift = recording["origin"] - origin
    names: dict[int, str] = {}
    lanes: dict[tuple[int, int], list[Any]] = {}
    for event in recording["events"]:
        key = (event["pid"], event["tid"])
        name = event["name"]
        if name == "process_name":
            names[event["pid"]] = event["args"]["name"]
        elif name == "thread_name":
            lanes[key] = [event["args"]["name"], [], []]
    for event in recording["events"]:
        lane = lanes.get((event["pid"], event["tid"]))
        if lane is None:
            continue
        if event["ph"] == "X" and event.get("cat") == "phase":
            args = event["args"]
            lane[1].append(
                [
                    event["name"],
                    _seconds(event["ts"], shift),
                    round(event["dur"] / 1e6, 6),
                    args["outcome"],
                    args.get("message", ""),
                    1 if args.get("timeout") else 0,
                    args.get("attempt", 1),
                    1 if args.get("alone") else 0,
                ]
            )
        elif event["ph"] == "i":
            lane[2].append(_mark(event, shift))
    groups = []
    for pid, name in names.items():
        members = [lane for (lane_pid, tid), lane in sorted(lanes.items()) if lane_pid == pid]
        ends = [span[1] + span[2] for lane in members for span in lane[1]]
        ends += [mark[1] + mark[2] for lane in members for mark in lane[2]]
        starts = [span[1] for lane in members for span in lane[1]]
        bounds = recording.get("bounds", {}).get(str(pid))
        if bounds:
            starts.append(_seconds(bounds[0], shift))
            ends.append(_seconds(bounds[1], shift))
        groups.append(
            {
                "name": name,
                "line": recording.get("lines", {}).get(str(pid), ""),
                "start": min(starts, default=0.0),
                "end": max(ends, default=0.0),
                "lanes": members,
            }
        )
    return groups


def page_data(recordings: list[dict[str, Any]], config: pytest.Config) -> dict[str, Any]:
    """What the page draws: every group run of every recording, in the order they started."""
    origin = min((recording["origin"] for recording in recordings), default=time.time())
    groups = [group for recording in recordings for group in _groups(recording, origin)]
    groups.sort(key=lambda group: group["start"])
    made = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(origin))
    return {
        "made": f"session started {made}",
        "command": shlex.join(["pytest", *config.invocation_params.args]),
        "groups": groups,
    }


def render(data: dict[str, Any]) -> str:
    """The page, with ``data`` in it (safe inside its ``<script>`` element)."""
    template = files("pytest_trio_groups").joinpath("timeline.html").read_text(encoding="utf-8")
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # "</script>" or "<!--" in a node id or message must not end the element.
    text = text.replace("<", "\\u003c")
    return template.replace(_PLACEHOLDER, text)


def write_page(path: Path, recordings: list[dict[str, Any]], config: pytest.Config) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(page_data(recordings, config)), encoding="utf-8")
