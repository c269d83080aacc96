"""The method registry: every ``MethodSpec`` that the plugins return, by name."""

from __future__ import annotations

import fnmatch
from dataclasses import replace
import functools
from collections.abc import Iterable

from .errors import DuplicateMethodError, InputError, UnknownMethodError, choices_hint
from .plugins import PluginManager, get_plugin_manager
from .spec import FAMILIES, MethodSpec


class MethodRegistry:
    """Collects ``mattezoo_register_methods`` from every plugin of ``pm``.

    Each plugin's hook is called on its own, so a plugin whose hook raises or
    returns something that is not a list of ``MethodSpec`` is recorded as a
    failed plugin and skipped, while the others still register.
    """

    def __init__(self, pm: PluginManager):
        self.pm = pm
        self._specs: dict[str, MethodSpec] = {}
        hook = pm.hook.mattezoo_register_methods
        # get_hookimpls() is in registration order: built-ins first, then entry points.
        for impl in hook.get_hookimpls():
            try:
                returned = impl.function()
                specs = _check_specs(returned)
            except Exception as exc:
                pm.record_failure(impl.plugin_name, "mattezoo_register_methods", exc)
                continue
            for spec in specs:
                self._add(spec, impl.plugin_name)

    def _add(self, spec: MethodSpec, plugin_name: str) -> None:
        if spec.name in self._specs:
            first = self._specs[spec.name]
            raise DuplicateMethodError(
                f"method {spec.name!r} is registered twice: by plugin {first.plugin!r} "
                f"(factory {first.factory}) and by plugin {plugin_name!r} (factory {spec.factory}). "
                f"Block one of them with MATTEZOO_DISABLE_PLUGINS={plugin_name}"
            )
        self._specs[spec.name] = replace(spec, plugin=plugin_name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> MethodSpec:
        """The spec of ``name``; ``"name.tag"`` resolves to the spec of ``name``."""
        if not isinstance(name, str):
            raise InputError(f"method name must be a string, got {type(name).__name__}")
        base, _tag = split_name_tag(name)
        try:
            return self._specs[base]
        except KeyError:
            raise UnknownMethodError(name, self._specs) from None

    def list(self, pattern: str | None = None, family: str | None = None) -> list[str]:
        if family is not None and family not in FAMILIES:
            raise InputError(f"unknown method family {family!r}. {choices_hint(family, list(FAMILIES), 'families')}")
        names = self.names()
        if pattern is not None:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if family is not None:
            names = [n for n in names if self._specs[n].family == family]
        return names


def split_name_tag(name: str) -> tuple[str, str | None]:
    """``"p3m_net.p3m10k"`` -> ``("p3m_net", "p3m10k")``; no dot -> tag ``None``."""
    base, sep, tag = name.partition(".")
    return base, (tag if sep else None)


def _check_specs(returned) -> list[MethodSpec]:
    if returned is None:
        return []
    if not isinstance(returned, Iterable) or isinstance(returned, (str, bytes, MethodSpec)):
        raise TypeError(f"mattezoo_register_methods must return a list of MethodSpec, got {type(returned).__name__}")
    specs = list(returned)
    for item in specs:
        if not isinstance(item, MethodSpec):
            raise TypeError(f"mattezoo_register_methods returned a {type(item).__name__}, expected MethodSpec")
    return specs


@functools.cache
def get_registry() -> MethodRegistry:
    """The registry of the process-wide plugin manager (built on first use)."""
    return MethodRegistry(get_plugin_manager())


def list_methods(pattern: str | None = None, family: str | None = None) -> list[str]:
    """Sorted names of the registered methods.

    :param pattern: an ``fnmatch`` pattern such as ``"p3m*"``.
    :param family: ``"trimap-free"``, ``"trimap-based"`` or ``"classical"``.
    """
    return get_registry().list(pattern, family)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` registered as ``name`` (``"name.tag"`` allowed)."""
    return get_registry().get(name)
