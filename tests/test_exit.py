"""At exit nothing of the plugin's holds the session: it is freed with the modules, not after (P7).

At interpreter exit CPython drops ``sys.modules`` and collects garbage. What
is still referenced from outside the modules then -- an ``os.register_at_fork``
callback, typing's caches -- lives on, with all it reaches, through every
later collection: each walks all of it again. A session's objects (items,
reports, fixture definitions) reach the config, so anything that keeps the
config keeps them all.
"""

from __future__ import annotations

import pytest

#: At exit, after every other ``atexit`` function: the objects something
#: outside Python's objects holds (refcount above the references other
#: objects hold), and whether the config is reachable from one of them
#: without going through ``sys`` (whose modules exit clears first). It is
#: compiled apart from the conftest, whose globals would hold the config.
CHECKER = """
import atexit, collections, gc, sys, types

def check(config_ref, out):
    gc.collect()
    target = id(config_ref())
    objects = gc.get_objects()
    held = collections.Counter()
    for obj in objects:
        for referent in gc.get_referents(obj):
            held[id(referent)] += 1
    referent = obj = None
    # Refcount taken with: ``objects``, the loop variable, the call's argument.
    blocked = {id(sys.modules), id(sys.__dict__), id(objects), id(globals())}
    roots = [
        obj for obj in objects
        if not isinstance(obj, (types.FrameType, types.ModuleType))
        and id(obj) not in blocked
        and sys.getrefcount(obj) - 3 > held[id(obj)]
    ]
    obj = None
    blocked.add(id(roots))
    came_from = {id(root): None for root in roots}
    by_id = {id(root): root for root in roots}
    queue = collections.deque(roots)
    found = False
    while queue:
        obj = queue.popleft()
        if id(obj) == target:
            found = True
            break
        for referent in gc.get_referents(obj):
            if id(referent) not in came_from and id(referent) not in blocked:
                came_from[id(referent)] = id(obj)
                by_id[id(referent)] = referent
                queue.append(referent)
    chain = []
    step = target if found else None
    while step is not None:
        node = by_id[step]
        name = type(node).__module__ + "." + type(node).__qualname__
        if isinstance(node, (type, types.FunctionType)):
            name += " " + node.__module__ + "." + node.__qualname__
        elif isinstance(node, types.ModuleType):
            name += " " + node.__name__
        elif isinstance(node, dict):
            name += " " + ",".join(str(key)[:30] for key in list(node)[:5])
        chain.append(name)
        step = came_from[step]
    with open(out, "w") as f:
        f.write("held: %s\\n" % found)
        f.write("\\n".join(reversed(chain)))

def install(config, out):
    import weakref
    atexit.register(check, weakref.ref(config), out)
"""

CONFTEST = f"""
import os
CHECKER = {CHECKER!r}

def pytest_unconfigure(config):
    namespace = {{"__builtins__": __builtins__}}
    exec(compile(CHECKER, "exit_checker", "exec"), namespace)
    namespace["install"](config, os.path.join(str(config.rootpath), "held.txt"))
"""

#: A group with a passing, a failing and a skipped member, their warnings and
#: fixtures, and tests outside groups: the objects a session keeps until it ends.
SUITE = """
import warnings
import pytest
import trio

@pytest.fixture
async def resource():
    await trio.sleep(0)
    yield 1

@pytest.mark.trio_group("g", timeout=30)
async def test_passes(resource):
    warnings.warn(UserWarning("seen"))
    assert resource == 1

@pytest.mark.trio_group("g", timeout=30)
async def test_fails():
    await trio.sleep(0)
    assert False

@pytest.mark.trio_group("g", timeout=30)
async def test_skips():
    pytest.skip("no")

@pytest.mark.trio_group(timeout=30)
async def test_alone():
    await trio.sleep(0)

def test_sync():
    pass
"""


#: The other plugins of the test environment are left out: what they keep is
#: their own (pytest-rerunfailures' server thread holds its config; pytest-mock's
#: overloads sit in typing's registry, which lives as long as trio's modules).
_OWN_ONLY = (
    *("-p", "no:trio", "-p", "no:rerunfailures", "-p", "no:xdist", "-p", "no:cov"),
    *("-p", "no:hypothesispytest", "-p", "no:timeout", "-p", "no:pytest_mock"),
)


def _held(pytester: pytest.Pytester) -> str:
    return (pytester.path / "held.txt").read_text()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="run"),
        # Collection alone: the marks read, the specs kept on the items.
        pytest.param(("--collect-only",), id="collect-only"),
    ],
)
def test_nothing_outside_the_modules_holds_the_session_at_exit(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess(*_OWN_ONLY, *args)
    if not args:
        result.assert_outcomes(passed=3, failed=1, skipped=1, warnings=1)
    assert _held(pytester) == "held: False\n"


def test_the_check_sees_a_session_held_at_exit(pytester: pytest.Pytester) -> None:
    # What the check above would report: a fork callback (which outlives the
    # modules) holding the config, as an object of a test module would.
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import os

        def test_holds(pytestconfig):
            os.register_at_fork(after_in_child=lambda config=pytestconfig: None)
        """
    )
    result = pytester.runpytest_subprocess(*_OWN_ONLY)
    result.assert_outcomes(passed=1)
    held = _held(pytester)
    assert held.startswith("held: True\n")
    assert held.endswith("_pytest.config.Config")
