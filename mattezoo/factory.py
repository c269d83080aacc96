"""``create_method``: from a registered name to a ready matting object."""

from __future__ import annotations

import importlib
import importlib.util
import inspect

import torch

from .errors import InvalidOptionError, MattezooError, choices_hint
from .registry import get_registry, split_name_tag
from .spec import MethodSpec
from .weights import load_into, load_state_dict, resolve_weights

# Options every method accepts; create_method handles them itself unless the
# factory declares them (then they are passed through).
GENERIC_OPTIONS = ("pretrained", "device")


def create_method(name: str, **options):
    """Build the matting object registered as ``name``.

    :param name: a registered method name, optionally with a weight tag
        (``"p3m_net.p3m10k"``, equivalent to ``pretrained="p3m10k"``).
    :param options: keyword options of the method's factory (see
        ``mattezoo info NAME``), plus ``pretrained`` (a checkpoint path or a
        weight tag) and ``device`` for learned methods.
    :return: the object ``predict`` runs: an ``nn.Module`` in eval mode for
        learned methods. ``obj.mattezoo_spec`` is its :class:`MethodSpec`.
    """
    registry = get_registry()
    spec = registry.get(name)
    _base, tag = split_name_tag(name)
    if tag is not None:
        if "pretrained" in options:
            raise InvalidOptionError(f"{name!r} names weights already; do not also pass pretrained={options['pretrained']!r}")
        options["pretrained"] = tag
    _check_requires(spec)
    factory = _import_factory(spec)
    accepted, takes_any = _accepted_options(factory)
    generic = {k: options.pop(k) for k in GENERIC_OPTIONS if k in options and k not in accepted}
    unknown = sorted(k for k in options if k not in accepted) if not takes_any else []
    if unknown:
        valid = sorted(set(accepted) | set(GENERIC_OPTIONS))
        raise InvalidOptionError(
            f"{spec.name!r} has no option {', '.join(map(repr, unknown))}. {choices_hint(unknown[0], valid, 'options')}"
        )
    try:
        obj = factory(**options)
    except MattezooError:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidOptionError(f"invalid options for {spec.name!r} {options}: {exc}") from exc
    if isinstance(obj, torch.nn.Module):
        if generic.get("pretrained") is not None:
            path = resolve_weights(spec, generic["pretrained"], registry.pm)
            load_into(obj, load_state_dict(path), source=f"checkpoint {str(path)!r}")
        obj.eval()
        if generic.get("device") is not None:
            obj.to(_device(generic["device"]))
    else:
        for key, value in generic.items():
            if value is not None:
                raise InvalidOptionError(f"{spec.name!r} is a {spec.family} method without weights or devices; option {key!r} does not apply")
    obj.mattezoo_spec = spec
    return obj


def _device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidOptionError(f"invalid device {device!r}: {exc}. Use 'cpu', 'cuda' or 'cuda:N'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError(f"device {device!r} was asked for, but torch sees no CUDA device here; use device='cpu'")
    return dev


def _check_requires(spec: MethodSpec) -> None:
    missing = [m for m in spec.requires if importlib.util.find_spec(m.split(".")[0]) is None]
    if missing:
        raise MattezooError(f"method {spec.name!r} needs the module(s) {', '.join(missing)}; install them with pip")


def _import_factory(spec: MethodSpec):
    module_name, _, attr = spec.factory.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:
        raise MattezooError(f"method {spec.name!r} (plugin {spec.plugin!r}): cannot import {module_name}: {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise MattezooError(f"method {spec.name!r} (plugin {spec.plugin!r}): {spec.factory} does not exist") from None
    if not callable(obj):
        raise MattezooError(f"method {spec.name!r}: factory {spec.factory} is not callable")
    return obj


def _accepted_options(factory) -> tuple[list[str], bool]:
    """Keyword names the factory takes, and whether it also takes ``**kwargs``."""
    sig = inspect.signature(factory)
    names = [
        p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    return names, takes_any


def method_options(name: str) -> dict[str, object]:
    """The options of a method's factory with their defaults (for ``mattezoo info``)."""
    spec = get_registry().get(name)
    sig = inspect.signature(_import_factory(spec))
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
