"""Built-in plugin: P3M-Net and the BASIC baseline of "Privacy-Preserving Portrait Matting".

Registers ``p3m_net`` (the paper's model, ResNet-34 encoder, plus the IJCV
extension's Swin-T encoder as ``backbone="swin_t"``) and ``basic`` (the paper's
multi-task baseline). Model code is imported only when a method is created.

Paper numbers, as the P3M paper prints them:

* Table 3 (trimap-free methods under the four train:test protocols, on
  P3M-500-P): ``source="P3M Table 3"``, ``test_set="P3M-500-P"``, ``protocol``
  ``"B:B"``/``"B:N"``/``"N:B"``/``"N:N"``.
* Table 4 (trained on P3M-10k's blurred images, all metrics):
  ``source="P3M Table 4"``, ``test_set`` ``"P3M-500-P"`` / ``"P3M-500-NP"``.
* Table 5 (ablation of the integration modules): ``source="P3M Table 5"``;
  ``test_set`` is the test set followed by the modules switched on, in the form
  :func:`ablation_test_set` writes (``"P3M-500-P (TFI+sBFI)"``, ``"... (none)"``),
  so the row of a configuration is ``spec.paper(source="P3M Table 5",
  test_set=ablation_test_set("P3M-500-P", tfi=True, sbfi=True, dbfi=False))``.
  The all-off row is also BASIC's (``basic`` holds it as plain ``"P3M-500-P"``).
"""

from __future__ import annotations

from mattezoo import MethodSpec, hookimpl
from mattezoo.spec import PaperResult, WeightsCfg, p3m_table4_row

P3M_CITATION = (
    "Jizhizi Li, Sihan Ma, Jing Zhang, Dacheng Tao. Privacy-Preserving Portrait Matting. "
    "ACM Multimedia 2021 (arXiv:2104.14222). Swin-T variant: Sihan Ma, Jizhizi Li, Jing Zhang, He Zhang, "
    "Dacheng Tao. Rethinking Portrait Matting with Privacy Preserving. IJCV 2023 (arXiv:2203.16828)."
)
BASIC_CITATION = (
    "Jizhizi Li, Sihan Ma, Jing Zhang, Dacheng Tao. Privacy-Preserving Portrait Matting. "
    "ACM Multimedia 2021 (arXiv:2104.14222), the BASIC baseline of section 3.4.3."
)
OFFICIAL_REPO = "https://github.com/JizhiziLi/P3M"

_MODULE_NAMES = (("tfi", "TFI"), ("sbfi", "sBFI"), ("dbfi", "dBFI"))


def ablation_test_set(test_set: str, *, tfi: bool, sbfi: bool, dbfi: bool) -> str:
    """The ``test_set`` label of a Table 5 row: ``"P3M-500-P (TFI+dBFI)"``, ``"P3M-500-P (none)"``."""
    flags = {"tfi": tfi, "sbfi": sbfi, "dbfi": dbfi}
    on = [label for key, label in _MODULE_NAMES if flags[key]]
    return f"{test_set} ({'+'.join(on) if on else 'none'})"


def _sad_mse_mad(source, test_set, sad, mse, mad, protocol=None) -> PaperResult:
    return PaperResult(source, test_set, {"SAD": sad, "MSE": mse, "MAD": mad}, protocol)



# Table 5: (tfi, sbfi, dbfi) -> (P3M-500-P SAD/MSE/MAD, P3M-500-NP SAD/MSE/MAD).
# The MAD 0.00066 of the TFI-only row is printed so in the paper (0.0066 would
# fit the neighbouring rows); it is kept as printed.
_TABLE5 = {
    (False, False, False): ((15.13, 0.0058, 0.0088), (17.01, 0.0062, 0.0099)),
    (True, False, False): ((11.32, 0.0042, 0.00066), (13.7, 0.0052, 0.008)),
    (True, True, False): ((9.47, 0.0030, 0.0055), (12.36, 0.0043, 0.0072)),
    (True, False, True): ((9.76, 0.0031, 0.0057), (12.45, 0.0043, 0.0073)),
    (True, True, True): ((8.73, 0.0026, 0.0051), (11.23, 0.0035, 0.0065)),
}


