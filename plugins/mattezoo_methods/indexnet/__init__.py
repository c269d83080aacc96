"""Built-in plugin: IndexNet Matting, "Indices Matter: Learning to Index for Deep Image Matting".

Registers ``indexnet``: the trimap-based MobileNetV2 encoder-decoder whose
downsampling and upsampling are guided by learned index maps, in the released
configuration of the official code (depthwise many-to-one index blocks,
non-linear, with context, ASPP, output stride 32). Model code is imported only
when the method is created.

Paper numbers are the P3M paper's Table 2 (trimap-based deep methods trained
with the authors' code on P3M-10k, tested on P3M-500-P with the ground-truth
trimap, the metrics over the unknown region): ``source="P3M Table 2"``,
``test_set="P3M-500-P"``, ``protocol`` ``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``.
IndexNet has no row in the paper's Table 4.
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import WeightsCfg, p3m_protocol_row

INDEXNET_CITATION = (
    "Hao Lu, Yutong Dai, Chunhua Shen, Songcen Xu. Indices Matter: Learning to Index for Deep Image Matting. "
    "ICCV 2019 (arXiv:1908.00672)."
)
OFFICIAL_REPO = "https://github.com/poppinace/indexnet_matting"


INDEXNET_RESULTS = (
    p3m_protocol_row(2, "B:B", 5.1959, 0.0156, 0.0368),
    p3m_protocol_row(2, "B:N", 5.2188, 0.0158, 0.0370),
    p3m_protocol_row(2, "N:B", 5.8267, 0.0202, 0.0420),
    p3m_protocol_row(2, "N:N", 5.8509, 0.0204, 0.0422),
)

ADOBE_WEIGHTS = WeightsCfg(
    file="indexnet_matting.pth.tar",
    description=(
        "official IndexNet Matting (M2O DIN, MobileNetV2) trained on the Adobe Image Matting set (Composition-1k "
        "SAD 45.8); pretrained/indexnet_matting.pth.tar of the official repository, a training checkpoint whose "
        "'state_dict' holds the DataParallel ('module.') weights"
    ),
    origin_url=f"{OFFICIAL_REPO}/tree/master/pretrained",
    license="non-commercial (Adobe Image Dataset license; see the official README)",
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="indexnet",
            family="trimap-based",
            factory="mattezoo_methods.indexnet.model:build_indexnet",
            summary="IndexNet Matting: MobileNetV2 encoder-decoder with learned (depthwise M2O) index pooling/upsampling",
            citation=INDEXNET_CITATION,
            paper_results=INDEXNET_RESULTS,
            weights={"adobe": ADOBE_WEIGHTS},
            input_multiple=32,
            recipe="mattezoo_methods.indexnet.recipe:indexnet_recipe",
        ),
    ]
