import sys

import pytest

import mattezoo
from mattezoo import MethodSpec, hookimpl
from mattezoo.errors import DuplicateMethodError, InputError, UnknownMethodError
from mattezoo.plugins import make_plugin_manager
from mattezoo.registry import MethodRegistry, split_name_tag
from mattezoo.testing import registered_plugin
from toy_plugins import LUMA, TINY, ToyPlugin


def _registry(*plugins):
    pm = make_plugin_manager(builtins=False, entry_points=False, blocked=[])
    for i, plugin in enumerate(plugins):
        assert pm.register_plugin(plugin, f"p{i}")
    return MethodRegistry(pm), pm


def test_list_is_sorted_and_filters_by_pattern_and_family():
    reg, _ = _registry(ToyPlugin())
    assert reg.list() == ["blue_keyer", "luma_fill", "tiny_net"]
    assert reg.list("tiny*") == ["tiny_net"]
    assert reg.list(family="trimap-based") == ["luma_fill"]
    assert reg.list(family="classical") == ["blue_keyer"]
    with pytest.raises(InputError, match="Valid families: trimap-free, trimap-based, classical"):
        reg.list(family="trimap_free")


def test_spec_records_plugin_and_trimap_need():
    reg, _ = _registry(ToyPlugin())
    spec = reg.get("luma_fill")
    assert spec.plugin == "p0" and spec.needs_trimap and spec.family == "trimap-based"
    assert not reg.get("tiny_net").needs_trimap


def test_unknown_name_suggests_close_matches_and_lists_valid_ones():
    reg, _ = _registry(ToyPlugin())
    with pytest.raises(UnknownMethodError) as info:
        reg.get("tiny_nte")
    message = str(info.value)
    assert "'tiny_nte'" in message and "Did you mean 'tiny_net'" in message and "blue_keyer, luma_fill, tiny_net" in message


def test_name_tag_resolves_to_base_spec():
    reg, _ = _registry(ToyPlugin())
    assert split_name_tag("p3m_net.p3m10k") == ("p3m_net", "p3m10k")
    assert split_name_tag("knn") == ("knn", None)
    assert reg.get("tiny_net.sometag").name == "tiny_net"


def test_duplicate_name_names_both_plugins():
    with pytest.raises(DuplicateMethodError, match=r"'tiny_net' is registered twice: by plugin 'p0'.*plugin 'p1'"):
        _registry(ToyPlugin(TINY), ToyPlugin(TINY))


class RaisingPlugin:
    @hookimpl
    def mattezoo_register_methods(self):
        raise RuntimeError("boom")


class WrongTypePlugin:
    @hookimpl
    def mattezoo_register_methods(self):
        return ["not a spec"]


@pytest.mark.parametrize("bad", [RaisingPlugin(), WrongTypePlugin()], ids=["raises", "wrong-type"])
def test_misbehaving_hook_is_recorded_and_others_still_register(bad):
    with pytest.warns(RuntimeWarning, match="plugin 'p0'"):
        reg, pm = _registry(bad, ToyPlugin())
    assert reg.list() == ["blue_keyer", "luma_fill", "tiny_net"]
    assert [f.name for f in pm.failures] == ["p0"]


def test_listing_never_imports_model_code(tmp_path, monkeypatch):
    module = tmp_path / "heavy_model_for_test.py"
    module.write_text("import torch\nclass Net(torch.nn.Identity):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = MethodSpec(name="heavy", family="trimap-free", factory="heavy_model_for_test:Net", summary="s", citation="c")
    with registered_plugin(ToyPlugin(spec), "heavy_plugin"):
        assert mattezoo.list_methods("heavy") == ["heavy"]
        assert mattezoo.get_method("heavy").factory == "heavy_model_for_test:Net"
        assert "heavy_model_for_test" not in sys.modules
        mattezoo.create_method("heavy")
        assert "heavy_model_for_test" in sys.modules
    sys.modules.pop("heavy_model_for_test", None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="Bad-Name", family="trimap-free", factory="m:f"), "lowercase snake case"),
        (dict(name="ok", family="deep", factory="m:f"), "family must be one of"),
        (dict(name="ok", family="classical", factory="no_colon"), "module:callable"),
        (dict(name="ok", family="classical", factory="m:f", input_multiple=0), "positive int"),
    ],
)
def test_invalid_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MethodSpec(**kwargs)


def test_public_api_lists_registered_plugins_methods():
    with registered_plugin(ToyPlugin(), "toys"):
        assert {"luma_fill", "tiny_net"} <= set(mattezoo.list_methods())
        assert mattezoo.get_method("tiny_net") .plugin == "toys"
    assert "tiny_net" not in mattezoo.list_methods()
    assert LUMA.name not in mattezoo.list_methods()


def test_p3m_paper_row_constructors():
    from mattezoo.spec import P3M_TABLE4_METRICS, p3m_protocol_row, p3m_table4_row

    row = p3m_protocol_row(3, "B:N", 9.22, 0.0028, 0.0053)
    assert (row.source, row.test_set, row.protocol, dict(row.metrics)) == (
        "P3M Table 3", "P3M-500-P", "B:N", {"SAD": 9.22, "MSE": 0.0028, "MAD": 0.0053})
    row = p3m_table4_row("P3M-500-NP", range(8))
    assert row.source == "P3M Table 4" and row.protocol is None and list(row.metrics) == list(P3M_TABLE4_METRICS)
    assert dict(row.metrics)["CONN"] == 7
    with pytest.raises(ValueError, match="Table 4 rows have 8 values"):
        p3m_table4_row("P3M-500-P", (1.0, 2.0))
    with pytest.raises(ValueError, match="protocol must be one of"):
        p3m_protocol_row(2, "B:X", 1.0, 0.1, 0.1)
