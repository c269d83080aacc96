"""P3M-Net(Swin-T), the IJCV extension's transformer variant (ViTAE-Transformer/P3M-Net ``core/network/Swin_T``).

The encoder is Swin-T (embed 96, depths 2-2-6-2, heads 3-6-12-24, window 7)
made to fit P3M-Net's decoders as the official variant does:

* the 4×4 patch embedding becomes a stem of three stride-1 3×3 convs with two
  2×2 max-pools in between (``patch_embed``), keeping the pooling indices and
  the full- and half-resolution features;
* each patch merging becomes LayerNorm → 2×2 max-pool (indices kept) → linear
  ``C -> 2C`` (``layers.i.downsample``); the normalised feature before pooling
  is the TFI skip of that level.

The transformer blocks are timm's ``SwinTransformerBlock`` with one change
(:class:`PaddedSwinBlock`): like the official block, a feature map whose side is
not a multiple of the window is zero-padded *before* the cyclic shift, and the
attention mask also keeps real tokens from attending to padding. (timm shifts
first and leaves padding unmasked, which changes every border window: P3M-Net's
stage sizes H/4..H/32 are multiples of 7 only when H is a multiple of 224.)
Attribute names follow the official module, so its ImageNet backbone file loads
into ``encoder`` once the derived buffers it carries (``relative_position_index``,
``attn_mask``) and any classifier head are dropped.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformerBlock, window_partition, window_reverse
from torch import nn

from mattezoo.weights import load_into, load_state_dict

from . import inference
from .decoder import SWIN_T_LAYOUT, DecoderMixin, EncoderFeatures
from .model import P3MMattingModel
from .pooling import MaxPoolWithIndices

EMBED_DIM = 96
DEPTHS = (2, 2, 6, 2)
HEADS = (3, 6, 12, 24)
WINDOW = 7
DROP_PATH_RATE = 0.2  # official swin_stem_pooling5_encoder
TRAIN_SIZE = 512  # official img_size: sets the blocks' nominal resolution only
# Buffers the official checkpoints store that are recomputed here.
_DERIVED_KEYS = ("relative_position_index", "attn_mask")


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)  # NCHW -> NHWC, what the Swin blocks take


def _to_map(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)  # NHWC -> NCHW


def _axis_regions(padded: int, pad: int, window: int, shift: int) -> list[tuple[int, int]]:
    """Row (or column) ranges that may attend to each other, in the padded and shifted frame.

    After padding by ``pad`` and rolling by ``-shift``, a side of ``padded``
    cells ends with: the padding, then the ``shift`` cells that wrapped around
    from the start. Those, the real cells of the last window and the real cells
    before it are kept apart (the official block's regions).
    """
    if shift > 0:
        if pad > 0:
            top, bottom = max(pad + shift, window), min(pad + shift, window)
            cuts = [0, padded - top, padded - bottom, padded - shift, padded]
        else:
            cuts = [0, padded - window, padded - shift, padded]
    else:
        cuts = [0, padded - pad, padded] if pad > 0 else [0, padded]
    cuts = [min(max(c, 0), padded) for c in cuts]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


def shifted_window_mask(height: int, width: int, window: tuple[int, int], shift: tuple[int, int], device, dtype):
    """Additive attention mask ``[num_windows, N, N]`` (0 / -100), or ``None`` when nothing needs masking."""
    pad_h, pad_w = (-height) % window[0], (-width) % window[1]
    if not any(shift) and not pad_h and not pad_w:
        return None
    padded_h, padded_w = height + pad_h, width + pad_w
    label = torch.zeros((1, padded_h, padded_w, 1), device=device, dtype=dtype)
    count = 0
    for h0, h1 in _axis_regions(padded_h, pad_h, window[0], shift[0]):
        for w0, w1 in _axis_regions(padded_w, pad_w, window[1], shift[1]):
            label[:, h0:h1, w0:w1, :] = count
            count += 1
    labels = window_partition(label, window).reshape(-1, window[0] * window[1])
    differ = labels.unsqueeze(1) != labels.unsqueeze(2)
    return torch.zeros(differ.shape, device=device, dtype=dtype).masked_fill(differ, -100.0)


class PaddedSwinBlock(SwinTransformerBlock):
    """timm's Swin block with the official order "pad, then shift" and padding masked out."""

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, channels = x.shape
        window, shift = self.window_size, self.shift_size
        x = F.pad(x, (0, 0, 0, (-width) % window[1], 0, (-height) % window[0]))
        padded_h, padded_w = x.shape[1], x.shape[2]
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        windows = window_partition(x, window).reshape(-1, window[0] * window[1], channels)
        mask = shifted_window_mask(height, width, window, shift, x.device, x.dtype)
        out = self.attn(windows, mask=mask).reshape(-1, window[0], window[1], channels)
        x = window_reverse(out, window, padded_h, padded_w)
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return x[:, :height, :width, :]


class StemPooling(nn.Module):
    """Three stride-1 convs with two index-keeping 2×2 max-pools: 3 -> 48 @ 1, 96 @ 1/2, 96 @ 1/4."""

    def __init__(self, embed_dim: int = EMBED_DIM):
        super().__init__()
        mid = embed_dim // 2
        self.proj1 = nn.Conv2d(3, mid, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=True)
        self.proj2 = nn.Conv2d(mid, embed_dim, 3, padding=1)
        self.relu2 = nn.ReLU(inplace=True)
        self.proj3 = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        self.relu3 = nn.ReLU(inplace=True)
        self.maxpool1 = MaxPoolWithIndices(kernel_size=2, stride=2)
        self.maxpool2 = MaxPoolWithIndices(kernel_size=2, stride=2)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor):
        f1 = self.relu1(self.proj1(x))
        p1, idx1 = self.maxpool1(f1)
        f2 = self.relu2(self.proj2(p1))
        p2, idx2 = self.maxpool2(f2)
        tokens = self.norm(_to_tokens(self.relu3(self.proj3(p2))))
        return tokens, (f1, f2), (idx1, idx2)


