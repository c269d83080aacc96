"""Export a learned method to ONNX and check the graph with onnxruntime.

::

    from mattezoo.export import to_onnx

    report = to_onnx("p3m_net", "p3m.onnx", checkpoint="p3mnet_pretrained_on_p3m10k.pth", size=(512, 512))
    print(report.max_abs_diff)  # onnxruntime vs torch on a random input, per output

The graph is one forward pass at a size that is a multiple of the method's
``input_multiple`` (fixed, or any such size with ``dynamic=True``); test-time
strategies such as P3M-Net's HYBRID (two passes and resampling) stay outside
it. The compiled ``mattezoo::`` ops have no ONNX form, so models that offer
``set_pooling`` are switched to their ``"reference"`` pooling for the export:
plain PyTorch ops that lower to standard ONNX (MaxPool with indices,
ScatterElements with ``reduction="max"``, GatherElements, Where) with the same
"last write wins" unpooling, defined by the ONNX spec rather than left to the
runtime. Export needs the optional packages ``onnx`` and ``onnxscript``, the
check ``onnxruntime``.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import InputError, InvalidOptionError, MattezooError
from .inference import spec_of

FORMATS = ("onnx",)
DEFAULT_OPSET = 18  # ScatterElements with reduction="max" needs opset 18
_INSTALL_HINT = "pip install onnx onnxscript onnxruntime"


@dataclass
class ExportReport:
    """What :func:`to_onnx` wrote and how onnxruntime's outputs compare with torch's."""

    path: Path
    method: str
    input_shape: tuple[int, ...]
    dynamic: bool
    outputs: tuple[str, ...]
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # empty when not verified
    note: str = ""

    def summary(self) -> str:
        shape = "×".join(map(str, self.input_shape))
        text = f"{self.method}: wrote {self.path} (input image {shape}{', dynamic batch/height/width' if self.dynamic else ''})"
        if self.max_abs_diff:
            diffs = ", ".join(f"{name} {value:.3g}" for name, value in self.max_abs_diff.items())
            text += f"\nonnxruntime vs torch on a random {shape} input, max |difference|: {diffs}"
        if self.note:
            text += f"\n{self.note}"
        return text


class _Outputs(nn.Module):
    """A method's forward as the graph's body: the alpha, plus P3M-style intermediates when the model has them."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.names = ("alpha", "local", "global_logits") if hasattr(model, "forward_intermediates") else ("alpha",)

    def forward(self, image: torch.Tensor):
        if len(self.names) == 3:
            out = self.model.forward_intermediates(image)
            return out.fused, out.local, out.global_logits
        return self.model(image)


