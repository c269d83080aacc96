"""Dataset means the way the P3M tables report them: the plain mean of per-image values."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import InputError
from .evaluate import _evaluate
from .inputs import prepare
from .names import DEFAULT_CONVENTION, check_convention, resolve_metrics


class MetricAccumulator:
    """Collects per-image metrics over a dataset and averages them.

    P3M's test loop adds each image's SAD, MSE, ... and divides by the number
    of images; :meth:`means` does the same. The one difference: a value that is
    undefined for an image (MSE-T / MAD-T of a trimap without unknown pixels,
    NaN here, a division by zero in P3M) is left out of that metric's mean, and
    :meth:`counts` says how many images each mean covers.

    >>> acc = MetricAccumulator()
    >>> for pred, gt, trimap in pairs:            # doctest: +SKIP
    ...     acc.update(pred, gt, trimap)
    >>> acc.means()["SAD"]                         # doctest: +SKIP
    """

    def __init__(self, metrics=None, convention: str = DEFAULT_CONVENTION):
        self.convention = check_convention(convention)
        self._requested = metrics
        self.metrics: tuple[str, ...] | None = None  # fixed by the first update
        self.records: list[tuple[str, dict[str, float]]] = []

    def __len__(self) -> int:
        return len(self.records)

    def update(self, pred, gt, trimap=None, names: str | Sequence[str] | None = None) -> list[dict[str, float]]:
        """Add one image or a batch; returns the per-image metrics just computed.

        ``names`` labels the images (file stems, say) in :attr:`records`;
        by default they are numbered in arrival order.
        """
        p, g, t = prepare(pred, gt, trimap)
        metrics = resolve_metrics(self._requested, self.convention, t is not None)
        if self.metrics is None:
            self.metrics = metrics
        elif metrics != self.metrics:
            raise InputError(
                f"this batch gives metrics {', '.join(metrics)} but earlier ones gave {', '.join(self.metrics)}; "
                "pass a trimap with every image or with none"
            )
        batch = p.shape[0]
        if names is None:
            names = [str(len(self.records) + i) for i in range(batch)]
        elif isinstance(names, str):
            names = [names]
        if len(names) != batch:
            raise InputError(f"got {len(names)} names for a batch of {batch} images")
        values = _evaluate(p, g, t, metrics, self.convention)
        rows = [{m: float(values[m][b]) for m in metrics} for b in range(batch)]
        self.records.extend(zip(names, rows))
        return rows

    def counts(self) -> dict[str, int]:
        """How many images have a defined (finite) value of each metric."""
        return {m: sum(1 for _, r in self.records if math.isfinite(r[m])) for m in self.metrics or ()}

    def means(self) -> dict[str, float]:
        """Mean over images of each metric (NaN for a metric no image defines)."""
        out = {}
        for m in self.metrics or ():
            vals = [r[m] for _, r in self.records if math.isfinite(r[m])]
            out[m] = math.fsum(vals) / len(vals) if vals else math.nan
        return out

    def summary(self) -> dict:
        """Everything a report needs: convention, image count, means, counts and per-image rows."""
        return {
            "convention": self.convention,
            "images": len(self.records),
            "metrics": list(self.metrics or ()),
            "mean": self.means(),
            "count": self.counts(),
            "per_image": [{"name": n, **r} for n, r in self.records],
        }

    def reset(self) -> None:
        self.metrics = None
        self.records.clear()
