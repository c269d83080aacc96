"""Conformance checks for matting methods, for our tests and for plugin authors.

A third-party plugin checks its method the way mattezoo's own test suite
checks every registered one::

    from mattezoo.testing import run_conformance

    def test_my_method_conforms():
        run_conformance("my_method")

Each check raises ``AssertionError`` with a message that says what the
method did wrong; :func:`run_conformance` returns a report of what it ran.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import InputError
from .factory import create_method
from .inference import image_to_tensor, predict, predict_trimap, run_method, trimap_to_tensor
from .plugins import get_plugin_manager
from .registry import get_method, get_registry
from .spec import FAMILIES, MethodSpec


def cpu_and_cuda():
    """Parametrize values ``"cpu"`` and ``"cuda"``; the CUDA case carries the ``needs_cuda`` mark.

    ``@pytest.mark.parametrize("device", cpu_and_cuda())``; mattezoo's own
    conftest skips ``needs_cuda`` tests where no GPU or CUDA build is present.
    """
    import pytest

    return ("cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda))


def sample_inputs(height: int = 64, width: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small deterministic test picture: ``(image uint8 H×W×3, trimap uint8, alpha float32)``.

    A bright disc (foreground) with a soft edge over a colour gradient with
    noise; the trimap marks the soft edge as unknown. It is not meant to be
    hard, only to exercise every code path of a method.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx, radius = height / 2, width / 2, min(height, width) * 0.3
    dist = np.hypot(yy - cy, xx - cx)
    soft = max(2.0, min(height, width) * 0.06)
    alpha = np.clip((radius + soft - dist) / (2 * soft), 0.0, 1.0).astype(np.float32)
    fg = np.stack([0.9 - 0.3 * yy / height, 0.6 + 0.2 * xx / width, 0.3 + 0.0 * yy], axis=-1)
    bg = np.stack([0.1 + 0.5 * xx / width, 0.2 + 0.4 * yy / height, 0.7 - 0.2 * xx / width], axis=-1)
    comp = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 0.01, (height, width, 3))
    image = (np.clip(comp, 0, 1) * 255).round().astype(np.uint8)
    trimap = np.full((height, width), 128, np.uint8)
    trimap[alpha >= 1.0] = 255
    trimap[alpha <= 0.0] = 0
    return image, trimap, alpha


@dataclass
class ConformanceReport:
    name: str
    family: str
    checks: list[str] = field(default_factory=list)
    seconds: float = 0.0


def check_spec(spec: MethodSpec) -> None:
    """The spec is complete enough for ``mattezoo list``/``info`` and the benchmark."""
    assert spec.family in FAMILIES, f"{spec.name}: family {spec.family!r} not in {FAMILIES}"
    assert spec.summary.strip(), f"{spec.name}: spec has no summary (one line for `mattezoo list`)"
    assert spec.citation.strip(), f"{spec.name}: spec has no citation (the paper the method comes from)"
    assert spec.plugin, f"{spec.name}: spec was not registered through a plugin"
    for result in spec.paper_results:
        assert result.metrics, f"{spec.name}: a paper result of {result.source} has no metrics"
        for metric, value in result.metrics.items():
            assert np.isfinite(value), f"{spec.name}: {result.source} {metric} is not finite"
    if spec.recipe is not None:
        from .train import Recipe, find_recipe

        assert spec.family != "classical", f"{spec.name}: a classical method has nothing to train, yet names a recipe"
        recipe = find_recipe(spec)
        assert isinstance(recipe, Recipe), f"{spec.name}: recipe {spec.recipe} did not give a mattezoo.train.Recipe"


def run_conformance(name: str, *, size: int = 64, options: dict | None = None, backward: bool = True) -> ConformanceReport:
    """Create ``name`` and check that it behaves as every mattezoo method must.

    :param name: the registered method name.
    :param size: side of the square test image; an odd-sized image
        (``size + 5`` by ``size + 3``) is also run to exercise padding.
    :param options: options passed to :func:`mattezoo.create_method`.
    :param backward: for ``nn.Module`` methods, also check that a backward
        pass gives finite gradients.
    """
    start = time.perf_counter()
    spec = get_method(name)
    report = ConformanceReport(spec.name, spec.family)
    check_spec(spec)
    report.checks.append("spec")

    method = create_method(name, **(options or {}))
    assert method.mattezoo_spec == spec, f"{name}: create_method did not attach the method's spec"
    report.checks.append("create")

    for height, width in ((size, size), (size + 5, size + 3)):
        image, trimap, _ = sample_inputs(height, width)
        given = trimap if spec.needs_trimap else None
        alpha = predict(method, image, given)
        assert alpha.shape == (height, width), f"{name}: predict returned shape {alpha.shape} for a {height}×{width} image"
        assert alpha.dtype == np.float32, f"{name}: predict returned dtype {alpha.dtype}"
        assert np.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1, f"{name}: alpha not finite in [0,1]"
        again = predict(method, image, given)
        assert np.array_equal(alpha, again), f"{name}: two runs on the same input differ (max {np.abs(alpha - again).max():.3g})"
        if spec.needs_trimap:
            fg_err = float(np.abs(alpha[trimap == 255] - 1).max(initial=0))
            bg_err = float(np.abs(alpha[trimap == 0]).max(initial=0))
            assert fg_err <= 1e-3 and bg_err <= 1e-3, (
                f"{name}: alpha does not honour the trimap's known regions (max error fg {fg_err:.3g}, bg {bg_err:.3g})"
            )
    report.checks += ["predict", "odd-size", "deterministic"] + (["known-regions"] if spec.needs_trimap else [])
    if spec.provides_trimap:
        _check_trimap_maker(method, spec, size)
        report.checks.append("makes-trimap")

    _check_trimap_contract(method, spec)
    report.checks.append("trimap-contract")
    _check_batch(method, spec, size)
    report.checks.append("batch")
    if backward and isinstance(method, torch.nn.Module) and any(p.requires_grad for p in method.parameters()):
        _check_backward(method, spec, size)
        report.checks.append("backward")
    report.seconds = time.perf_counter() - start
    return report


def _check_trimap_maker(method, spec: MethodSpec, size: int) -> None:
    """A method with ``provides_trimap`` makes a 0/128/255 trimap of the image's size, the same each time."""
    assert hasattr(method, "infer_trimap"), f"{spec.name}: provides_trimap is set but the object has no infer_trimap()"
    for height, width in ((size, size), (size + 5, size + 3)):
        image, _, _ = sample_inputs(height, width)
        trimap = predict_trimap(method, image)
        assert trimap.shape == (height, width) and trimap.dtype == np.uint8, (
            f"{spec.name}: predict_trimap returned {trimap.dtype} {trimap.shape} for a {height}×{width} image"
        )
        assert set(np.unique(trimap)) <= {0, 128, 255}, f"{spec.name}: trimap values {sorted(set(np.unique(trimap)))}"
        assert np.array_equal(trimap, predict_trimap(method, image)), f"{spec.name}: two trimaps of the same image differ"


