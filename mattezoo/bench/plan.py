"""Which cells a benchmark run has: methods × protocols, grouped by what must run once.

A *cell* is one evaluation: a method (trained on one view, or untrained) on
one test set. What a method needs goes by its family and by whether the
training engine has a recipe for it, never by its name:

* a method with a training recipe is trained once per training view the
  asked protocols need (B and/or N), and each trained model is evaluated on
  the test sets of those protocols: cell "B:N" is the B-trained model on the
  N test set;
* a classical method has nothing to train, so its B:x and N:x cells are one
  run on test set x (the paper's Table 1 prints them once, as "B:B = N:B");
* a learned method without a recipe is reported as skipped.

On top, when the data has an extra normal test set of other people (the
synthetic P3M-500-NP-like split), every B-trained method also gets a "B:NP"
cell for the Table-4-style view.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..errors import InputError, choices_hint
from ..registry import get_registry
from ..spec import PROTOCOLS, MethodSpec

CACHE_VERSION = "bench-cell-v1"
VIEW_OF_LETTER = {"B": "blurred", "N": "normal"}
LETTER_OF_VIEW = {"blurred": "B", "normal": "N"}


def parse_methods(text: str | None) -> list[str]:
    """``"all"``/None -> every registered method; ``"a,b"`` -> those, checked against the registry."""
    registry = get_registry()
    if text is None or text.strip().lower() in ("", "all"):
        names = registry.names()
        if not names:
            raise InputError("no matting methods are registered (see `mattezoo list` for failed plugins)")
        return names
    names = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name not in registry.names():
            raise InputError(f"--methods: unknown method {name!r}. {choices_hint(name, registry.names(), 'methods')} (or 'all')")
        if name not in names:
            names.append(name)
    if not names:
        raise InputError(f"--methods is empty. Valid methods: {', '.join(registry.names())} (or 'all')")
    return names


def parse_protocols(text: str | None) -> list[str]:
    """``"all"``/None -> the four; ``"B:B,b:n"`` -> ["B:B", "B:N"] in table order, checked."""
    if text is None or text.strip().lower() in ("", "all"):
        return list(PROTOCOLS)
    wanted = set()
    for raw in text.split(","):
        p = raw.strip().upper()
        if not p:
            continue
        if p not in PROTOCOLS:
            raise InputError(f"--protocols: unknown protocol {raw.strip()!r}. {choices_hint(p, list(PROTOCOLS), 'protocols')} (train:test, B = blurred, N = normal; or 'all')")
        wanted.add(p)
    if not wanted:
        raise InputError(f"--protocols is empty. Valid protocols: {', '.join(PROTOCOLS)} (or 'all')")
    return [p for p in PROTOCOLS if p in wanted]


def cache_key(payload: dict) -> str:
    """A stable hash of a JSON-able config (sorted keys)."""
    text = json.dumps({"version": CACHE_VERSION, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Cell:
    """One evaluation of the plan.

    ``train_view``: "blurred"/"normal", or None for methods that do not train;
    ``test``: the test-set key ("B", "N", "NP"); ``protocols``: the protocol
    cells this evaluation fills (two for a classical method: "B:B" and "N:B");
    ``status`` for cells decided while planning: "unavailable" (the data
    cannot run it) or "skipped" (the method cannot be trained), with ``reason``.
    """

    method: str
    family: str
    train_view: str | None
    test: str
    protocols: tuple[str, ...]
    trains: bool
    status: str = "planned"
    reason: str = ""
    key: str = ""
    train_key: str = ""

    @property
    def train_letter(self) -> str | None:
        return LETTER_OF_VIEW.get(self.train_view) if self.train_view else None

    @property
    def id(self) -> str:
        return f"{self.method}__{self.train_letter or 'untrained'}-{self.test}"

    @property
    def label(self) -> str:
        return " = ".join(self.protocols)


@dataclass
class Plan:
    methods: list[str]
    protocols: list[str]
    cells: list[Cell] = field(default_factory=list)

    def runnable(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "planned"]


def make_plan(methods: list[str], protocols: list[str], source, has_recipe) -> Plan:
    """The cells of ``methods`` × ``protocols`` on ``source`` (a :class:`mattezoo.data.sources.DataSource`).

    ``has_recipe(name) -> bool`` tells trainable methods apart (the training
    engine's :func:`mattezoo.train.has_recipe`; a parameter so the plan is
    testable without it).
    """
    registry = get_registry()
    plan = Plan(methods=list(methods), protocols=list(protocols))
    for name in methods:
        spec: MethodSpec = registry.get(name)
        try:
            trains = bool(has_recipe(name))
            recipe_error = ""
        except Exception as exc:  # a broken recipe plugin must not stop the others
            trains, recipe_error = False, f"{type(exc).__name__}: {exc}"
        if trains:
            plan.cells += _learned_cells(spec, protocols, source)
        elif spec.family == "classical":
            plan.cells += _classical_cells(spec, protocols, source)
        else:
            reason = f"no training recipe for this {spec.family} method" + (f" ({recipe_error})" if recipe_error else "")
            for p in protocols:
                train, test = p.split(":")
                plan.cells.append(Cell(name, spec.family, VIEW_OF_LETTER[train], test, (p,), True, status="skipped", reason=reason))
    return plan


def _learned_cells(spec: MethodSpec, protocols, source) -> list[Cell]:
    cells = []
    for p in protocols:
        train, test = p.split(":")
        cell = Cell(spec.name, spec.family, VIEW_OF_LETTER[train], test, (p,), True)
        if p in source.missing:
            cell.status, cell.reason = "unavailable", source.missing[p]
        elif VIEW_OF_LETTER[train] not in source.train_views:
            cell.status, cell.reason = "unavailable", f"the training set has no {VIEW_OF_LETTER[train]} images"
        elif test not in source.tests:
            cell.status, cell.reason = "unavailable", f"the data has no {test} test set"
        cells.append(cell)
    # The Table-4 view: B-trained models on the extra normal test set of other people.
    if any(p.startswith("B:") and source.can_run(p) for p in protocols):
        for key in source.extra_tests:
            cells.append(Cell(spec.name, spec.family, "blurred", key, (f"B:{key}",), True))
    return cells


def _classical_cells(spec: MethodSpec, protocols, source) -> list[Cell]:
    cells = []
    for test in ("B", "N"):
        covered = tuple(p for p in protocols if p.endswith(":" + test))
        if not covered:
            continue
        if test not in source.tests:
            cells.append(Cell(spec.name, spec.family, None, test, covered, False, status="unavailable", reason=f"the data has no {test} test set"))
            continue
        # No training: the training view of the protocol changes nothing, even
        # where the data has no normal training images.
        cells.append(Cell(spec.name, spec.family, None, test, covered, False))
    if any(p.startswith("B:") for p in protocols):
        for key in source.extra_tests:
            cells.append(Cell(spec.name, spec.family, None, key, (f"B:{key}",), False))
    return cells
