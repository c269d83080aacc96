"""Evaluate one matting method on one test set and view, the way the P3M paper scores its family.

``evaluate_method(obj, dataset, "blurred")`` runs the method on every sample's
blurred (or normal) image and returns an :class:`EvalResult`: the means of every
metric the inputs allow (the plain mean over images, as P3M's test loop
averages), the per-image values, the time spent, and optionally a few
predictions for figures.

How each family is scored (P3M section 3.3.2: "for trimap-based methods, the
metrics are only calculated over the transition area, while for trimap-free
methods, they are calculated over the whole image"):

* trimap-free methods get only the image. Their headline SAD / MSE / MAD are
  the whole-image values; the -T variants (the unknown region of the
  ground-truth trimap, pred forced to the known values), Grad and Conn are
  computed too: the Table-4 view.
* trimap-based and classical methods get the test set's fixed ground-truth
  trimap. Their headline SAD / MSE / MAD are the unknown-region values, which
  in P3M's whole-image convention are SAD-T / MSE-T / MAD-T (pred forced to
  the trimap's known values, MSE and MAD divided by the unknown-pixel count).

:attr:`EvalResult.headline` holds those three numbers under the names the
paper's tables print, and :attr:`EvalResult.scope` says which region they cover.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import InputError
from .inference import image_to_tensor, run_method, spec_of, trimap_to_tensor
from .metrics import DEFAULT_CONVENTION, MetricAccumulator
from .metrics.names import check_convention

HEADLINE = ("SAD", "MSE", "MAD")
VIEWS = {"blurred": "blurred", "b": "blurred", "normal": "normal", "n": "normal"}


@dataclass
class Prediction:
    """One kept prediction, for image grids: the input shown to the method, its matte and the truth."""

    name: str
    image: np.ndarray  # H×W×3 uint8, the view the method saw
    alpha: np.ndarray  # H×W float32 prediction
    gt: np.ndarray  # H×W float32 ground truth


@dataclass
class EvalResult:
    """The scores of one method on one test set and view.

    ``means``: metric -> mean over images (NaN where no image defines it);
    ``counts``: how many images each mean covers; ``per_image``: one dict per
    image (``name``, ``seconds`` and every metric); ``headline``: SAD / MSE / MAD
    as the paper's tables print them for this family (see the module doc);
    ``scope``: "whole image" or "unknown region"; ``seconds``: wall time of the
    whole evaluation; ``infer_seconds``: the method's own time, summed.
    """

    method: str
    family: str
    view: str
    convention: str
    scope: str
    images: int
    metrics: list[str]
    means: dict[str, float]
    counts: dict[str, int]
    headline: dict[str, float]
    per_image: list[dict]
    seconds: float
    infer_seconds: float
    predictions: list[Prediction] = field(default_factory=list)

    def to_dict(self, per_image: bool = True) -> dict:
        """JSON-ready (NaN becomes ``None``); predictions are left out."""
        out = {
            "method": self.method,
            "family": self.family,
            "view": self.view,
            "convention": self.convention,
            "scope": self.scope,
            "images": self.images,
            "metrics": list(self.metrics),
            "means": _finite_or_none(self.means),
            "counts": dict(self.counts),
            "headline": _finite_or_none(self.headline),
            "seconds": self.seconds,
            "infer_seconds": self.infer_seconds,
            "ms_per_image": 1000.0 * self.infer_seconds / self.images if self.images else None,
        }
        if per_image:
            out["per_image"] = [_finite_or_none(r) for r in self.per_image]
        return out


def _finite_or_none(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def headline_names(family: str, convention: str) -> dict[str, str]:
    """Which computed metric stands for each headline column: ``{"SAD": "SAD-T", ...}`` or the identity."""
    if family != "trimap-free" and convention == "whole-image":
        return {name: f"{name}-T" for name in HEADLINE}
    return {name: name for name in HEADLINE}


def _scope(family: str, convention: str) -> str:
    if convention == "trimap-region" or family != "trimap-free":
        return "unknown region"
    return "whole image"


def _method(obj, device):
    if isinstance(obj, str):
        from .factory import create_method
        from .registry import get_method

        spec = get_method(obj)
        return create_method(obj, **({"device": device} if device is not None and spec.family != "classical" else {}))
    spec_of(obj)
    return obj


def _device(obj, device) -> torch.device:
    params = next(iter(obj.parameters()), None) if isinstance(obj, torch.nn.Module) else None
    if params is None:
        return torch.device(device) if device is not None else torch.device("cpu")
    if device is not None and torch.device(device).type != params.device.type:
        raise InputError(f"device={device!r} was asked for, but the method's weights are on {params.device}; move it with .to({str(device)!r}) first")
    return params.device


def evaluate_method(obj, dataset: Sequence, view: str, *, device=None, metrics=None, convention: str = DEFAULT_CONVENTION, keep: int = 0, progress: bool = False, desc: str | None = None) -> EvalResult:
    """Run ``obj`` on every sample of ``dataset`` (its ``view`` image) and score it against the mattes.

    :param obj: a registered method name or a matting object (from
        :func:`mattezoo.create_method` or a trainer).
    :param dataset: a sequence of :class:`mattezoo.data.Sample` with alpha, and
        a trimap wherever the method needs one (test sets have fixed trimaps).
    :param view: ``"blurred"``/``"B"`` or ``"normal"``/``"N"``: the image fed.
    :param device: where the inputs go (default: where the method's weights
        are, or CPU); a name is created there.
    :param metrics: a subset such as ``"SAD,MSE,CONN"`` (default: all the inputs allow).
    :param convention: ``"whole-image"`` (P3M, default) or ``"trimap-region"``.
    :param keep: keep the first ``keep`` predictions (with input and truth).
    :param progress: show a tqdm bar.
    """
    key = VIEWS.get(str(view).lower())
    if key is None:
        raise InputError(f"unknown view {view!r}; valid views: 'blurred' ('B'), 'normal' ('N')")
    check_convention(convention)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise InputError(f"keep must be a non-negative integer, got {keep!r}")
    try:
        n = len(dataset)
    except TypeError:
        raise InputError(f"dataset must be a sequence of Sample records, got {type(dataset).__name__}") from None
    if n == 0:
        raise InputError("the test set is empty")
    method = _method(obj, device)
    spec = spec_of(method)
    dev = _device(method, device)
    acc = MetricAccumulator(metrics=metrics, convention=convention)
    kept: list[Prediction] = []
    infer = 0.0
    timings: list[float] = []
    start = time.perf_counter()
    iterator = range(n)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=desc or f"{spec.name} {key}", unit="img", leave=False)
    for i in iterator:
        sample = dataset[i]
        image = sample.view(key)
        if sample.trimap is None and (spec.needs_trimap or convention == "trimap-region"):
            raise InputError(
                f"test sample {sample.name!r} has no trimap, which {spec.name!r} ({spec.family}) "
                + ("needs as input" if spec.needs_trimap else f"the {convention!r} convention needs")
            )
        image_t = image_to_tensor(image, dev)
        trimap_t = trimap_to_tensor(sample.trimap, dev) if spec.needs_trimap else None
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        alpha = run_method(method, image_t, trimap_t)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
        infer += dt
        timings.append(dt)
        gt = torch.from_numpy(np.ascontiguousarray(sample.alpha)).to(dev)
        trimap_eval = torch.from_numpy(np.ascontiguousarray(sample.trimap)).to(dev) if sample.trimap is not None else None
        acc.update(alpha[0, 0], gt, trimap_eval, names=sample.name)
        if len(kept) < keep:
            kept.append(Prediction(sample.name, image, alpha[0, 0].cpu().numpy(), sample.alpha))
    seconds = time.perf_counter() - start
    summary = acc.summary()
    means = summary["mean"]
    names = headline_names(spec.family, convention)
    headline = {col: means.get(src, math.nan) for col, src in names.items()}
    per_image = [{**row, "seconds": t} for row, t in zip(summary["per_image"], timings)]
    return EvalResult(
        method=spec.name,
        family=spec.family,
        view=key,
        convention=convention,
        scope=_scope(spec.family, convention),
        images=n,
        metrics=list(summary["metrics"]),
        means=dict(means),
        counts=dict(summary["count"]),
        headline=headline,
        per_image=per_image,
        seconds=seconds,
        infer_seconds=infer,
        predictions=kept,
    )


__all__ = ["EvalResult", "HEADLINE", "Prediction", "evaluate_method", "headline_names"]
