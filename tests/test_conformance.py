"""The conformance helper: run over every registered method, and shown to catch broken ones."""

import pytest
import torch

import mattezoo
from mattezoo import MethodSpec
from mattezoo.testing import registered_plugin, run_conformance
from toy_plugins import ToyPlugin


@pytest.mark.parametrize("name", mattezoo.list_methods())
def test_registered_method_conforms(name):
    report = run_conformance(name)
    assert {"spec", "create", "predict", "batch"} <= set(report.checks)


@pytest.mark.parametrize("name", ["tiny_net", "luma_fill", "blue_keyer"])
def test_toy_methods_conform(name):
    with registered_plugin(ToyPlugin(), "toys"):
        report = run_conformance(name)
    expected = {"backward"} if name == "tiny_net" else set()  # the others have no parameters
    assert expected <= set(report.checks)


class IgnoresTrimap:
    def __call__(self, image, trimap):
        return image[:, :1] * 0 + 0.5


class Nondeterministic(torch.nn.Module):
    def forward(self, image):
        return torch.rand_like(image[:, :1])


class BatchMixer(torch.nn.Module):
    def forward(self, image):
        return image[:, :1].mean(dim=0, keepdim=True).expand(image.shape[0], 1, *image.shape[-2:]).clamp(0, 1)


BROKEN = {
    "ignores_trimap": (MethodSpec(name="ignores_trimap", family="classical", factory="test_conformance:IgnoresTrimap", summary="s", citation="c"), "known regions"),
    "nondeterministic": (MethodSpec(name="nondeterministic", family="trimap-free", factory="test_conformance:Nondeterministic", summary="s", citation="c"), "two runs on the same input differ"),
    "batch_mixer": (MethodSpec(name="batch_mixer", family="trimap-free", factory="test_conformance:BatchMixer", summary="s", citation="c"), "batch element 0 differs"),
    "no_citation": (MethodSpec(name="no_citation", family="trimap-free", factory="toy_plugins:build_tiny", summary="s"), "no citation"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_conformance_catches_broken_methods(case):
    spec, message = BROKEN[case]
    with registered_plugin(ToyPlugin(spec), "broken"):
        with pytest.raises(AssertionError, match=message):
            run_conformance(spec.name, backward=False)