def _table5_rows():
    for (tfi, sbfi, dbfi), (private, normal) in _TABLE5.items():
        for test_set, values in (("P3M-500-P", private), ("P3M-500-NP", normal)):
            yield _sad_mse_mad("P3M Table 5", ablation_test_set(test_set, tfi=tfi, sbfi=sbfi, dbfi=dbfi), *values)


P3M_NET_RESULTS = (
    _sad_mse_mad("P3M Table 3", "P3M-500-P", 8.73, 0.0026, 0.0051, "B:B"),
    _sad_mse_mad("P3M Table 3", "P3M-500-P", 9.22, 0.0028, 0.0053, "B:N"),
    _sad_mse_mad("P3M Table 3", "P3M-500-P", 11.22, 0.0040, 0.0065, "N:B"),
    _sad_mse_mad("P3M Table 3", "P3M-500-P", 9.06, 0.0028, 0.0053, "N:N"),
    p3m_table4_row("P3M-500-P", (8.73, 0.0026, 0.0051, 6.89, 0.0193, 0.0478, 8.22, 13.88)),
    p3m_table4_row("P3M-500-NP", (11.23, 0.0035, 0.0065, 7.65, 0.0173, 0.0466, 10.35, 12.51)),
    *_table5_rows(),
)

BASIC_RESULTS = (
    _sad_mse_mad("P3M Table 3", "P3M-500-P", 15.13, 0.0058, 0.0088, "B:B"),
    _sad_mse_mad("P3M Table 3", "P3M-500-P", 15.52, 0.0060, 0.0090, "B:N"),
    _sad_mse_mad("P3M Table 3", "P3M-500-P", 24.38, 0.0109, 0.0141, "N:B"),
    _sad_mse_mad("P3M Table 3", "P3M-500-P", 14.52, 0.0054, 0.0085, "N:N"),
    _sad_mse_mad("P3M Table 5", "P3M-500-P", *_TABLE5[(False, False, False)][0]),
    _sad_mse_mad("P3M Table 5", "P3M-500-NP", *_TABLE5[(False, False, False)][1]),
)

P3M10K_WEIGHTS = WeightsCfg(
    file="p3mnet_pretrained_on_p3m10k.pth",
    description=(
        "official P3M-Net (ResNet-34) trained on P3M-10k face-blurred images; the 'Pretrained P3M-NET on P3M-10k' "
        "link (Google Drive / Baidu Wangpan) of the official README"
    ),
    origin_url=f"{OFFICIAL_REPO}#models",
    license="MIT",
)


@hookimpl
def mattezoo_register_methods():
    return [
        MethodSpec(
            name="p3m_net",
            family="trimap-free",
            factory="mattezoo_methods.p3m.model:build_p3m_net",
            summary="P3M-Net: multi-task portrait matting with TFI/sBFI/dBFI integration (ResNet-34 or Swin-T)",
            citation=P3M_CITATION,
            paper_results=P3M_NET_RESULTS,
            weights={"p3m10k": P3M10K_WEIGHTS},
            input_multiple=32,
            provides_trimap=True,
            recipe="mattezoo_methods.p3m.recipe:p3m_recipe",
        ),
        MethodSpec(
            name="basic",
            family="trimap-free",
            factory="mattezoo_methods.p3m.basic:build_basic",
            summary="BASIC: P3M's multi-task baseline, shared ResNet-34 encoder and two plain decoders",
            citation=BASIC_CITATION,
            paper_results=BASIC_RESULTS,
            input_multiple=32,
            provides_trimap=True,
            recipe="mattezoo_methods.p3m.recipe:p3m_recipe",
        ),
    ]