def require_onnx(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MattezooError(f"ONNX export needs the optional package(s) {', '.join(missing)}: {_INSTALL_HINT}")


def _method(method_or_name, checkpoint, options: dict) -> nn.Module:
    if isinstance(method_or_name, str):
        from .factory import create_method

        if checkpoint is not None:
            options = {**options, "pretrained": checkpoint}
        return create_method(method_or_name, **options)  # on the CPU, where onnxruntime checks it
    if checkpoint is not None or options:
        raise InvalidOptionError("checkpoint and options apply when the method is given by name; load them into the object yourself")
    return method_or_name


def _check_size(size, multiple: int) -> tuple[int, int]:
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise InputError(f"size must be (height, width), got {size!r}") from None
    if height < multiple or width < multiple or height % multiple or width % multiple:
        raise InputError(f"size {height}×{width} must be positive multiples of {multiple} (the method's input_multiple)")
    return height, width


def to_onnx(
    method_or_name,
    path: str | os.PathLike,
    *,
    checkpoint: str | os.PathLike | None = None,
    size: tuple[int, int] = (512, 512),
    batch: int = 1,
    dynamic: bool = False,
    opset: int = DEFAULT_OPSET,
    optimize: bool = True,
    verify: bool = True,
    seed: int = 0,
    **options,
) -> ExportReport:
    """Export a trimap-free learned method to an ONNX file and (by default) verify it with onnxruntime.

    :param method_or_name: a registered name (``"p3m_net"``) or an object from
        :func:`mattezoo.create_method`; it is left as it was.
    :param checkpoint: weights (a path or a tag) when the method is given by name.
    :param size: ``(height, width)`` of the example input, multiples of the
        method's ``input_multiple``; the graph's fixed size unless ``dynamic``.
    :param dynamic: leave batch, height and width free (height and width stay
        multiples of ``input_multiple``).
    :param optimize: let the exporter fold and fuse the graph (slower export).
    :param verify: run the graph with onnxruntime on a random input of the
        example's shape and report the largest difference from torch per
        output (skipped, with a note, when onnxruntime is not installed).
    :param options: factory options when the method is given by name.
    :return: an :class:`ExportReport`.
    """
    require_onnx("onnx", "onnxscript")
    model = _method(method_or_name, checkpoint, options)
    spec = spec_of(model)
    if not isinstance(model, nn.Module):
        raise InputError(f"{spec.name!r} is a {spec.family} method, not a torch module, and has no graph to export")
    if spec.needs_trimap:
        raise InputError(f"{spec.name!r} takes a trimap; export covers trimap-free methods (image in, alpha out)")
    if opset < DEFAULT_OPSET:
        raise InvalidOptionError(f"opset {opset} is too old: the unpooling needs ScatterElements with reduction='max' (opset >= {DEFAULT_OPSET})")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a positive int, got {batch!r}")
    height, width = _check_size(size, spec.input_multiple)
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise InputError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    example = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))
    param = next(model.parameters(), None)
    if param is not None and param.is_floating_point():
        example = example.to(device=param.device, dtype=param.dtype)

    was_training, backend = model.training, getattr(model, "pool_backend", None)
    try:
        model.eval()
        if backend is not None:
            model.set_pooling("reference")
        graph = _Outputs(model)
        _export(graph, example, path, opset=opset, dynamic=dynamic, multiple=spec.input_multiple, optimize=optimize)
        if backend is not None:
            model.set_pooling(backend)  # verify against the model as users run it
        report = ExportReport(path, spec.name, tuple(example.shape), dynamic, graph.names)
        if verify:
            _verify(graph, example, report)
    finally:
        if backend is not None:
            model.set_pooling(backend)
        model.train(was_training)
    return report


def _export(graph: nn.Module, example: torch.Tensor, path: Path, *, opset: int, dynamic: bool, multiple: int, optimize: bool) -> None:
    dynamic_shapes = None
    if dynamic:
        dim = torch.export.Dim
        dynamic_shapes = {"image": {0: dim("batch", min=1, max=1024), 2: multiple * dim("height_cells", min=1, max=4096),
                                    3: multiple * dim("width_cells", min=1, max=4096)}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's advisories are not the user's to act on
        try:
            program = torch.onnx.export(
                graph, (example,), dynamo=True, opset_version=opset, input_names=["image"],
                output_names=list(graph.names), dynamic_shapes=dynamic_shapes, optimize=optimize, verbose=False,
            )
        except Exception as exc:  # the exporter raises many kinds; name the method and the stage
            raise MattezooError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    # One self-contained file (the weights inside, not in a side file), as long as protobuf allows (2 GB).
    program.save(str(path), external_data=False)


def _verify(graph: _Outputs, example: torch.Tensor, report: ExportReport) -> None:
    if importlib.util.find_spec("onnxruntime") is None:
        report.note = f"not verified: onnxruntime is not installed ({_INSTALL_HINT})"
        return
    import onnxruntime

    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": example.float().cpu().numpy()})
    with torch.no_grad():
        expected = graph(example)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for name, ours, theirs in zip(graph.names, expected, got):
        report.max_abs_diff[name] = float((ours.float().cpu() - torch.from_numpy(theirs)).abs().max())
