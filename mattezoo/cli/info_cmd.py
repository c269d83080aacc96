"""``mattezoo info NAME``: everything the registry knows about one method."""

from __future__ import annotations

import json

from ..factory import method_options
from ..registry import get_method


def add_parser(sub):
    p = sub.add_parser("info", help="show a method's family, citation, options, weights and the paper's numbers")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    return p


def run(args) -> int:
    spec = get_method(args.name)
    options = method_options(spec.name)
    record = {
        "name": spec.name,
        "family": spec.family,
        "needs_trimap": spec.needs_trimap,
        "makes_trimap": spec.provides_trimap,
        "plugin": spec.plugin,
        "factory": spec.factory,
        "summary": spec.summary,
        "citation": spec.citation,
        "options": {k: repr(v) for k, v in options.items()},
        "weights": {tag: cfg.file for tag, cfg in spec.weights.items()},
        "paper_results": [
            {"source": r.source, "test_set": r.test_set, "protocol": r.protocol, **r.metrics} for r in spec.paper_results
        ],
    }
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    for key in ("name", "family", "needs_trimap", "makes_trimap", "plugin", "factory", "summary", "citation"):
        print(f"{key:>13}: {record[key]}")
    print(f"{'options':>13}: " + (", ".join(f"{k}={v}" for k, v in record["options"].items()) or "none"))
    print(f"{'weights':>13}: " + (", ".join(f"{t} ({f})" for t, f in record["weights"].items()) or "none"))
    if spec.paper_results:
        print("paper results:")
        for r in spec.paper_results:
            metrics = ", ".join(f"{k} {v:g}" for k, v in r.metrics.items())
            proto = f" {r.protocol}" if r.protocol else ""
            print(f"  {r.source}, {r.test_set}{proto}: {metrics}")
    return 0
