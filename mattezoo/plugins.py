"""Finding and loading plugins.

Built-in methods are plugins too: each module in :data:`BUILTIN_PLUGINS` is
also declared in the ``mattezoo`` entry-point group of mattezoo's own package
metadata, and loads through the same path a third-party plugin takes. They are
registered by module name first, under their entry-point names, so stale or
missing package metadata cannot hide them; pluggy-style, an entry point whose
name is already registered is then skipped.

A plugin that fails to import is recorded in :attr:`PluginManager.failures`,
reported with a warning and by ``mattezoo list``, and does not stop the others.
``MATTEZOO_DISABLE_PLUGINS=a,b`` blocks plugins by name, built-in or not.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import traceback
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "mattezoo"
DISABLE_ENV = "MATTEZOO_DISABLE_PLUGINS"

# entry-point name -> module; keep in step with [project.entry-points.mattezoo]
BUILTIN_PLUGINS: dict[str, str] = {
    "p3m": "mattezoo_methods.p3m",
    "closed_form": "mattezoo_methods.closed_form",
    "knn": "mattezoo_methods.knn",
    "gfm": "mattezoo_methods.gfm",
    "information_flow": "mattezoo_methods.information_flow",
    "learning_based": "mattezoo_methods.learning_based",
    "gca": "mattezoo_methods.gca",
    "dim": "mattezoo_methods.dim",
    "shm": "mattezoo_methods.shm",
    "fba": "mattezoo_methods.fba",
    "indexnet": "mattezoo_methods.indexnet",
    "alphagan": "mattezoo_methods.alphagan",
    "hatt": "mattezoo_methods.hatt",
    "shared_sampling": "mattezoo_methods.shared_sampling",
    "global_sampling": "mattezoo_methods.global_sampling",
    "lf": "mattezoo_methods.lf",
    "robust": "mattezoo_methods.robust",
    "comprehensive_sampling": "mattezoo_methods.comprehensive_sampling",
}


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin came from."""

    name: str
    module: str
    distribution: str  # "mattezoo (built-in)" or the third-party package name
    version: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, with the reason."""

    name: str
    source: str
    error: str
    detail: str = ""


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus a record of where plugins came from and which failed."""

    def __init__(self):
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []

    def register_plugin(self, plugin: object, name: str, *, distribution: str = "", version: str = "") -> bool:
        """Register ``plugin`` under ``name``; a bad plugin becomes a failure, not an exception."""
        module = getattr(plugin, "__name__", type(plugin).__name__)
        try:
            self.register(plugin, name=name)
        except Exception as exc:  # pluggy raises ValueError/PluginValidationError
            self._fail(name, module, exc)
            return False
        # A misspelt hook name would otherwise be silently ignored (or break
        # check_pending() for everyone): refuse just this plugin.
        unknown = sorted(c.name for c in self.get_hookcallers(plugin) or () if not c.has_spec())
        if unknown:
            self.unregister(plugin)
            valid = sorted(n for n in dir(hookspecs) if n.startswith("mattezoo_"))
            self._fail(name, module, ValueError(f"unknown hook(s) {', '.join(unknown)}; valid hooks: {', '.join(valid)}"))
            return False
        self.info[name] = PluginInfo(name, module, distribution or "unknown", version)
        return True

    def load_module(self, name: str, module: str, *, distribution: str = "", version: str = "") -> bool:
        """Import ``module`` and register it as plugin ``name`` unless it is blocked."""
        if self.is_blocked(name) or self.has_plugin(name):
            return False
        try:
            plugin = importlib.import_module(module)
        except Exception as exc:
            self._fail(name, module, exc)
            return False
        return self.register_plugin(plugin, name, distribution=distribution, version=version)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every entry point of ``group`` not already registered or blocked."""
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            if self.is_blocked(ep.name) or self.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else ""
            try:
                plugin = ep.load()
            except Exception as exc:
                self._fail(ep.name, ep.value, exc)
                continue
            self.register_plugin(plugin, ep.name, distribution=dist, version=version)

    def record_failure(self, name: str, source: str, exc: BaseException) -> None:
        """Note that plugin ``name`` misbehaved (used by the registry for raising hooks)."""
        self._fail(name, source, exc)

    def _fail(self, name: str, source: str, exc: BaseException) -> None:
        failure = PluginFailure(
            name=name,
            source=source,
            error=f"{type(exc).__name__}: {exc}",
            detail="".join(traceback.format_exception(exc)),
        )
        self.failures.append(failure)
        warnings.warn(
            f"mattezoo plugin {name!r} ({source}) failed and was skipped: {failure.error}",
            RuntimeWarning,
            stacklevel=3,
        )


def blocked_from_env() -> list[str]:
    """Plugin names listed in ``MATTEZOO_DISABLE_PLUGINS`` (comma separated)."""
    raw = os.environ.get(DISABLE_ENV, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def make_plugin_manager(
    *, builtins: bool = True, entry_points: bool = True, blocked: Iterable[str] | None = None
) -> PluginManager:
    """Build a fresh manager. Tests use this to get one without entry points."""
    pm = PluginManager()
    for name in blocked_from_env() if blocked is None else blocked:
        pm.set_blocked(name)
    if builtins:
        version = _own_version()
        for name, module in BUILTIN_PLUGINS.items():
            pm.load_module(name, module, distribution="mattezoo (built-in)", version=version)
    if entry_points:
        pm.load_entry_points()
    pm.check_pending()
    return pm


@functools.cache
def get_plugin_manager() -> PluginManager:
    """The process-wide manager (built on first use, never at import)."""
    return make_plugin_manager()


def reset_plugin_manager() -> None:
    """Forget the cached manager and registry, e.g. after installing a plugin."""
    from . import registry

    get_plugin_manager.cache_clear()
    registry.get_registry.cache_clear()
    importlib.invalidate_caches()


def _own_version() -> str:
    try:
        return importlib.metadata.version("mattezoo")
    except importlib.metadata.PackageNotFoundError:
        return ""
