"""Every hook is documented in its spec docstring and has a test (datasette's rule)."""

import inspect
import re
from pathlib import Path

import pytest

from mattezoo import hookspecs
from mattezoo.plugins import make_plugin_manager

HOOKS = sorted(name for name in dir(make_plugin_manager(builtins=False, entry_points=False).hook) if name.startswith("mattezoo_"))
TESTS_SOURCE = (Path(__file__).parent / "test_plugins.py").read_text()


def test_hooks_are_prefixed_and_found():
    assert HOOKS == sorted(n for n, f in vars(hookspecs).items() if n.startswith("mattezoo_") and callable(f))
    assert HOOKS, "no hooks found"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented(name):
    pm = make_plugin_manager(builtins=False, entry_points=False)
    caller = getattr(pm.hook, name)
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert len(doc.splitlines()) >= 3, f"{name} needs a real docstring"
    for arg in caller.spec.argnames:
        assert f":param {arg}:" in doc, f"{name}: docstring does not document argument {arg!r}"
    assert ":return:" in doc, f"{name}: docstring does not say what to return"
    assert "Example::" in doc, f"{name}: docstring has no example implementation"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name):
    assert re.search(rf"^def test_hook_{name}\(", TESTS_SOURCE, re.M), f"tests/test_plugins.py lacks test_hook_{name}"


def test_builtin_plugins_implement_only_known_hooks():
    pm = make_plugin_manager(entry_points=False)
    pm.check_pending()
    assert not pm.failures, [f.error for f in pm.failures]
