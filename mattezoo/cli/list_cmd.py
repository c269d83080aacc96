"""``mattezoo list``: registered methods, the plugin each came from, failed plugins."""

from __future__ import annotations

import json

from ..extension import status as extension_status
from ..plugins import get_plugin_manager
from ..registry import get_registry
from ..spec import FAMILIES


def add_parser(sub):
    p = sub.add_parser("list", help="list methods, their families and plugins, and plugins that failed to load")
    p.add_argument("pattern", nargs="?", help="fnmatch pattern such as 'p3m*'")
    p.add_argument("--family", choices=FAMILIES)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def run(args) -> int:
    registry = get_registry()
    pm = get_plugin_manager()
    names = registry.list(args.pattern, args.family)
    rows = []
    for name in names:
        spec = registry.get(name)
        info = pm.info.get(spec.plugin)
        rows.append(
            {
                "name": name,
                "family": spec.family,
                "trimap": spec.needs_trimap,
                "plugin": spec.plugin,
                "package": info.distribution if info else "",
                "summary": spec.summary,
            }
        )
    failures = [{"plugin": f.name, "source": f.source, "error": f.error} for f in pm.failures]
    if args.json:
        print(json.dumps({"methods": rows, "failed_plugins": failures}, indent=2))
        return 0
    if rows:
        headers = ("name", "family", "trimap", "plugin", "package", "summary")
        table = [[str(r[h]) if h != "trimap" else ("yes" if r[h] else "no") for h in headers] for r in rows]
        widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
        print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip())
        for row in table:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    else:
        print("no methods match" if (args.pattern or args.family) else "no methods are registered")
    print(f"\n{len(rows)} method(s); {extension_status()}")
    if failures:
        print(f"\nfailed plugins ({len(failures)}):")
        for f in failures:
            print(f"  {f['plugin']} ({f['source']}): {f['error']}")
    return 0
