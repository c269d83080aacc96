"""Inference-time fusion: conv + BatchNorm (+ residual add) (+ ReLU) as one op.

A trained model in eval mode spends a good part of its time outside its
convolutions: every eval-mode BatchNorm, residual add and ReLU is one more pass
over a feature map that the convolution has just written. :func:`fuse_for_inference`
traces a module with ``torch.fx`` and rewrites each chain

    conv → [BatchNorm] → [add(other)] → [ReLU]

whose intermediate results have no other users into one :class:`FusedConv2d`:
the BatchNorm is folded into the conv's weight and bias (in float64, then cast
back), and on CPU the add and ReLU run inside oneDNN's convolution as post-ops.
Every conv also works in channels_last, the layout oneDNN (and cuDNN) prefer.

The fused module owns copies of the folded weights; the original model is left
untouched. :class:`FusedInference` keeps such a copy for a model and rebuilds it
when the model's weights, device or dtype change, so a model can use it
transparently in ``eval()`` under ``no_grad``/``inference_mode``.

The outputs equal the unfused model's to float rounding (folding and the
reordered sums of oneDNN's post-ops), not bit for bit.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

_RELU_FUNCTIONS = {torch.relu, torch.relu_, F.relu, torch.nn.functional.relu}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


def _mkldnn_pointwise_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class FusedConv2d(nn.Module):
    """A 2-D convolution with its BatchNorm folded in and an optional ReLU and residual add.

    ``forward(x, other=None)`` computes ``relu(conv(x) + other)`` when ``add``
    is ``"before_relu"`` (a ResNet block's end), ``relu(conv(x)) + other`` when
    it is ``"after_relu"``, and ``relu(conv(x))`` when it is None (the ReLU
    only if ``relu``). Outside autograd, the convolution, bias, ReLU and a
    ``"before_relu"`` add are one call: oneDNN with post-ops on CPU in float32
    (on weights reordered once per input shape), cuDNN's fused conv-(add)-ReLU
    on CUDA (in the autocast dtype when autocast is on). Elsewhere, and for a
    configuration cuDNN refuses, it is ``F.conv2d`` followed by in-place ops.
    An ``"after_relu"`` add is done in place on the fresh output.
    """

    ADD_POSITIONS = (None, "before_relu", "after_relu")
    _MAX_PACKED_SHAPES = 4  # input shapes whose reordered weights are kept

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None, *, add: str | None = None,
                 relu: bool = False):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("FusedConv2d takes convolutions with numeric zero padding")
        if add not in self.ADD_POSITIONS:
            raise ValueError(f"add must be one of {self.ADD_POSITIONS}, got {add!r}")
        weight, bias = fold_batchnorm(conv, bn)
        self.weight = nn.Parameter(weight.contiguous(memory_format=torch.channels_last), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.stride, self.padding, self.dilation = list(conv.stride), list(conv.padding), list(conv.dilation)
        self.groups = conv.groups
        self.add, self.relu = add, relu
        self._packed: dict[tuple[int, ...], torch.Tensor] = {}  # oneDNN-reordered weights by input shape
        self._cast: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor | None]] = {}  # cuDNN weights by dtype
        self._cudnn_error: str | None = None  # why cuDNN's fused op was refused, once it was

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        inner = other if self.add == "before_relu" else None
        if self._use_onednn(x, inner):
            y = self._onednn(x, inner)
        elif self._use_cudnn(x, inner):
            y = self._cudnn(x, inner)
        else:
            y = self._plain(x, inner)
        return _add_into(y, other) if self.add == "after_relu" else y

    def _plain(self, x: torch.Tensor, inner: torch.Tensor | None) -> torch.Tensor:
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if inner is not None:
            y = _add_into(y, inner)
        if self.relu:
            y = torch.relu(y) if torch.is_grad_enabled() else y.relu_()
        return y

    def _use_cudnn(self, x: torch.Tensor, other: torch.Tensor | None) -> bool:
        # cuDNN's fused ops always end in a ReLU; a conv without one gains nothing from them.
        if not (x.is_cuda and self.relu and self._cudnn_error is None and torch.backends.cudnn.enabled):
            return False
        if torch.is_grad_enabled() and x.requires_grad:
            return False
        return x.dtype in (torch.float32, torch.float16, torch.bfloat16) and (
            other is None or tuple(other.shape) == self._output_shape(x))

    def _cudnn(self, x: torch.Tensor, other: torch.Tensor | None) -> torch.Tensor:
        """``relu(conv(x) [+ other] + bias)`` as one cuDNN call, in the autocast dtype when autocast is on."""
        dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else x.dtype
        weight, bias = self._weights_as(dtype)
        args = (self.stride, self.padding, self.dilation, self.groups)
        try:
            with torch.autocast("cuda", enabled=False):
                x = x.to(dtype)
                if other is None:
                    return torch.cudnn_convolution_relu(x, weight, bias, *args)
                z = other.to(dtype).contiguous(memory_format=torch.channels_last)
                return torch.cudnn_convolution_add_relu(x, weight, z, 1.0, bias, *args)
        except RuntimeError as exc:
            # cuDNN may have no fused engine for a configuration; the plain path always works.
            self._cudnn_error = str(exc)
            return self._plain(x, other)

    def _weights_as(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        if dtype not in self._cast:
            bias = None if self.bias is None else self.bias.detach().to(dtype)
            self._cast[dtype] = (self.weight.detach().to(dtype), bias)
        return self._cast[dtype]

    def _onednn(self, x: torch.Tensor, other: torch.Tensor | None) -> torch.Tensor:
        args = (self._packed_weight(x), self.bias, self.padding, self.stride, self.dilation, self.groups)
        if other is None:
            return torch.ops.mkldnn._convolution_pointwise(x, *args, "relu" if self.relu else "none", [], "")
        other = other.contiguous(memory_format=torch.channels_last)
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, *args, "add", None, "relu" if self.relu else None, [], ""
        )

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        """The weight in oneDNN's blocked layout for this input shape (reordered once, then cached)."""
        key = tuple(x.shape)
        packed = self._packed.get(key)
        if packed is None:
            if len(self._packed) >= self._MAX_PACKED_SHAPES:
                self._packed.pop(next(iter(self._packed)))
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                self.weight.detach().to_mkldnn(), self.padding, self.stride, self.dilation, self.groups, list(key)
            )
            self._packed[key] = packed
        return packed

    def _use_onednn(self, x: torch.Tensor, other: torch.Tensor | None) -> bool:
        if not (x.device.type == "cpu" and x.dtype == torch.float32 and _mkldnn_pointwise_available()):
            return False
        if torch.is_grad_enabled() and x.requires_grad:
            return False  # oneDNN's fused op has no backward
        # The post-op add needs an operand of the output's own shape and dtype (no broadcasting).
        return other is None or (other.dtype == x.dtype and tuple(other.shape) == self._output_shape(x))

    def _output_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        sizes = []
        for size, k, s, p, d in zip(x.shape[-2:], self.weight.shape[-2:], self.stride, self.padding, self.dilation):
            sizes.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
        return (x.shape[0], self.weight.shape[0], *sizes)

    def _apply(self, fn, recurse=True):
        self._packed, self._cast = {}, {}  # copies of the old weight tensor
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        out_ch, in_ch, k_h, k_w = self.weight.shape
        parts = [f"{in_ch * self.groups}, {out_ch}, kernel_size=({k_h}, {k_w})", f"stride={tuple(self.stride)}",
                 f"padding={tuple(self.padding)}"]
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if self.relu:
            parts.append("relu")
        if self.add:
            parts.append(f"add={self.add}")
        return ", ".join(parts)


