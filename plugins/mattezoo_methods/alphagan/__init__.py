"""Built-in plugin: AlphaGAN, "AlphaGAN: Generative adversarial networks for natural image matting".

Registers ``alphagan``: a ResNet-50 (dilated, output stride 8) + ASPP
encoder-decoder generator on image + trimap, trained against a PatchGAN that
judges composites. The authors released neither code nor weights, so no
``WeightsCfg`` is registered; the docs page (docs/alphagan.md) says which
facts come from the paper and which from public re-implementations. Model
code is imported only when the method is created.

Paper numbers are those the P3M paper prints for AlphaGAN (re-trained by its
authors on P3M-10k): Table 2, trimap-based deep methods under the four
train:test protocols on P3M-500-P (``source="P3M Table 2"``,
``test_set="P3M-500-P"``, ``protocol`` ``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``).
AlphaGAN has no row in Table 4.
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import p3m_protocol_row

ALPHAGAN_CITATION = (
    "Sebastian Lutz, Konstantinos Amplianitis, Aljoša Smolić. AlphaGAN: Generative adversarial networks for "
    "natural image matting. BMVC 2018, 259 (arXiv:1807.10088)."
)


ALPHAGAN_RESULTS = (
    p3m_protocol_row(2, "B:B", 5.2669, 0.0112, 0.0373),
    p3m_protocol_row(2, "B:N", 5.2367, 0.0112, 0.037),
    p3m_protocol_row(2, "N:B", 5.7060, 0.0120, 0.0412),
    p3m_protocol_row(2, "N:N", 5.6696, 0.0119, 0.0408),
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="alphagan",
            family="trimap-based",
            factory="mattezoo_methods.alphagan.model:build_alphagan",
            summary="AlphaGAN: dilated ResNet-50 + ASPP encoder-decoder with unpooling, trained against a PatchGAN on composites",
            citation=ALPHAGAN_CITATION,
            paper_results=ALPHAGAN_RESULTS,
            input_multiple=32,
            recipe="mattezoo_methods.alphagan.recipe:alphagan_recipe",
        ),
    ]