class PoolingMerge(nn.Module):
    """Patch merging by max-pooling: LayerNorm, 2×2 max-pool with indices, linear C -> 2C."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pooling = MaxPoolWithIndices(kernel_size=2, stride=2)
        self.linear = nn.Linear(dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor):
        feature = _to_map(self.norm(x))
        pooled, idx = self.pooling(feature)
        return self.linear(_to_tokens(pooled)), idx, feature


class SwinStage(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, resolution: int, drop_path: list[float], merge: bool):
        super().__init__()
        self.blocks = nn.Sequential(*[
            PaddedSwinBlock(
                dim=dim, input_resolution=(resolution, resolution), num_heads=heads, window_size=WINDOW,
                shift_size=0 if i % 2 == 0 else WINDOW // 2, dynamic_mask=True, drop_path=drop_path[i],
            )
            for i in range(depth)
        ])
        self.downsample = PoolingMerge(dim) if merge else None


class SwinStemPoolingEncoder(nn.Module):
    """Swin-T with the pooling stem and pooling merges; ``features`` feeds P3M-Net's decoders."""

    def __init__(self):
        super().__init__()
        self.patch_embed = StemPooling(EMBED_DIM)
        blocks = sum(DEPTHS)  # stochastic depth grows linearly from 0 to DROP_PATH_RATE
        rates = [DROP_PATH_RATE * i / (blocks - 1) for i in range(blocks)]
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(DEPTHS, HEADS)):
            start = sum(DEPTHS[:i])
            self.layers.append(SwinStage(
                EMBED_DIM * 2**i, depth, heads, TRAIN_SIZE // 4 // 2**i, rates[start:start + depth],
                merge=i < len(DEPTHS) - 1,
            ))
        self.norm = nn.LayerNorm(EMBED_DIM * 2 ** (len(DEPTHS) - 1))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # The official Swin initialisation (convs keep PyTorch's default).
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> EncoderFeatures:
        tokens, (f1, f2), (idx1, idx2) = self.patch_embed(x)
        skips, indices = [f2], [idx1, idx2]
        for layer in self.layers:
            tokens = layer.blocks(tokens)
            if layer.downsample is not None:
                tokens, idx, feature = layer.downsample(tokens)
                skips.append(feature)
                indices.append(idx)
        deep = _to_map(self.norm(tokens)).contiguous()
        return EncoderFeatures(f1, tuple(skips), deep, tuple(indices))

    def load_imagenet(self, path: str | os.PathLike) -> None:
        """Load the official Swin-T (stem-pooling) ImageNet file; derived buffers and the head are ignored."""
        state = load_state_dict(path)
        state = {
            k: v for k, v in state.items()
            if not k.startswith("head.") and k.rsplit(".", 1)[-1] not in _DERIVED_KEYS
        }
        load_into(self, state, source=f"Swin-T backbone {str(path)!r}")


class SwinDecoder(DecoderMixin, nn.Module):
    def __init__(self, *, tfi: bool, sbfi: bool, dbfi: bool):
        super().__init__()
        self._add_decoder(SWIN_T_LAYOUT, tfi=tfi, sbfi=sbfi, dbfi=dbfi)


class SwinP3MNet(P3MMattingModel):
    """P3M-Net(Swin-T): ``encoder`` and ``decoder`` as in the official model."""

    # The blocks pad and mask by their input's size: opaque to fused inference's trace.
    _fusion_leaves = (MaxPoolWithIndices, PaddedSwinBlock)

    def __init__(self, *, tfi: bool = True, sbfi: bool = True, dbfi: bool = True,
                 strategy: str = "hybrid", max_side: int = inference.DEFAULT_MAX_SIDE):
        super().__init__()
        self.encoder = SwinStemPoolingEncoder()
        self.decoder = SwinDecoder(tfi=tfi, sbfi=sbfi, dbfi=dbfi)
        self._init_matting(strategy, max_side)

    def _features(self, x: torch.Tensor) -> EncoderFeatures:
        return self.encoder.features(x)

    def _decode(self, feats: EncoderFeatures):
        return self.decoder._decode(feats)

    def load_backbone(self, path: str | os.PathLike) -> None:
        self.encoder.load_imagenet(path)
