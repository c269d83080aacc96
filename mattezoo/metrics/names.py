"""Metric names, conventions, and which metrics need a trimap.

Names are spelled as the P3M tables print them, so they can be compared with
:class:`mattezoo.spec.PaperResult` metrics directly.
"""

from __future__ import annotations

from ..errors import InputError, choices_hint

CONVENTIONS = ("whole-image", "trimap-region")
DEFAULT_CONVENTION = "whole-image"

# whole-image: P3M core/evaluate.py. SAD, MSE, MAD, GRAD, CONN over the whole
# image; the -T variants after forcing pred to the trimap's known values.
WHOLE_IMAGE_METRICS = ("SAD", "MSE", "MAD", "SAD-T", "MSE-T", "MAD-T", "GRAD", "CONN")
# trimap-region: mmagic / mmeval (the MATLAB benchmark code), unknown region only.
TRIMAP_REGION_METRICS = ("SAD", "MSE", "MAD", "GRAD", "CONN")
METRICS_BY_CONVENTION = {"whole-image": WHOLE_IMAGE_METRICS, "trimap-region": TRIMAP_REGION_METRICS}

CHEAP_METRICS = frozenset({"SAD", "MSE", "MAD", "SAD-T", "MSE-T", "MAD-T"})  # one fused pass


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise InputError(f"unknown metric convention {convention!r}. {choices_hint(str(convention), list(CONVENTIONS), 'conventions')}")
    return convention


def needs_trimap(name: str, convention: str) -> bool:
    return convention == "trimap-region" or name.endswith("-T")


def resolve_metrics(metrics, convention: str, have_trimap: bool) -> tuple[str, ...]:
    """The metric names to compute, in table order.

    ``metrics=None`` means every metric the inputs allow: without a trimap,
    the whole-image convention drops the -T metrics, and the trimap-region
    convention refuses to run. Names are case-insensitive.
    """
    check_convention(convention)
    valid = METRICS_BY_CONVENTION[convention]
    if convention == "trimap-region" and not have_trimap:
        raise InputError("the 'trimap-region' convention needs a trimap (values 0, 128, 255)")
    if metrics is None:
        return tuple(m for m in valid if have_trimap or not needs_trimap(m, convention))
    if isinstance(metrics, str):
        metrics = [m for m in metrics.replace(",", " ").split() if m]
    wanted = []
    for raw in metrics:
        name = str(raw).strip().upper()
        if name not in valid:
            raise InputError(f"unknown metric {raw!r} for the {convention!r} convention. {choices_hint(name, list(valid), 'metrics')}")
        if needs_trimap(name, convention) and not have_trimap:
            raise InputError(f"metric {name} needs a trimap; pass one, or leave out {name}")
        if name not in wanted:
            wanted.append(name)
    if not wanted:
        raise InputError(f"no metric requested. Valid metrics: {', '.join(valid)}")
    return tuple(m for m in valid if m in wanted)
