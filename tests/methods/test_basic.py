"""BASIC: P3M's multi-task baseline, a shared encoder with two plain decoders.

Its forward, backward, odd sizes and batches run in the registry-driven
conformance test (tests/test_conformance.py).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import mattezoo
from mattezoo.errors import CheckpointError
from mattezoo_methods.p3m.basic import build_basic
from mattezoo_methods.p3m.model import build_p3m_net

OFFICIAL_KEYS = Path(__file__).parent / "data" / "p3m_net_r34_official_keys.json"
INTEGRATION = ("tfi_", "sbfi_", "dbfi_")


@pytest.fixture(scope="module")
def basic():
    torch.manual_seed(0)
    return build_basic().eval()


def test_basic_is_p3m_net_without_any_integration_module(basic):
    official = [(k, tuple(s)) for k, s in json.loads(OFFICIAL_KEYS.read_text())["keys"]]
    assert [(k, tuple(v.shape)) for k, v in basic.state_dict().items()] == [
        (k, s) for k, s in official if not k.startswith(INTEGRATION)
    ]
    assert not any(isinstance(m, torch.nn.Module) and name.startswith(INTEGRATION) for name, m in basic.named_children())


def test_basic_equals_p3m_net_with_all_switches_off(basic):
    with torch.device("meta"):
        ablated = build_p3m_net(tfi=False, sbfi=False, dbfi=False)
    ablated.to_empty(device="cpu").eval()
    ablated.load_state_dict(basic.state_dict(), strict=True)
    image = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        a, b = basic.forward_intermediates(image), ablated.forward_intermediates(image)
    assert torch.equal(a.fused, b.fused) and torch.equal(a.global_logits, b.global_logits)
    assert a.sides == ()  # no dBFI, so no side outputs


def test_the_matting_decoder_does_not_see_the_segmentation_decoder(basic):
    net = copy.deepcopy(basic)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = net.forward_intermediates(image)
        for level in range(5):
            getattr(net, f"decoder{level}_g")[0].weight.mul_(-3.0)
        after = net.forward_intermediates(image)
    assert torch.equal(before.local, after.local)  # two plain decoders, no interaction
    assert not torch.equal(before.global_logits, after.global_logits)


def test_the_p3m_net_checkpoint_does_not_fit_basic(tmp_path):
    path = tmp_path / "p3m.pth"
    with torch.device("meta"):
        full = build_p3m_net()
    torch.save(full.to_empty(device="cpu").state_dict(), path)
    with pytest.raises(CheckpointError, match=r"unexpected keys: dbfi_0\.bn1\.bias"):
        mattezoo.create_method("basic", pretrained=str(path))


def test_basic_paper_rows():
    spec = mattezoo.get_method("basic")
    table3 = {r.protocol: r.metrics["SAD"] for r in spec.paper(source="P3M Table 3")}
    assert table3 == {"B:B": 15.13, "B:N": 15.52, "N:B": 24.38, "N:N": 14.52}
    # Table 5's first row (no modules) is the same model trained the same way as Table 3's B:B.
    assert spec.paper(source="P3M Table 5", test_set="P3M-500-P")[0].metrics["SAD"] == table3["B:B"]
    no_modules = mattezoo.get_method("p3m_net").paper(source="P3M Table 5", test_set="P3M-500-NP (none)")[0]
    assert spec.paper(source="P3M Table 5", test_set="P3M-500-NP")[0].metrics == no_modules.metrics