def _add_into(y: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``y + other``, in place on ``y`` (a fresh output nobody else holds) outside autograd when the shapes allow."""
    if other.shape == y.shape and other.dtype == y.dtype and not torch.is_grad_enabled():
        return y.add_(other)
    return y + other


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight and bias of ``conv`` followed by eval-mode ``bn``, computed in float64 and cast back."""
    weight = conv.weight.detach()
    bias = None if conv.bias is None else conv.bias.detach()
    if bn is None:
        return weight.clone(), None if bias is None else bias.clone()
    var = bn.running_var.detach().double()
    mean = bn.running_mean.detach().double()
    scale = torch.rsqrt(var + bn.eps)
    shift = -mean * scale
    if bn.affine:
        scale = scale * bn.weight.detach().double()
        shift = shift * bn.weight.detach().double() + bn.bias.detach().double()
    if bias is not None:
        shift = shift + bias.double() * scale
    folded = weight.double() * scale.reshape(-1, 1, 1, 1)
    return folded.to(weight.dtype), shift.to(weight.dtype)


class _Tracer(torch.fx.Tracer):
    def __init__(self, leaf_types: tuple[type, ...]):
        super().__init__()
        self.leaf_types = leaf_types

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, self.leaf_types) or super().is_leaf_module(module, qualified_name)


