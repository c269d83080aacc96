"""Built-in plugin: GFM, "Bridging Composite and Real: Towards End-to-end Deep Image Matting".

Registers ``gfm``: the Glance and Focus Matting network with the ResNet-34
encoder and the TT representation (glance decoder: background / transition /
foreground; focus decoder: the alpha of the transition region), as the
official ``core/gfm.py`` builds it with ``backbone="r34", rosta="TT"``. Model
code is imported only when the method is created.

Paper numbers are those the P3M paper prints for GFM (trained with the
authors' code on P3M-10k):

* Table 3 (trimap-free methods under the four train:test protocols, on
  P3M-500-P): ``source="P3M Table 3"``, ``test_set="P3M-500-P"``,
  ``protocol`` ``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``;
* Table 4 (trained on the face-blurred images, all metrics):
  ``source="P3M Table 4"``, ``test_set`` ``"P3M-500-P"`` / ``"P3M-500-NP"``.
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import WeightsCfg, p3m_protocol_row, p3m_table4_row

GFM_CITATION = (
    "Jizhizi Li, Jing Zhang, Stephen J. Maybank, Dacheng Tao. Bridging Composite and Real: Towards End-to-end "
    "Deep Image Matting. IJCV 130, 246-266 (2022) (arXiv:2010.16188)."
)
OFFICIAL_REPO = "https://github.com/JizhiziLi/GFM"


GFM_RESULTS = (
    p3m_protocol_row(3, "B:B", 13.20, 0.0050, 0.0080),
    p3m_protocol_row(3, "B:N", 13.08, 0.0050, 0.0080),
    p3m_protocol_row(3, "N:B", 13.54, 0.0048, 0.0078),
    p3m_protocol_row(3, "N:N", 10.73, 0.0033, 0.0063),
    p3m_table4_row("P3M-500-P", (13.20, 0.0050, 0.0080, 8.84, 0.0269, 0.0616, 12.58, 17.75)),
    p3m_table4_row("P3M-500-NP", (15.50, 0.0056, 0.0091, 10.16, 0.0268, 0.0620, 14.82, 18.03)),
)

AM2K_WEIGHTS = WeightsCfg(
    file="gfm_r34_tt.pth",
    description=(
        "official GFM(r)-TT (ResNet-34, TT) trained on AM-2k (ORI-Track, animals); the 'GFM(r)-TT' link "
        "(Google Drive / Baidu Wangpan) of the official README, saved as models/pretrained/gfm_r34_tt.pth"
    ),
    origin_url=f"{OFFICIAL_REPO}#gfm",
    license="MIT",
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="gfm",
            family="trimap-free",
            factory="mattezoo_methods.gfm.model:build_gfm",
            summary="GFM: glance (PSP, 3-class) and focus (transition alpha) decoders on ResNet-34, collaborative matting",
            citation=GFM_CITATION,
            paper_results=GFM_RESULTS,
            weights={"am2k": AM2K_WEIGHTS},
            input_multiple=32,
            provides_trimap=True,
            recipe="mattezoo_methods.gfm.recipe:gfm_recipe",
        ),
    ]
