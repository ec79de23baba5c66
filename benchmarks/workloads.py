"""Write the benchmark test suites: the same logical tests in each contender's dialect."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal

Runtime = Literal["trio", "asyncio", "sync"]


class Kind(Enum):
    """What each generated test does."""

    #: W1: wait ``SLEEP_SECONDS`` without using the CPU.
    SLEEP = "sleep"
    #: W2, W4: nothing (one checkpoint for the async dialects).
    TRIVIAL = "trivial"
    #: W3: a function-scoped (async) yield fixture plus ``tmp_path``.
    FIXTURE = "fixture"
    #: The check run when an environment is built: fixtures, tmp_path, a short wait.
    SMOKE = "smoke"


SLEEP_SECONDS = 0.5
#: Deadline given to every trio_group test; far above what any test needs.
GROUP_TIMEOUT = 60


@dataclass(frozen=True)
class Style:
    """How one contender spells an async (or sync) test."""

    name: str
    runtime: Runtime
    #: The mark, as a decorator line; ``{group}`` is replaced by the group name.
    #: It is applied once per module (``pytestmark = ...``), as a suite that
    #: puts whole modules under a plugin would write it.
    decorator: str
    #: All tests in one module (the plugin cannot group tests across modules).
    single_module: bool = False
    #: The plugin can run tests that request ``tmp_path``.
    supports_tmp_path: bool = True
    #: The plugin honours its mark on a module (``pytestmark``); if not, each
    #: test carries it.
    module_mark: bool = True
    #: An import line added to each test module, used or not.
    extra_import: str = ""


STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style(
            "trio-groups", "trio", f'@pytest.mark.trio_group("{{group}}", timeout={GROUP_TIMEOUT})'
        ),
        Style("pytest-trio", "trio", "@pytest.mark.trio"),
        Style(
            "asyncio-concurrent",
            "asyncio",
            '@pytest.mark.asyncio_concurrent(group="{group}")',
            single_module=True,
        ),
        # pytest-asyncio-cooperative 0.40.0 fails every test that requests
        # tmp_path (a KeyError from pytest's item stash), on pytest 8.4 to 9.2.
        Style(
            "asyncio-cooperative",
            "asyncio",
            "@pytest.mark.asyncio_cooperative",
            supports_tmp_path=False,
            # 0.40.0 fails every test whose mark comes from the module.
            module_mark=False,
        ),
        Style("sync", "sync", ""),
        # Plain sync tests in modules that import trio, as a trio suite's do:
        # what importing trio costs a pytest process, without any plugin.
        Style("sync-importing-trio", "sync", "", extra_import="import trio  # noqa: F401"),
    )
}


def _sleep(runtime: Runtime, seconds: float) -> str:
    if runtime == "sync":
        return f"time.sleep({seconds})" if seconds else "pass"
    return f"await {runtime}.sleep({seconds})"


def _imports(runtime: Runtime) -> str:
    extra = {"trio": "import trio", "asyncio": "import asyncio", "sync": "import time"}[runtime]
    return f"{extra}\n\nimport pytest\n" if runtime == "asyncio" else f"import pytest\n{extra}\n"


def _conftest(style: Style) -> str:
    """Fixtures for the FIXTURE and SMOKE suites: a function-scoped yield fixture."""
    runtime = style.runtime
    if runtime == "sync":
        resource = """
            @pytest.fixture
            def resource():
                handle = object()
                yield handle
                del handle
            """
    else:
        resource = f"""
            @pytest.fixture
            async def resource():
                {_sleep(runtime, 0)}
                handle = object()
                yield handle
                {_sleep(runtime, 0)}
            """
    sync_resource = """
        @pytest.fixture
        def sync_resource():
            yield [1, 2, 3]
        """
    return _imports(runtime) + textwrap.dedent(resource) + textwrap.dedent(sync_resource)


def _test_source(style: Style, kind: Kind, index: int, group: str) -> str:
    runtime = style.runtime
    args: list[str] = []
    body: list[str] = []
    if kind is Kind.SLEEP:
        body.append(_sleep(runtime, SLEEP_SECONDS))
    elif kind is Kind.TRIVIAL:
        body.append(_sleep(runtime, 0))
    else:
        args.append("resource")
        body.append("assert resource is not None")
        if kind is Kind.SMOKE:
            args.append("sync_resource")
            body.append("assert sync_resource == [1, 2, 3]")
        if style.supports_tmp_path:
            args.append("tmp_path")
            body.append("assert tmp_path.is_dir()")
        body.append(_sleep(runtime, 0.01 if kind is Kind.SMOKE else 0))
    if body[-1] == "pass" and len(body) > 1:
        body.pop()
    prefix = "def" if runtime == "sync" else "async def"
    lines = [] if style.module_mark else [style.decorator.format(group=group)]
    lines = [line for line in lines if line]
    lines.append(f"{prefix} test_{kind.value}_{index:05d}({', '.join(args)}):")
    lines.extend(f"    {line}" for line in body)
    return "\n".join(lines) + "\n"


def write_suite(
    root: Path, style: Style, kind: Kind, n_tests: int, *, group: str, modules: int = 10
) -> Path:
    """Write ``n_tests`` tests of ``kind`` in ``style`` under ``root``; return ``root``.

    The tests are spread over ``modules`` files (one for single-module
    styles), with a ``conftest.py`` for the fixtures and an empty
    ``pytest.ini`` so that ``root`` is pytest's rootdir.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    if kind in (Kind.FIXTURE, Kind.SMOKE):
        (root / "conftest.py").write_text(_conftest(style))
    n_modules = 1 if style.single_module else max(1, min(modules, n_tests))
    per_module, extra = divmod(n_tests, n_modules)
    start = 0
    for module in range(n_modules):
        count = per_module + (1 if module < extra else 0)
        tests = [_test_source(style, kind, i, group) for i in range(start, start + count)]
        start += count
        mark = style.decorator.format(group=group).removeprefix("@") if style.module_mark else ""
        header = _imports(style.runtime) + (f"{style.extra_import}\n" if style.extra_import else "")
        header += f"\npytestmark = {mark}\n" if mark else ""
        source = header + "\n\n" + "\n\n".join(tests)
        (root / f"test_{kind.value}_{module:02d}.py").write_text(source)
    return root