def _check_trimap_contract(method, spec: MethodSpec) -> None:
    image, trimap, _ = sample_inputs(16, 16)
    try:
        predict(method, image, None if spec.needs_trimap else trimap)
    except InputError:
        return
    raise AssertionError(f"{spec.name}: predict accepted a call that breaks the trimap contract (needs_trimap={spec.needs_trimap})")


def _tensors(spec: MethodSpec, size: int, batch: int, device):
    images, trimaps = [], []
    for seed in range(batch):
        image, trimap, _ = sample_inputs(size, size, seed=seed)
        images.append(image_to_tensor(image, device))
        trimaps.append(trimap_to_tensor(trimap, device))
    return torch.cat(images), (torch.cat(trimaps) if spec.needs_trimap else None)


def _device_of(method) -> torch.device:
    params = next(iter(method.parameters()), None) if isinstance(method, torch.nn.Module) else None
    return params.device if params is not None else torch.device("cpu")


def _check_batch(method, spec: MethodSpec, size: int) -> None:
    images, trimaps = _tensors(spec, size, 2, _device_of(method))
    batched = run_method(method, images, trimaps)
    for i in range(2):
        single = run_method(method, images[i : i + 1], None if trimaps is None else trimaps[i : i + 1])
        diff = float((batched[i : i + 1] - single).abs().max())
        assert diff <= 1e-4, f"{spec.name}: batch element {i} differs from running it alone by {diff:.3g}"


def _check_backward(method: torch.nn.Module, spec: MethodSpec, size: int) -> None:
    # Training calls the model directly, without predict's padding: use a legal size.
    size = -(-size // spec.input_multiple) * spec.input_multiple
    images, trimaps = _tensors(spec, size, 2, _device_of(method))
    was_training = method.training
    method.train()
    try:
        method.zero_grad(set_to_none=True)
        alpha = method(images, trimaps) if trimaps is not None else method(images)
        assert alpha.shape == (2, 1, size, size), f"{spec.name}: training forward returned {tuple(alpha.shape)}"
        alpha.float().mean().backward()
        grads = [p.grad for p in method.parameters() if p.requires_grad and p.grad is not None]
        assert grads, f"{spec.name}: backward produced no parameter gradients"
        assert all(torch.isfinite(g).all() for g in grads), f"{spec.name}: backward produced non-finite gradients"
        assert any(g.abs().sum() > 0 for g in grads), f"{spec.name}: every gradient is zero"
    finally:
        method.zero_grad(set_to_none=True)
        method.train(was_training)


@contextlib.contextmanager
def registered_plugin(plugin: object, name: str):
    """Register ``plugin`` in the process-wide manager for the duration of a ``with`` block.

    For tests of a plugin that is not installed as a package::

        with registered_plugin(MyPlugin(), "my_plugin"):
            assert "my_method" in mattezoo.list_methods()
    """
    pm = get_plugin_manager()
    if not pm.register_plugin(plugin, name, distribution="(registered in-process)"):
        raise AssertionError(f"plugin {name!r} could not be registered: {pm.failures[-1].error}")
    get_registry.cache_clear()
    try:
        yield pm
    finally:
        if pm.has_plugin(name):
            pm.unregister(name=name)
        pm.info.pop(name, None)
        get_registry.cache_clear()
