"""Built-in plugin: LF, "A Late Fusion CNN for Digital Matting" (Zhang et al., CVPR 2019).

Registers ``lf``: a DenseNet-201 encoder shared by a foreground- and a
background-probability decoder, and a small fusion network whose per-pixel
weight ``beta`` blends them, ``alpha = beta * F + (1 - beta) * (1 - B)``.
Trimap-free; ``provides_trimap``: where both branches are sure and agree the
pixel is known, elsewhere unknown (the paper's "implicit trimap"). Model
code is imported only when the method is created.

Paper numbers are those the P3M paper prints for LF (trained with the
authors' code on P3M-10k):

* Table 3 (trimap-free methods under the four train:test protocols, on
  P3M-500-P): ``source="P3M Table 3"``, ``test_set="P3M-500-P"``,
  ``protocol`` ``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``;
* Table 4 (trained on the face-blurred images, all metrics):
  ``source="P3M Table 4"``, ``test_set`` ``"P3M-500-P"`` / ``"P3M-500-NP"``.

No weights are registered: the authors' released model is a Keras model
(fine-tuned on their unreleased human matting set), not a PyTorch state dict.
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import p3m_protocol_row, p3m_table4_row

LF_CITATION = (
    "Yunke Zhang, Lixue Gong, Lubin Fan, Peiran Ren, Qixing Huang, Hujun Bao, Weiwei Xu. A Late Fusion CNN for "
    "Digital Matting. CVPR 2019, 7469-7478."
)
OFFICIAL_REPO = "https://github.com/yunkezhang/FusionMatting"


LF_RESULTS = (
    p3m_protocol_row(3, "B:B", 42.95, 0.0191, 0.0250),
    p3m_protocol_row(3, "B:N", 30.84, 0.0129, 0.0178),
    p3m_protocol_row(3, "N:B", 41.01, 0.0174, 0.0240),
    p3m_protocol_row(3, "N:N", 31.22, 0.0123, 0.0181),
    p3m_table4_row("P3M-500-P", (42.95, 0.0191, 0.0250, 12.43, 0.0421, 0.0824, 42.19, 18.80)),
    p3m_table4_row("P3M-500-NP", (32.59, 0.0131, 0.0188, 14.53, 0.0420, 0.0825, 31.93, 19.50)),
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="lf",
            family="trimap-free",
            factory="mattezoo_methods.lf.model:build_lf",
            summary="Late Fusion CNN: DenseNet-201, foreground and background probability decoders, fusion net blending them",
            citation=LF_CITATION,
            paper_results=LF_RESULTS,
            input_multiple=32,
            provides_trimap=True,
            recipe="mattezoo_methods.lf.recipe:lf_recipe",
        ),
    ]
