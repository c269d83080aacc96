"""SHM's two networks: the T-Net (PSPNet-50) and the M-Net (DIM-like encoder-decoder).

T-Net (paper section 4.1: "PSPNet-50", three classes, softmax):

* backbone: ResNet-50 in torchvision's layout (``conv1``, ``bn1``,
  ``layer1`` .. ``layer4``), with the strides of ``layer3`` and ``layer4``
  replaced by dilations 2 and 4, so its features are at 1/8 of the input, as
  in PSPNet; the ImageNet classifier (``fc``) is not part of it;
* pyramid pooling (PSPNet): average pools to 1, 2, 3 and 6 bins, each a 1×1
  conv (2048 → 512, no bias) + BN + ReLU, bilinearly back to the feature size
  and concatenated with the features (4096 channels);
* head: 3×3 conv (4096 → 512, no bias) + BN + ReLU + dropout 0.1, then a 1×1
  conv to the 3 class logits (background / unknown / foreground), bilinearly
  upsampled ×8 to the input size.

M-Net (paper section 4.2): the 6-channel input (image and the T-Net's three
probabilities) goes through VGG-16's 13 3×3 convs with 4 max-pools (no fifth
pool, no ``conv6``/``deconv6``: the paper drops DIM's to save parameters), a
decoder of 6 convs and 4 unpooling layers that reuse the pooling indices
(DIM's ``deconv5_1`` .. ``deconv1_1``, 5×5, then the 5×5 prediction), and a
BatchNorm after every conv but the prediction. Pooling and unpooling are
mattezoo's ops (:mod:`mattezoo.ops`: compiled, deterministic on CUDA, with a
pure-PyTorch fallback).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import resnet50

from mattezoo.ops import max_pool2d_with_indices, max_unpool2d

TRIMAP_CLASSES = 3  # background, unknown, foreground (the order of mattezoo.train.losses.trimap_classes)
PSP_BINS = (1, 2, 3, 6)
BACKBONE_STRIDE = 8  # dilated ResNet-50: layer3 and layer4 keep the 1/8 resolution


class DilatedResNet50(nn.Module):
    """ResNet-50's convolutional trunk with torchvision's parameter names, output stride 8."""

    def __init__(self):
        super().__init__()
        # torchvision builds the layers (its key layout is the point); only the trunk is kept.
        trunk = resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, *, bias: bool) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=bias), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module: the features and their pooled, re-expanded context, concatenated."""

    def __init__(self, channels: int = 2048, bins: tuple[int, ...] = PSP_BINS):
        super().__init__()
        reduced = channels // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), *_conv_bn_relu(channels, reduced, 1, bias=False)) for b in bins
        )

    @property
    def out_channels(self) -> int:
        return sum(stage[1].out_channels for stage in self.stages) + self.stages[0][1].in_channels

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        size = feats.shape[-2:]
        pooled = [F.interpolate(stage(feats), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return torch.cat([feats, *pooled], dim=1)


class TNet(nn.Module):
    """PSPNet-50: the 3-class trimap logits ``[B,3,H,W]`` of a normalised image (H, W multiples of 8)."""

    def __init__(self, classes: int = TRIMAP_CLASSES):
        super().__init__()
        self.backbone = DilatedResNet50()
        self.ppm = PyramidPooling(2048)
        self.head = nn.Sequential(*_conv_bn_relu(self.ppm.out_channels, 512, 3, bias=False), nn.Dropout2d(0.1))
        self.classifier = nn.Conv2d(512, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.head(self.ppm(self.backbone(x))))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


# (name, in, out) of the encoder's 3×3 convs, stage by stage; a max-pool follows every stage but the last.
ENCODER_STAGES = (
    (("conv1_1", 6, 64), ("conv1_2", 64, 64)),
    (("conv2_1", 64, 128), ("conv2_2", 128, 128)),
    (("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256)),
    (("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512)),
    (("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512)),
)
# (name, in, out) of the decoder's 5×5 convs; an unpooling precedes every one but the first.
DECODER_CONVS = (("deconv5_1", 512, 512), ("deconv4_1", 512, 256), ("deconv3_1", 256, 128),
                 ("deconv2_1", 128, 64), ("deconv1_1", 64, 64))
POOLINGS = len(ENCODER_STAGES) - 1  # 4: the M-Net needs H and W divisible by 16


class MNet(nn.Module):
    """The matting encoder-decoder: raw alpha logits ``[B,1,H,W]`` of a 6-channel input (H, W multiples of 16)."""

    def __init__(self):
        super().__init__()
        for stage in ENCODER_STAGES:
            for name, cin, cout in stage:
                self.add_module(name, _conv_bn_relu(cin, cout, 3, bias=True))
        for name, cin, cout in DECODER_CONVS:
            self.add_module(name, _conv_bn_relu(cin, cout, 5, bias=True))
        self.alpha_pred = nn.Conv2d(64, 1, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []  # (indices, size before pooling) of each max-pool, for its unpooling
        for i, stage in enumerate(ENCODER_STAGES):
            for name, _, _ in stage:
                x = getattr(self, name)(x)
            if i < POOLINGS:
                size = x.shape[-2:]
                x, indices = max_pool2d_with_indices(x, 2, 2, 0)
                pooled.append((indices, size))
        x = self.deconv5_1(x)
        for (name, _, _), (indices, size) in zip(DECODER_CONVS[1:], reversed(pooled)):
            x = getattr(self, name)(max_unpool2d(x, indices, size))
        return self.alpha_pred(x)
