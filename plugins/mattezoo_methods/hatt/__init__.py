"""Built-in plugin: HAttMatting, "Attention-Guided Hierarchical Structure Aggregation for Image Matting".

Registers ``hatt``: a trimap-free network on a ResNeXt-101 backbone whose
ASPP features are distilled by channel attention and whose low-level
appearance cues are filtered by spatial attention before both are fused
into the alpha matte; trained with MSE, SSIM and a PatchGAN adversarial
loss. The authors released no network code and no weights (their repository
holds the README and a data-composition script), so the network follows the
paper (see :mod:`.model`), and the spec names no weight tags. Model code is
imported only when the method is created.

Paper numbers are those the P3M paper prints for HATT (re-implemented by the
P3M authors and trained on P3M-10k):

* Table 3 (trimap-free methods under the four train:test protocols, on
  P3M-500-P): ``source="P3M Table 3"``, ``test_set="P3M-500-P"``,
  ``protocol`` ``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``;
* Table 4 (trained on the face-blurred images, all metrics):
  ``source="P3M Table 4"``, ``test_set`` ``"P3M-500-P"`` / ``"P3M-500-NP"``.
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import p3m_protocol_row, p3m_table4_row

HATT_CITATION = (
    "Yu Qiao, Yuhao Liu, Xin Yang, Dongsheng Zhou, Mingliang Xu, Qiang Zhang, Xiaopeng Wei. Attention-Guided "
    "Hierarchical Structure Aggregation for Image Matting. CVPR 2020 (arXiv:2003.07709)."
)
OFFICIAL_REPO = "https://github.com/wukaoliu/CVPR2020-HAttMatting"


HATT_RESULTS = (
    p3m_protocol_row(3, "B:B", 25.99, 0.0054, 0.0152),
    p3m_protocol_row(3, "B:N", 26.5, 0.0055, 0.0155),
    p3m_protocol_row(3, "N:B", 35.02, 0.0103, 0.0204),
    p3m_protocol_row(3, "N:N", 22.93, 0.0040, 0.0133),
    p3m_table4_row("P3M-500-P", (25.99, 0.0054, 0.0152, 11.03, 0.0377, 0.0752, 14.91, 25.29)),
    p3m_table4_row("P3M-500-NP", (30.53, 0.0072, 0.0176, 13.48, 0.0403, 0.0803, 19.88, 27.42)),
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="hatt",
            family="trimap-free",
            factory="mattezoo_methods.hatt.model:build_hatt",
            summary="HAttMatting: ResNeXt-101 + ASPP, channel attention on pyramidal features, "
                    "spatial attention on appearance cues; MSE + SSIM + PatchGAN loss",
            citation=HATT_CITATION,
            paper_results=HATT_RESULTS,
            input_multiple=16,
            recipe="mattezoo_methods.hatt.recipe:hatt_recipe",
        ),
    ]