def fuse_for_inference(module: nn.Module, leaf_types: Iterable[type] = ()) -> torch.fx.GraphModule:
    """A traced copy of ``module`` (in eval mode) with every conv chain fused; see the module docstring.

    ``leaf_types`` are module classes to keep as opaque calls (modules that a
    symbolic trace cannot see through, such as ones returning index tensors).
    Raises ``torch.fx.proxy.TraceError`` if ``module.forward`` is not traceable.
    """
    if module.training:
        raise ValueError("fuse_for_inference needs a model in eval mode (BatchNorm running statistics)")
    tracer = _Tracer(tuple(leaf_types))
    graph = tracer.trace(module)
    fused = torch.fx.GraphModule(tracer.root, graph, module.__class__.__name__ + "Fused")
    modules = dict(fused.named_modules())
    count = 0
    for node in list(fused.graph.nodes):
        if node.op == "call_module" and _fusable_conv(modules.get(node.target)):
            _fuse_chain(fused, modules, node, f"fused_conv{count}")
            count += 1
    fused.graph.eliminate_dead_code()
    fused.delete_all_unused_submodules()
    fused.recompile()
    return fused.eval()


def _fusable_conv(module: nn.Module | None) -> bool:
    """A plain ``nn.Conv2d`` with numeric zero padding (what :class:`FusedConv2d` reproduces)."""
    return type(module) is nn.Conv2d and module.padding_mode == "zeros" and not isinstance(module.padding, str)


def _only_user(node: torch.fx.Node) -> torch.fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _is_module(node: torch.fx.Node | None, modules: dict, kind: type) -> bool:
    return node is not None and node.op == "call_module" and isinstance(modules.get(node.target), kind)


def _is_relu(node: torch.fx.Node | None, modules: dict) -> bool:
    if node is None:
        return False
    if _is_module(node, modules, nn.ReLU):
        return True
    if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
        return len(node.args) == 1
    return node.op == "call_method" and node.target in ("relu", "relu_") and len(node.args) == 1


def _residual_operand(add: torch.fx.Node | None, value: torch.fx.Node) -> torch.fx.Node | None:
    """The other operand of ``add`` if it is a plain ``value + tensor`` node, else None."""
    if add is None or add.kwargs:
        return None
    is_add = (add.op == "call_function" and add.target in _ADD_FUNCTIONS) or (
        add.op == "call_method" and add.target in ("add", "add_") and add.args[0] is not value
    )
    if not is_add or len(add.args) != 2:
        return None
    a, b = add.args
    other = b if a is value else a if b is value else None
    return other if isinstance(other, torch.fx.Node) and other is not value else None


def _fuse_chain(gm: torch.fx.GraphModule, modules: dict, conv_node: torch.fx.Node, name: str) -> None:
    conv = modules[conv_node.target]
    last, bn, other, add, relu = conv_node, None, None, None, False
    nxt = _only_user(last)
    if _is_module(nxt, modules, nn.BatchNorm2d) and not modules[nxt.target].training \
            and modules[nxt.target].track_running_stats:
        bn, last = modules[nxt.target], nxt
        nxt = _only_user(last)
    operand = _residual_operand(nxt, last)
    if operand is not None:
        other, add, last = operand, "before_relu", nxt
        nxt = _only_user(last)
    if _is_relu(nxt, modules):
        relu, last = True, nxt
        operand = _residual_operand(_only_user(last), last) if add is None else None
        if operand is not None:
            other, add, last = operand, "after_relu", _only_user(last)
    gm.add_submodule(name, FusedConv2d(conv, bn, add=add, relu=relu))
    with gm.graph.inserting_after(last):
        args = (conv_node.args[0],) if other is None else (conv_node.args[0], other)
        new = gm.graph.call_module(name, args)
    last.replace_all_uses_with(new)
    # The old chain (now without users) is removed by dead-code elimination.


def weights_signature(module: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer of ``module`` is replaced, moved or written in place."""
    return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in (*module.parameters(), *module.buffers()))


class FusedInference:
    """A fused copy of an eval-mode forward, built on first use and rebuilt when the weights change.

    :param build: makes the (unfused) module to trace; called again on every rebuild.
    :param owner: the model whose weights the copy mirrors (for :func:`weights_signature`).
    :param leaf_types: passed to :func:`fuse_for_inference`.
    :param finish: called on each new fused module, to adjust it further (it
        may replace submodules; the fused module's submodules other than the
        :class:`FusedConv2d` are the owner's own, so replace rather than mutate).
    """

    def __init__(self, build: Callable[[], nn.Module], owner: nn.Module, leaf_types: Iterable[type] = (),
                 finish: Callable[[torch.fx.GraphModule], None] | None = None):
        self._build, self._owner, self._leaf_types, self._finish = build, owner, tuple(leaf_types), finish
        self._signature: tuple | None = None
        self._module: torch.fx.GraphModule | None = None

    def module(self) -> torch.fx.GraphModule:
        signature = weights_signature(self._owner)
        if self._module is None or signature != self._signature:
            self._module = None  # free the old copy before building the new one
            with torch.no_grad():
                module = fuse_for_inference(self._build(), self._leaf_types)
                if self._finish is not None:
                    self._finish(module)
                self._module = module
            self._signature = signature
        return self._module

    def __call__(self, *args, **kwargs):
        return self.module()(*args, **kwargs)
