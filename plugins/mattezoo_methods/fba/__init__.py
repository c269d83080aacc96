"""Built-in plugin: FBA Matting, "F, B, Alpha Matting" (Forte & Pitié, 2020).

Registers ``fba``: a trimap-based network that predicts alpha, foreground and
background colours together (dilated GN + WS ResNet-50 encoder, PPM decoder,
F/B/alpha fusion), as the official ``networks/models.py`` builds it. Model
code is imported only when the method is created. ``infer_fb`` gives F and B
as well as alpha.

Paper numbers are those the P3M paper prints for FBA in Table 2 (trimap-based
deep methods under the four train:test protocols, metrics over the
transition region, on P3M-500-P): ``source="P3M Table 2"``,
``test_set="P3M-500-P"``, ``protocol`` ``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``.
FBA has no row in Table 4.
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import WeightsCfg, p3m_protocol_row

FBA_CITATION = "Marco Forte, François Pitié. F, B, Alpha Matting. arXiv:2003.07711 (2020)."
OFFICIAL_REPO = "https://github.com/MarcoForte/FBA_Matting"


FBA_RESULTS = (
    p3m_protocol_row(2, "B:B", 4.1330, 0.0088, 0.0289),
    p3m_protocol_row(2, "B:N", 4.1267, 0.0088, 0.0289),
    p3m_protocol_row(2, "N:B", 4.1666, 0.0086, 0.0291),
    p3m_protocol_row(2, "N:N", 4.1544, 0.0086, 0.0290),
)

ADOBE_WEIGHTS = WeightsCfg(
    file="FBA.pth",
    description=(
        "official FBA model trained on the Adobe Image Matting dataset (the 'FBA' link, Table 4 of the paper, "
        "139 MB, of the official README); a bare state dict with encoder.* / decoder.* keys"
    ),
    origin_url=f"{OFFICIAL_REPO}#models",
    license="Adobe Deep Image Matting Dataset License Agreement: noncommercial use only (code: MIT)",
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="fba",
            family="trimap-based",
            factory="mattezoo_methods.fba.model:build_fba",
            summary="FBA: alpha, foreground and background from one GN+WS ResNet-50 encoder-decoder with F/B/alpha fusion",
            citation=FBA_CITATION,
            paper_results=FBA_RESULTS,
            weights={"adobe": ADOBE_WEIGHTS},
            input_multiple=8,
            recipe="mattezoo_methods.fba.recipe:fba_recipe",
        ),
    ]
