"""BASIC, the P3M paper's multi-task baseline (section 3.4.3 and Table 5, first row).

A shared encoder and two plain decoders (segmentation and matting), fused as
P3M-Net fuses them, and none of the integration modules: exactly P3M-Net with
TFI, sBFI and dBFI switched off, so it shares P3M-Net's code and key names.
"""

from __future__ import annotations

import os

from .inference import DEFAULT_MAX_SIDE
from .model import P3MMattingModel, build_p3m_net


def build_basic(
    backbone: str = "r34",
    strategy: str = "hybrid",
    max_side: int = DEFAULT_MAX_SIDE,
    backbone_weights: str | os.PathLike | None = None,
    known_rule: str = "official",
    pooling: str = "mattezoo",
) -> P3MMattingModel:
    """Build BASIC (see :func:`mattezoo_methods.p3m.model.build_p3m_net` for the options)."""
    return build_p3m_net(
        tfi=False, sbfi=False, dbfi=False, backbone=backbone, strategy=strategy,
        max_side=max_side, backbone_weights=backbone_weights, known_rule=known_rule, pooling=pooling,
    )
