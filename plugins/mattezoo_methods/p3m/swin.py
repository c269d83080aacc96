"""P3M-Net(Swin-T), the IJCV extension's transformer variant (ViTAE-Transformer/P3M-Net ``core/network/Swin_T``).

The encoder is Swin-T (embed 96, depths 2-2-6-2, heads 3-6-12-24, window 7)
made to fit P3M-Net's decoders as the official variant does:

* the 4×4 patch embedding becomes a stem of three stride-1 3×3 convs with two
  2×2 max-pools in between (``patch_embed``), keeping the pooling indices and
  the full- and half-resolution features;
* each patch merging becomes LayerNorm → 2×2 max-pool (indices kept) → linear
  ``C -> 2C`` (``layers.i.downsample``); the normalised feature before pooling
  is the TFI skip of that level.

The transformer blocks are timm's ``SwinTransformerBlock`` (dynamic attention
masks and padding, so any multiple of 32 works). Attribute names follow the
official module, so its ImageNet backbone file loads into ``encoder`` once the
derived buffers it carries (``relative_position_index``, ``attn_mask``) and any
classifier head are dropped. At padded window borders the attention mask is
timm's, which can differ slightly from the official block there.
"""

from __future__ import annotations

import os

import torch
from timm.models.swin_transformer import SwinTransformerBlock
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
            SwinTransformerBlock(
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
        rates = torch.linspace(0, DROP_PATH_RATE, sum(DEPTHS)).tolist()
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
