"""Built-in plugin: GCA Matting, "Natural Image Matting via Guided Contextual Attention" (AAAI 2020).

Registers ``gca``: the official default model (``resnet_gca_encoder_29`` +
``res_gca_decoder_22``, spectral norm, one guided contextual attention block
in the encoder and one in the decoder). Model code is imported only when the
method is created.

Paper numbers are those the P3M paper prints for GCA (trained with the
authors' code on P3M-10k), Table 2 (trimap-based deep methods under the four
train:test protocols, on P3M-500-P, metrics on the trimap's unknown region):
``source="P3M Table 2"``, ``test_set="P3M-500-P"``, ``protocol``
``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``. GCA has no row in Table 4.
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import WeightsCfg, p3m_protocol_row

GCA_CITATION = (
    "Yaoyi Li, Hongtao Lu. Natural Image Matting via Guided Contextual Attention. "
    "AAAI 2020, 11450-11457 (arXiv:2001.04069)."
)
OFFICIAL_REPO = "https://github.com/Yaoyi-Li/GCA-Matting"


GCA_RESULTS = (
    p3m_protocol_row(2, "B:B", 4.3593, 0.0088, 0.0307),
    p3m_protocol_row(2, "B:N", 4.3469, 0.0089, 0.0306),
    p3m_protocol_row(2, "N:B", 4.4068, 0.0089, 0.0310),
    p3m_protocol_row(2, "N:N", 4.4002, 0.0089, 0.0310),
)

ALL_DATA_WEIGHTS = WeightsCfg(
    file="gca-dist-all-data.pth",
    description=(
        "official gca-dist-all-data (Adobe Image Matting training set + Composition-1k test set, for the "
        "alphamatting.com benchmark); the 'gca-dist-all-data' Google Drive link of the official README"
    ),
    origin_url=f"{OFFICIAL_REPO}#models",
    license="Adobe Deep Image Matting Dataset License Agreement (non-commercial use only)",
)
DIST_WEIGHTS = WeightsCfg(
    file="gca-dist.pth",
    description="official gca-dist (Adobe Image Matting training set; the paper's Table 2 model); the 'gca-dist' "
                "Google Drive link of the official README",
    origin_url=f"{OFFICIAL_REPO}#models",
    license="Adobe Deep Image Matting Dataset License Agreement (non-commercial use only)",
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="gca",
            family="trimap-based",
            factory="mattezoo_methods.gca.model:build_gca",
            summary="GCA Matting: ResNet-34-D encoder-decoder with guided contextual attention, spectral norm",
            citation=GCA_CITATION,
            paper_results=GCA_RESULTS,
            weights={"all_data": ALL_DATA_WEIGHTS, "dist": DIST_WEIGHTS},
            input_multiple=32,
            recipe="mattezoo_methods.gca.recipe:gca_recipe",
        ),
    ]
