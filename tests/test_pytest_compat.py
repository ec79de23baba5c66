"""Pins each private pytest behaviour ``_pytest_compat`` relies on, on the installed pytest."""

from __future__ import annotations

import pytest


def test_fixture_internals(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import functools
        import pytest
        from pytest_trio_groups import _pytest_compat as compat

        @pytest.fixture
        def base():
            yield 1

        @pytest.fixture
        def top(base):
            return base + 1

        def test_fixture_plan(request, top):
            item = request.node
            table = compat.item_fixturedefs(item)
            assert set(table) >= {"base", "top"}
            assert compat.test_argnames(item) == ("request", "top")
            assert compat.top_request(item) is request or compat.top_request(item).node is item
            assert compat.pyfuncitem(request) is item

            base_def = table["base"][-1]
            # FixtureDef.execute registered partial(top.finish, request=...) on base.
            targets = [compat.finish_target(f) for f in compat.fixture_finalizers(base_def)]
            assert any(t is not None and t[0].argname == "top" for t in targets)

            clone = compat.clone_fixturedef(base_def)
            assert clone.cached_result is None
            assert compat.fixture_finalizers(clone) == []
            assert compat.fixture_finalizers(clone) is not compat.fixture_finalizers(base_def)
            assert base_def.cached_result is not None

        def test_setup_state_and_call_info(request):
            state = compat.setup_state(request.session)
            assert request.node in state.stack
            info = compat.make_call_info(None, 1.0, 2.0, 1.0, "call")
            assert (info.when, info.start, info.stop, info.duration, info.excinfo) == (
                "call", 1.0, 2.0, 1.0, None
            )
            skip = compat.make_skip("why")
            assert isinstance(skip, pytest.skip.Exception)
            assert skip._use_item_location

        def test_conftests_and_plugins(request):
            assert compat.conftests_not_for(request.node) == set()
            assert compat.logging_plugin(request.config) is not None
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_logging_and_warning_internals(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import logging
        import warnings
        from pytest_trio_groups import _pytest_compat as compat

        def test_caplog_levels(caplog):
            caplog.set_level(logging.DEBUG, logger="some.logger")
            assert compat.caplog_changed_levels(caplog) == {"some.logger": logging.NOTSET}

        def test_caplog_stash(request):
            handler = compat.new_log_capture_handler()
            compat.set_caplog_phase(request.node, "call", handler)
            caplog = request.getfixturevalue("caplog")
            logging.getLogger("x").warning("hello")
            handler.handle(logging.LogRecord("x", logging.WARNING, "f", 1, "direct", None, None))
            assert [r.getMessage() for r in caplog.get_records("call")][-1] == "direct"

        def test_parse_warning_filter():
            assert compat.parse_warning_filter("ignore::UserWarning")[:3] == (
                "ignore", "", UserWarning
            )
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


@pytest.mark.parametrize(("method", "count"), [("fd", 2), ("sys", 2), ("no", 0)])
def test_global_capture_internals(pytester: pytest.Pytester, method: str, count: int) -> None:
    pytester.makepyfile(
        f"""
        from pytest_trio_groups import _pytest_compat as compat

        def test_captures(request):
            capman = request.config.pluginmanager.getplugin("capturemanager")
            captures = compat.global_sys_captures(capman)
            assert len(captures) == {count}
            for capture in captures:
                assert hasattr(capture.tmpfile, "write")
            result = compat.capture_result("o", "e")
            assert (result.out, result.err) == ("o", "e")
        """
    )
    pytester.runpytest(f"--capture={method}").assert_outcomes(passed=1)


def test_monkeypatch_undo_records(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, types
        import pytest
        from pytest_trio_groups import _pytest_compat as compat

        def test_records(monkeypatch):
            target = types.SimpleNamespace(present=1)
            mapping = {"present": 1}
            monkeypatch.setattr(target, "present", 2)
            monkeypatch.setattr(target, "missing", 2, raising=False)
            monkeypatch.setitem(mapping, "missing", 2)
            monkeypatch.setenv("PYTEST_TRIO_GROUPS_PIN", "x")
            attributes, items = compat.monkeypatch_undo_records(monkeypatch)
            notset = compat.monkeypatch_notset()
            assert attributes == [(target, "present", 1), (target, "missing", notset)]
            assert items[0] == (mapping, "missing", notset)
            assert items[1][:2] == (os.environ, "PYTEST_TRIO_GROUPS_PIN")
            monkeypatch.undo()
            assert compat.monkeypatch_undo_records(monkeypatch) == ([], [])
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_rerun_and_faulthandler_internals(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfaulthandler_timeout = 7\n")
    pytester.makepyfile(
        """
        import os
        import pytest
        from pytest_trio_groups import _pytest_compat as compat

        @pytest.fixture
        def value():
            return object()

        class TestRerun:
            def test_renew_request(self, request, value):
                item = request.node
                instance, request_before = item.instance, compat.top_request(item)
                compat.renew_request(item)
                assert item.funcargs == {}
                assert compat.top_request(item) is not request_before
                assert item.instance is not instance
                assert item.obj.__self__ is item.instance

        def test_release_request_leaves_what_pytest_leaves(request):
            # pytest's own runner has released the item that ran before.
            before = request.session.items[0]
            pytest_left = (before._request, before.funcargs)
            compat.renew_request(before)
            compat.release_request(before)
            assert (before._request, before.funcargs) == pytest_left == (False, None)
            compat.renew_request(before)
            assert before.funcargs == {} and compat.top_request(before)

        def test_faulthandler(request):
            os.fstat(compat.faulthandler_fd(request.config))
            assert compat.faulthandler_exit_on_timeout(request.config) is False
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_unraisable_and_thread_exception_queues(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        import pytest
        from pytest_trio_groups import _pytest_compat as compat

        class Raises:
            def __del__(self):
                raise ValueError("from __del__")

        def boom():
            raise RuntimeError("in a thread")

        def test_queues_and_collectors(request):
            config = request.config
            for name in compat.EXCEPTION_CHECK_PLUGINS:
                assert config.pluginmanager.get_plugin(name) is not None
            (unraisable, collect_unraisable), (thread, collect_thread) = (
                compat.pending_exception_checks(config)
            )
            Raises()
            t = threading.Thread(target=boom)
            t.start()
            t.join()
            assert (len(unraisable), len(thread)) == (1, 1)
            with pytest.warns(pytest.PytestUnraisableExceptionWarning):
                collect_unraisable(config)
            with pytest.warns(pytest.PytestUnhandledThreadExceptionWarning):
                collect_thread(config)
            assert (len(unraisable), len(thread)) == (0, 0)

        def test_only_the_active_plugins(request):
            assert len(compat.pending_exception_checks(request.config)) == 1
        """
    )
    pytester.runpytest("-k", "collectors").assert_outcomes(passed=1, deselected=1)
    pytester.runpytest("-p", "no:threadexception", "-k", "active_plugins").assert_outcomes(
        passed=1, deselected=1
    )


def test_foreign_plugin_internals(pytester: pytest.Pytester) -> None:
    # pytest-timeout's and pytest-rerunfailures' private helpers used by
    # src/pytest_trio_groups/_plugins/, on the installed versions.
    pytester.makepyfile(
        """
        import pytest
        import pytest_rerunfailures
        from pytest_trio_groups._plugins import rerunfailures, timeout

        @pytest.mark.timeout(3, method="thread", func_only=True)
        def test_timeout_settings(request):
            settings = timeout.item_settings(request.node)
            assert (settings.timeout, settings.method, settings.func_only) == (3, "thread", True)

        def test_rerunfailures_helpers():
            for name in rerunfailures._NEEDED:
                assert callable(getattr(pytest_rerunfailures, name)), name
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_fixture_function_replacement_and_default_setup(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from pytest_trio_groups import _pytest_compat as compat

        SEEN = []

        def replacement():
            return "replaced"

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_setup(item):
            # What a group member gets: its own table, with one function replaced.
            table = dict(compat.item_fixturedefs(item))
            clone = compat.clone_fixturedef(table["original"][-1])
            compat.set_fixture_function(clone, replacement)
            assert clone.argnames == ()
            table["original"] = (clone,)
            compat.set_request_fixturedefs(item, table)
            assert compat.request_fixturedefs(item) is table

        @pytest.hookimpl(tryfirst=True)
        def pytest_fixture_setup(fixturedef, request):
            if fixturedef.argname == "plain":
                value = compat.default_fixture_setup(fixturedef, request)
                SEEN.append((value, fixturedef.cached_result[0]))
                return value
        """
    )
    pytester.makepyfile(
        """
        import pytest
        import conftest

        @pytest.fixture
        def original(request):
            return "original"

        @pytest.fixture
        def plain(original):
            return "plain:" + original

        def test_replaced_function_runs(original, plain):
            assert original == "replaced"
            assert plain == "plain:replaced"
            assert conftest.SEEN == [("plain:replaced", "plain:replaced")]
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
