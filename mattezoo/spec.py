"""Frozen descriptions of what a plugin registers.

A :class:`MethodSpec` is pure data: listing methods never imports model code.
Only :func:`mattezoo.create_method` imports ``spec.factory``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

FAMILIES = ("trimap-free", "trimap-based", "classical")
PROTOCOLS = ("B:B", "B:N", "N:B", "N:N")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _frozen_mapping(value) -> Mapping:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class PaperResult:
    """One row of numbers a paper reports for a method.

    ``source`` names the table (``"P3M Table 3"``); ``test_set`` is the test
    data (``"P3M-500-P"``); ``protocol`` is one of :data:`PROTOCOLS` or
    ``None`` where the table has no training variant; ``metrics`` maps metric
    names as the tables print them (``"SAD"``, ``"MSE-T"``, ...) to values.
    """

    source: str
    test_set: str
    metrics: Mapping[str, float]
    protocol: str | None = None

    def __post_init__(self):
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)} or None, got {self.protocol!r}")
        object.__setattr__(self, "metrics", _frozen_mapping(self.metrics))


# Table 4 of the P3M paper prints these metrics, in this order.
P3M_TABLE4_METRICS = ("SAD", "MSE", "MAD", "SAD-T", "MSE-T", "MAD-T", "GRAD", "CONN")


def p3m_protocol_row(table: int, protocol: str, sad: float, mse: float, mad: float) -> PaperResult:
    """A row of the P3M paper's Table 2 (trimap-based) or 3 (trimap-free): one protocol on P3M-500-P."""
    return PaperResult(f"P3M Table {table}", "P3M-500-P", {"SAD": sad, "MSE": mse, "MAD": mad}, protocol)


def p3m_table4_row(test_set: str, values) -> PaperResult:
    """A row of the P3M paper's Table 4: the :data:`P3M_TABLE4_METRICS` on ``"P3M-500-P"`` or ``"P3M-500-NP"``."""
    values = tuple(values)
    if len(values) != len(P3M_TABLE4_METRICS):
        raise ValueError(f"P3M Table 4 rows have {len(P3M_TABLE4_METRICS)} values ({', '.join(P3M_TABLE4_METRICS)}), got {len(values)}")
    return PaperResult("P3M Table 4", test_set, dict(zip(P3M_TABLE4_METRICS, values)))


@dataclass(frozen=True)
class WeightsCfg:
    """Where a named set of weights comes from, and how to check it.

    Nothing is downloaded: ``file`` is a file name looked up in the
    ``MATTEZOO_WEIGHTS`` folder (or supplied by a ``mattezoo_resolve_weights``
    hook), and ``sha256`` is verified when given.
    """

    file: str
    sha256: str | None = None
    description: str = ""
    origin_url: str = ""
    license: str = ""


@dataclass(frozen=True)
class MethodSpec:
    """A matting method as a plugin registers it.

    :param name: lowercase snake-case registry key, e.g. ``"p3m_net"``.
    :param family: one of :data:`FAMILIES`.
    :param factory: ``"module:callable"``; called with the user's options, it
        returns the matting object (an ``nn.Module`` for learned methods). The
        object maps ``image`` (``[B,3,H,W]`` float RGB in [0,1]) and ``trimap``
        (``[B,1,H,W]`` float with 0 = background, 0.5 = unknown,
        1 = foreground, or ``None``) to alpha (``[B,1,H,W]`` in [0,1]).
    :param summary: one line for ``mattezoo list``.
    :param citation: the paper the method comes from.
    :param paper_results: numbers the P3M paper reports for this method.
    :param weights: named weight sets; ``create_method("name.tag")`` uses them.
    :param input_multiple: images are padded to a multiple of this before the
        forward pass and cropped back after it.
    :param requires: importable modules the method needs beyond mattezoo's
        own dependencies; a missing one gives a clear error at creation.
    :param recipe: ``"module:callable"`` returning the method's training
        :class:`mattezoo.train.Recipe` (learned methods); a plugin's
        ``mattezoo_training_recipe`` hook takes precedence.
    :param provides_trimap: the object also has ``infer_trimap(image)``,
        mapping ``[B,3,H,W]`` in [0,1] to its own ``[B,1,H,W]`` trimap
        (0 / 0.5 / 1) at the image's size, so a trimap-based method can run
        on it (:func:`mattezoo.predict_trimap`, ``predict --trimap-from``).
    :param plugin: filled in by the registry: the plugin that registered it.
    """

    name: str
    family: str
    factory: str
    summary: str = ""
    citation: str = ""
    paper_results: tuple[PaperResult, ...] = ()
    weights: Mapping[str, WeightsCfg] = field(default_factory=dict)
    input_multiple: int = 1
    requires: tuple[str, ...] = ()
    recipe: str | None = None
    provides_trimap: bool = False
    plugin: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(f"method name must be lowercase snake case like 'p3m_net', got {self.name!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"method {self.name!r}: family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if not isinstance(self.factory, str) or not _FACTORY_RE.match(self.factory):
            raise ValueError(f"method {self.name!r}: factory must be 'module:callable', got {self.factory!r}")
        if self.recipe is not None and (not isinstance(self.recipe, str) or not _FACTORY_RE.match(self.recipe)):
            raise ValueError(f"method {self.name!r}: recipe must be 'module:callable' or None, got {self.recipe!r}")
        if not isinstance(self.provides_trimap, bool):
            raise ValueError(f"method {self.name!r}: provides_trimap must be True or False, got {self.provides_trimap!r}")
        if not isinstance(self.input_multiple, int) or self.input_multiple < 1:
            raise ValueError(f"method {self.name!r}: input_multiple must be a positive int, got {self.input_multiple!r}")
        for tag in self.weights:
            if not _NAME_RE.match(tag):
                raise ValueError(f"method {self.name!r}: weight tag must be lowercase snake case, got {tag!r}")
        object.__setattr__(self, "paper_results", tuple(self.paper_results))
        object.__setattr__(self, "requires", tuple(self.requires))
        object.__setattr__(self, "weights", _frozen_mapping(self.weights))

    @property
    def needs_trimap(self) -> bool:
        """Trimap-based and classical methods need a trimap; trimap-free ones do not."""
        return self.family != "trimap-free"

    def paper(self, source: str | None = None, test_set: str | None = None, protocol: str | None = None):
        """The reported rows that match every given filter."""
        return [
            r
            for r in self.paper_results
            if (source is None or r.source == source)
            and (test_set is None or r.test_set == test_set)
            and (protocol is None or r.protocol == protocol)
        ]
