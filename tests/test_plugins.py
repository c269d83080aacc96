"""Plugin loading: hooks, entry points, blocking, broken plugins.

Every hook in mattezoo/hookspecs.py has a ``test_hook_<name>`` here
(tests/test_hookspecs.py enforces it).
"""

import importlib
import textwrap
from pathlib import Path

import pytest
import torch

import mattezoo
from mattezoo import MethodSpec, WeightsCfg, hookimpl
from mattezoo.cli import main as cli_main
from mattezoo.errors import CheckpointError
from mattezoo.plugins import make_plugin_manager
from mattezoo.testing import registered_plugin
from toy_plugins import TINY, ToyPlugin, build_tiny


def test_hook_mattezoo_register_methods():
    with registered_plugin(ToyPlugin(), "toys"):
        assert mattezoo.list_methods("tiny*") == ["tiny_net"]
        alpha = mattezoo.predict("tiny_net", mattezoo.testing.sample_inputs(24, 20)[0])
        assert alpha.shape == (24, 20)


class MirrorPlugin:
    """Answers weight look-ups from a local mirror folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.calls = []

    @hookimpl
    def mattezoo_resolve_weights(self, spec, tag, cfg):
        self.calls.append((spec.name, tag, cfg.file))
        candidate = self.folder / cfg.file
        return candidate if candidate.is_file() else None


def test_hook_mattezoo_resolve_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("MATTEZOO_WEIGHTS", raising=False)
    trained = build_tiny()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)
    torch.save(trained.state_dict(), tmp_path / "tiny-v1.pth")
    spec = MethodSpec(
        name="tiny_w", family="trimap-free", factory="toy_plugins:build_tiny", summary="s", citation="c",
        weights={"v1": WeightsCfg(file="tiny-v1.pth"), "v2": WeightsCfg(file="absent.pth")},
    )
    mirror = MirrorPlugin(tmp_path)
    with registered_plugin(ToyPlugin(spec), "toys"), registered_plugin(mirror, "mirror"):
        model = mattezoo.create_method("tiny_w.v1")
        assert mirror.calls == [("tiny_w", "v1", "tiny-v1.pth")]
        for ours, theirs in zip(model.parameters(), trained.parameters()):
            assert torch.equal(ours, theirs)
        with pytest.raises(CheckpointError, match=r"tiny_w\.v2 \(absent\.pth\) are not on this machine"):
            mattezoo.create_method("tiny_w", pretrained="v2")


def _fake_distribution(root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]):
    """A minimal installed distribution on ``root`` (a sys.path entry)."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[mattezoo]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


GOOD_PLUGIN = """
from mattezoo import MethodSpec, hookimpl

@hookimpl
def mattezoo_register_methods():
    return [MethodSpec(name="ep_tiny", family="trimap-free", factory="toy_plugins:build_tiny",
                       summary="from an entry point", citation="tests")]
"""


def test_entry_point_plugins_load_and_a_broken_one_is_reported(tmp_path, monkeypatch, fresh_plugins, capsys):
    _fake_distribution(
        tmp_path,
        "fake_plugins",
        {"good_ep": "good_ep_plugin", "broken_ep": "broken_ep_plugin", "typo_ep": "typo_ep_plugin"},
        {
            "good_ep_plugin": GOOD_PLUGIN,
            "broken_ep_plugin": "raise ImportError('needs a library that is not installed')\n",
            "typo_ep_plugin": "from mattezoo import hookimpl\n\n@hookimpl\ndef mattezoo_register_method():\n    return []\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    with pytest.warns(RuntimeWarning) as warned:
        names = mattezoo.list_methods()
    assert "ep_tiny" in names
    messages = " ".join(str(w.message) for w in warned)
    assert "'broken_ep'" in messages and "needs a library that is not installed" in messages
    assert "'typo_ep'" in messages and "mattezoo_register_method" in messages
    pm = mattezoo.plugins.get_plugin_manager()
    assert pm.info["good_ep"].distribution == "fake_plugins"
    assert {f.name for f in pm.failures} == {"broken_ep", "typo_ep"}
    assert cli_main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ep_tiny" in out and "fake_plugins" in out
    assert "failed plugins (2)" in out and "broken_ep (broken_ep_plugin): ImportError" in out


def test_blocking_by_environment_skips_a_plugin(tmp_path, monkeypatch, fresh_plugins):
    _fake_distribution(tmp_path, "fake_plugins2", {"good_ep2": "good_ep_plugin2"}, {"good_ep_plugin2": GOOD_PLUGIN})
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert "ep_tiny" in mattezoo.list_methods()
    monkeypatch.setenv("MATTEZOO_DISABLE_PLUGINS", " other , good_ep2")
    mattezoo.plugins.reset_plugin_manager()
    assert "ep_tiny" not in mattezoo.list_methods()
    assert mattezoo.plugins.get_plugin_manager().is_blocked("good_ep2")


def test_builtin_plugins_load_by_module_even_without_metadata(monkeypatch):
    monkeypatch.setattr(mattezoo.plugins, "BUILTIN_PLUGINS", {"toy_builtin": "toy_builtin_module"})
    monkeypatch.setitem(
        __import__("sys").modules, "toy_builtin_module", type("M", (), {"mattezoo_register_methods": ToyPlugin().mattezoo_register_methods})
    )
    pm = make_plugin_manager(entry_points=False, blocked=[])
    assert pm.has_plugin("toy_builtin")
    assert pm.info["toy_builtin"].distribution == "mattezoo (built-in)"
    blocked = make_plugin_manager(entry_points=False, blocked=["toy_builtin"])
    assert not blocked.has_plugin("toy_builtin")


def test_registering_the_same_plugin_name_twice_is_a_failure_not_a_crash():
    pm = make_plugin_manager(builtins=False, entry_points=False, blocked=[])
    assert pm.register_plugin(ToyPlugin(TINY), "dup")
    with pytest.warns(RuntimeWarning, match="'dup'"):
        assert not pm.register_plugin(ToyPlugin(TINY), "dup")


def test_builtin_plugins_match_the_declared_entry_points():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["mattezoo"]
    assert declared == mattezoo.plugins.BUILTIN_PLUGINS
    pm = make_plugin_manager(entry_points=False, blocked=[])
    assert not pm.failures, [f.error for f in pm.failures]
    assert sorted(pm.info) == sorted(declared)


def test_hook_mattezoo_training_recipe():
    from toy_plugins import TINY, TinyRecipePlugin

    from mattezoo.train import Recipe, find_recipe, has_recipe

    assert not has_recipe("closed_form")
    with registered_plugin(ToyPlugin(TINY), "toys"):
        assert not has_recipe("tiny_net")  # no recipe in its spec, and no hook answers
        recipes = TinyRecipePlugin()
        with registered_plugin(recipes, "toy_recipes"):
            assert has_recipe("tiny_net")
            recipe = find_recipe(mattezoo.get_method("tiny_net"))
            assert isinstance(recipe, Recipe) and recipe.needs == ("image", "alpha")
            # The hook answers first; a built-in recipe from the spec is used when it returns None.
            assert isinstance(find_recipe(mattezoo.get_method("p3m_net")), Recipe)
            assert {"tiny_net", "p3m_net"} <= set(recipes.asked)
        assert not has_recipe("tiny_net")
