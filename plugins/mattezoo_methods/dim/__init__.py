"""Built-in plugin: DIM, "Deep Image Matting" (Xu, Price, Cohen, Huang, CVPR 2017).

Registers ``dim``: the VGG-16 encoder-decoder on image + trimap with the
refinement network, as OpenMMLab's reference implementation (mmagic /
mmediting ``DIM``) builds it; ``create_method("dim", refine=False)`` is the
stage-1 model without the refiner. Model code is imported only when the method
is created.

Paper numbers are those the P3M paper prints for DIM, which its authors
re-implemented and trained on P3M-10k:

* Table 2 (trimap-based deep methods under the four train:test protocols, on
  P3M-500-P; the values equal Table 4's transition-region columns):
  ``source="P3M Table 2"``, ``test_set="P3M-500-P"``, ``protocol``
  ``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``;
* Table 4 (the trimap-based reference row, trained on the face-blurred
  images, all metrics): ``source="P3M Table 4"``, ``test_set``
  ``"P3M-500-P"`` / ``"P3M-500-NP"``.
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import WeightsCfg, p3m_protocol_row, p3m_table4_row

DIM_CITATION = (
    "Ning Xu, Brian Price, Scott Cohen, Thomas Huang. Deep Image Matting. CVPR 2017, 2970-2979 (arXiv:1703.03872)."
)
OFFICIAL_REPO = "https://github.com/open-mmlab/mmagic"
DOWNLOADS = "https://download.openmmlab.com/mmediting/mattors/dim/"


DIM_RESULTS = (
    p3m_protocol_row(2, "B:B", 4.8906, 0.0115, 0.0342),
    p3m_protocol_row(2, "B:N", 4.8940, 0.0116, 0.0342),
    p3m_protocol_row(2, "N:B", 4.8050, 0.0116, 0.0334),
    p3m_protocol_row(2, "N:N", 4.7941, 0.0116, 0.0334),
    p3m_table4_row("P3M-500-P", (4.89, 0.0009, 0.0029, 4.89, 0.0115, 0.0342, 4.48, 9.68)),
    p3m_table4_row("P3M-500-NP", (5.32, 0.0009, 0.0031, 5.32, 0.0094, 0.0324, 4.70, 7.70)),
)

COMP1K_WEIGHTS = WeightsCfg(
    file="dim_stage3_v16_pln_1x1_1000k_comp1k_SAD-50.6_20200609_111851-647f24b6.pth",
    description=(
        "OpenMMLab's DIM stage 3 (VGG-16 encoder-decoder + plain refiner) trained on Adobe Composition-1k "
        "(SAD 50.6 on its test set), the 'stage3' model of configs/dim/README.md; an mmengine checkpoint "
        "whose 'state_dict' holds the backbone.* and refiner.* keys"
    ),
    origin_url=DOWNLOADS + "dim_stage3_v16_pln_1x1_1000k_comp1k_SAD-50.6_20200609_111851-647f24b6.pth",
    license="Apache-2.0",
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="dim",
            family="trimap-based",
            factory="mattezoo_methods.dim.model:build_dim",
            summary="DIM: VGG-16 encoder-decoder with unpooling on image + trimap, plus a 4-layer refinement network",
            citation=DIM_CITATION,
            paper_results=DIM_RESULTS,
            weights={"comp1k": COMP1K_WEIGHTS},
            input_multiple=32,
            recipe="mattezoo_methods.dim.recipe:dim_recipe",
        ),
    ]
