"""Built-in plugin: SHM, "Semantic Human Matting" (Chen et al., ACM MM 2018).

Registers ``shm``: a T-Net (PSPNet-50) predicting a 3-class trimap, an M-Net
(DIM-like encoder-decoder) predicting the alpha of the unknown region from the
image and the trimap probabilities, and the fusion ``F + U * alpha_r``. The
authors released neither code nor weights; the network follows the paper
(docs/shm.md lists the details that are ours). Model code is imported only
when the method is created.

Paper numbers are those the P3M paper prints for SHM (re-implemented by the
P3M authors and trained on P3M-10k):

* Table 3 (trimap-free methods under the four train:test protocols, on
  P3M-500-P): ``source="P3M Table 3"``, ``test_set="P3M-500-P"``,
  ``protocol`` ``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``;
* Table 4 (trained on the face-blurred images, all metrics):
  ``source="P3M Table 4"``, ``test_set`` ``"P3M-500-P"`` / ``"P3M-500-NP"``.
  The table prints the same SAD-T / MSE-T / MAD-T for both test sets; they are
  kept as printed.
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import p3m_protocol_row, p3m_table4_row

SHM_CITATION = (
    "Quan Chen, Tiezheng Ge, Yanyu Xu, Zhiqiang Zhang, Xinxin Yang, Kun Gai. Semantic Human Matting. "
    "ACM Multimedia 2018, 618-626 (arXiv:1809.01354)."
)


SHM_RESULTS = (
    p3m_protocol_row(3, "B:B", 21.56, 0.0100, 0.0125),
    p3m_protocol_row(3, "B:N", 24.33, 0.0116, 0.0140),
    p3m_protocol_row(3, "N:B", 23.91, 0.0115, 0.0139),
    p3m_protocol_row(3, "N:N", 17.13, 0.0075, 0.0099),
    p3m_table4_row("P3M-500-P", (21.56, 0.0100, 0.0125, 9.14, 0.0255, 0.0545, 21.24, 17.53)),
    p3m_table4_row("P3M-500-NP", (20.77, 0.0093, 0.0122, 9.14, 0.0255, 0.0545, 20.30, 17.09)),
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="shm",
            family="trimap-free",
            factory="mattezoo_methods.shm.model:build_shm",
            summary="SHM: PSPNet-50 trimap (T-Net), DIM-like matting net (M-Net), fusion F + U * alpha_r",
            citation=SHM_CITATION,
            paper_results=SHM_RESULTS,
            input_multiple=16,
            recipe="mattezoo_methods.shm.recipe:shm_recipe",
            provides_trimap=True,
        ),
    ]
