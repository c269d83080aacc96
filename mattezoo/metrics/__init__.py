"""Matting metrics: SAD, MSE, MAD, their trimap (-T) variants, Grad and Conn.

Two conventions, named in every report:

``"whole-image"`` (default), P3M's ``core/evaluate.py`` as the issue fixes it.
  With pred and gt float alphas in [0,1]:
  SAD = Σ|pred−gt| / 1000, MSE = Σ(pred−gt)² / (H·W), MAD = Σ|pred−gt| / (H·W);
  SAD-T, MSE-T, MAD-T force pred to 1 / 0 where the trimap is 255 / 0, sum over
  the whole image, and MSE-T, MAD-T divide by the number of unknown (128)
  pixels (NaN when there are none); GRAD = Σ(|∇pred|−|∇gt|)² / 10 with
  ``scipy.ndimage.gaussian_filter(σ=1.4, order=1)`` derivatives;
  CONN = Σ|φ(pred)−φ(gt)| / 1000 over the largest 4-connected components at
  t = 0.1 … 1.0.
``"trimap-region"``, mmagic / mmeval (the MATLAB benchmark code).
  pred is forced to the known values; SAD = Σ|pred'−gt| / 1000, MSE and MAD
  divide by the unknown-pixel count (0 when there are none); GRAD sums over
  the unknown region only, on min-max normalised alphas with MATLAB's
  gaussgradient filter (σ=1.4, replicate border), / 1000; CONN sums over the
  unknown region, / 1000, and an empty intersection at a threshold puts
  every pixel outside the largest component (P3M skips that threshold).

Public API::

    evaluate(pred, gt, trimap=None, metrics=None, convention="whole-image") -> {name: float}
    evaluate_batch(...) -> {name: float64 tensor [B]}
    MetricAccumulator(metrics=None, convention=...).update(...); .means(); .summary()

The compiled ops (``torch.ops.mattezoo.alpha_errors``, ``gradient_error``,
``connectivity_error``) run when :func:`mattezoo.extension.has_ops` (and
``has_cuda_ops`` for CUDA tensors); otherwise :mod:`.reference` computes the
same formulas with numpy, scipy and scikit-image. Sums are float64 everywhere;
the CPU kernel filters the gradients in float32 (as P3M's own code does, with
``output=np.float32``), which moves GRAD by ~1e-7 relative.

Where the issue and P3M's code differ, the issue wins: thresholds are
t_i = i/10 (P3M's ``np.arange(0, 1.1, 0.1)`` has 0.3, 0.6, 0.7 one ulp high;
identical results for float32 and k/255 alphas), and everything is computed in
float64 (P3M mixes float32 maps in). MSE-T/MAD-T without unknown pixels are
NaN (P3M divides by zero); :class:`MetricAccumulator` leaves them out of the
mean and reports how many images each mean covers.
"""

from .accumulator import MetricAccumulator
from .evaluate import evaluate, evaluate_batch
from .names import (
    CONVENTIONS,
    DEFAULT_CONVENTION,
    METRICS_BY_CONVENTION,
    TRIMAP_REGION_METRICS,
    WHOLE_IMAGE_METRICS,
)

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "METRICS_BY_CONVENTION",
    "TRIMAP_REGION_METRICS",
    "WHOLE_IMAGE_METRICS",
    "MetricAccumulator",
    "evaluate",
    "evaluate_batch",
]
