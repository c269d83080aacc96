"""The benchmark's tables, shaped like the P3M paper's Tables 1–4, for the terminal and for Markdown.

* Table 1 shape: classical (trimap-based traditional) methods, SAD / MSE / MAD
  on the unknown region, one column group per test set: they do not train,
  so "B:B = N:B" and "B:N = N:N".
* Table 2 shape: learned trimap-based methods, the four protocols, unknown region.
* Table 3 shape: trimap-free methods, the four protocols, whole image.
* Table 4 shape: every B-trained model on each test set, with all metrics
  (SAD, MSE, MAD, their -T variants on the trimap's unknown region, Grad, Conn).
* The PPT gap: SAD(B:N) − SAD(N:N), what training on blurred faces costs on
  normal test images (the paper's key finding, section 3.4).

Values come from the cell records only (what results.json holds), so a table
always agrees with the cell files. A table is built as a :class:`Table`
(title, column groups, rows of values) and rendered by :func:`render_text` or
:func:`render_markdown`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..spec import PROTOCOLS

HEADLINE = ("SAD", "MSE", "MAD")
ALL_METRICS = ("SAD", "MSE", "MAD", "SAD-T", "MSE-T", "MAD-T", "GRAD", "CONN")
MISSING = "–"


def fmt(metric: str, value) -> str:
    """Table precision per metric: SAD-like sums with 3 decimals, per-pixel means with 5."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, str):
        return value
    base = metric.split("-")[0].upper()
    if base in ("MSE", "MAD"):
        return f"{value:.5f}"
    if base == "GAP%":
        return f"{value:+.1f}%"
    if base == "GAP":
        return f"{value:+.3f}"
    return f"{value:.3f}"


@dataclass
class Table:
    title: str
    groups: list[tuple[str, list[str]]]  # (group label, metric names)
    rows: list[tuple[str, list]] = field(default_factory=list)  # (row label, values: float | str | None)
    notes: list[str] = field(default_factory=list)
    row_header: str = "method"

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [(g, m) for g, metrics in self.groups for m in metrics]


# ---------------------------------------------------------------- lookups


def _record_for(records, method: str, protocol: str) -> dict | None:
    for r in records:
        if r["method"] == method and protocol in r["protocols"]:
            return r
    return None


def _status_text(record: dict | None) -> str | None:
    if record is None:
        return None
    if record["status"] == "ok":
        return None
    return {"failed": "failed", "skipped": "skipped", "unavailable": "n/a"}.get(record["status"], record["status"])


def cell_values(record: dict | None, metrics, headline: bool) -> list:
    """The values of ``metrics`` in one cell (headline names map to the family's scope)."""
    text = _status_text(record)
    if record is None:
        return [None] * len(metrics)
    if text is not None:
        return [text] * len(metrics)
    ev = record["eval"]
    source = ev["headline"] if headline else ev["means"]
    return [source.get(m) if headline and m in HEADLINE else ev["means"].get(m) for m in metrics]


def paper_values(spec, protocol: str, test, metrics, trains: bool) -> list | None:
    """The paper's numbers for this method, protocol and test set, or None when the paper has none.

    Rows with a protocol (Tables 2, 3) match on it and on the test set they
    were run on; rows without one match on the test set alone: for classical
    methods every protocol (Table 1), for learned ones only B-trained cells
    (Table 4 trains on the blurred set).
    """
    if spec is None or test is None or not (test.paper_names or test.paper_protocol_names):
        return None
    exact = [r for r in spec.paper_results if r.protocol == protocol and r.test_set in test.paper_protocol_names]
    plain = [r for r in spec.paper_results if r.protocol is None and r.test_set in test.paper_names
             and (not trains or protocol.startswith("B:"))]
    candidates = exact + plain
    if not candidates:
        return None
    out = []
    for m in metrics:
        value = next((r.metrics[m] for r in candidates if m in r.metrics), None)
        out.append(value)
    return out if any(v is not None for v in out) else None


# ---------------------------------------------------------------- tables


def _protocol_table(title, records, methods, protocols, specs, source, notes) -> Table:
    table = Table(title, [(p, list(HEADLINE)) for p in protocols], notes=list(notes))
    for m in methods:
        values = []
        for p in protocols:
            values += cell_values(_record_for(records, m, p), HEADLINE, headline=True)
        table.rows.append((m, values))
        if source is not None and source.is_p3m10k:
            paper = []
            for p in protocols:
                rec = _record_for(records, m, p)
                test = source.tests.get(p.split(":")[1])
                paper += paper_values(specs.get(m), p, test, HEADLINE, trains=bool(rec and rec["trains"])) or [None] * len(HEADLINE)
            if any(v is not None for v in paper):
                table.rows.append((f"{m} (paper)", paper))
    return table


def table1(records, specs, protocols, source=None) -> Table | None:
    methods = _methods(records, lambda r: not r["trains"])
    if not methods:
        return None
    groups = []
    for test in ("B", "N"):
        covered = [p for p in protocols if p.endswith(":" + test)]
        if covered:
            groups.append((" = ".join(covered), test))
    table = Table(
        "Table 1 shape: classical trimap-based methods (ground-truth trimap, unknown region)",
        [(g, list(HEADLINE)) for g, _ in groups],
        notes=["These methods do not train, so the training view changes nothing: each column group is one run on that test set, as in the paper's Table 1."],
    )
    for m in methods:
        values, paper = [], []
        for g, test in groups:
            first = g.split(" = ")[0]
            values += cell_values(_record_for(records, m, first), HEADLINE, headline=True)
            if source is not None and source.is_p3m10k:
                paper += paper_values(specs.get(m), first, source.tests.get(test), HEADLINE, trains=False) or [None] * 3
        table.rows.append((m, values))
        if paper and any(v is not None for v in paper):
            table.rows.append((f"{m} (paper)", paper))
    return table


def table2(records, specs, protocols, source=None) -> Table | None:
    methods = _methods(records, lambda r: r["trains"] and r["family"] == "trimap-based")
    if not methods:
        return None
    return _protocol_table("Table 2 shape: learned trimap-based methods (ground-truth trimap, unknown region)",
                           records, methods, protocols, specs, source, [])


def table3(records, specs, protocols, source=None) -> Table | None:
    methods = _methods(records, lambda r: r["trains"] and r["family"] == "trimap-free")
    if not methods:
        return None
    return _protocol_table("Table 3 shape: trimap-free methods (whole image)", records, methods, protocols, specs, source, [])


def table4(records, specs, source=None) -> Table | None:
    """B-trained (or untrained) models on every test set, all metrics."""
    rows = [r for r in records if (r["train_view"] in (None, "blurred"))]
    tests = []
    for r in rows:
        if r["test"] not in [t for t, _ in tests]:
            tests.append((r["test"], r["test_label"]))
    order = {"B": 0, "N": 1, "NP": 2}
    tests.sort(key=lambda t: order.get(t[0], 9))
    if not rows:
        return None
    table = Table(
        "Table 4 shape: models trained on blurred images (classical: untrained), every metric",
        [("", list(ALL_METRICS))],
        notes=[
            "SAD, MSE, MAD, GRAD, CONN over the whole image; the -T variants force the prediction to the trimap's known "
            "values and MSE-T, MAD-T average over its unknown pixels. † marks methods given the ground-truth trimap.",
        ],
        row_header="method / test set",
    )
    for test, label in tests:
        for m in _methods(rows, lambda r: True):
            rec = next((r for r in rows if r["method"] == m and r["test"] == test), None)
            if rec is None:
                continue
            mark = "" if rec["family"] == "trimap-free" else " †"
            table.rows.append((f"{m}{mark} / {test}", cell_values(rec, ALL_METRICS, headline=False)))
            if source is not None and source.is_p3m10k:
                t = source.tests.get(test) or source.extra_tests.get(test)
                paper = paper_values(specs.get(m), f"B:{test}", t, ALL_METRICS, trains=rec["trains"])
                if paper:
                    table.rows.append((f"{m}{mark} (paper) / {test}", paper))
    table.notes.insert(0, "Test sets: " + "; ".join(f"{key} = {label}" for key, label in tests) + ".")
    return table


def gap_table(records) -> Table | None:
    """SAD(B:N) − SAD(N:N) per learned method: the cost of training on blurred faces."""
    table = Table(
        "PPT gap: SAD(B:N) − SAD(N:N), what training on blurred faces costs on normal test images",
        [("", ["SAD B:N", "SAD N:N", "gap", "gap%"])],
        notes=["Positive: the blurred-trained model does worse on normal faces than the normal-trained one. Classical methods do not train (gap 0 by construction) and are left out."],
    )
    for m in _methods(records, lambda r: r["trains"]):
        bn, nn = _record_for(records, m, "B:N"), _record_for(records, m, "N:N")
        if bn is None or nn is None or bn["status"] != "ok" or nn["status"] != "ok":
            continue
        a, b = bn["eval"]["headline"]["SAD"], nn["eval"]["headline"]["SAD"]
        if a is None or b is None:
            continue
        table.rows.append((m, [a, b, a - b, 100.0 * (a - b) / b if b else None]))
    return table if table.rows else None


def gaps(records) -> dict[str, float]:
    t = gap_table(records)
    return {label: values[2] for label, values in t.rows} if t else {}


def timing_table(records) -> Table:
    table = Table("Timings per cell", [("", ["status", "cached", "train steps", "train s", "s/step", "eval s", "ms/image", "images"])], row_header="cell",
                  notes=["train s and s/step belong to the training run of a method and view, shared by its cells; cached cells show the times of the run that made them."])
    for r in records:
        tr = r.get("train") or {}
        ev = r.get("eval") or {}
        tm = r.get("timings") or {}
        table.rows.append((f"{r['method']} {' = '.join(r['protocols'])}", [
            r["status"], "yes" if r.get("cached") else "no", _num(tr.get("steps"), "d"), _num(tr.get("seconds"), ".1f"),
            _num(tr.get("step_seconds"), ".3f"), _num(tm.get("eval_s"), ".1f"), _num(ev.get("ms_per_image"), ".1f"), _num(ev.get("images"), "d"),
        ]))
    return table


def _num(v, spec) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return MISSING
    return format(v, spec)


def problems(records) -> list[str]:
    """One line per cell that did not run: failed, skipped or unavailable, with the reason."""
    out = []
    for r in records:
        if r["status"] != "ok":
            out.append(f"{r['method']} {' = '.join(r['protocols'])}: {r['status']}: {r['reason']}")
    return out


def _methods(records, keep) -> list[str]:
    seen = []
    for r in records:
        if keep(r) and r["method"] not in seen:
            seen.append(r["method"])
    return seen


def all_tables(records, specs, protocols, source=None) -> list[Table]:
    protocols = [p for p in PROTOCOLS if p in protocols]
    built = [table1(records, specs, protocols, source), table2(records, specs, protocols, source),
             table3(records, specs, protocols, source), table4(records, specs, source), gap_table(records)]
    return [t for t in built if t is not None]


# ---------------------------------------------------------------- rendering


def _cells(table: Table) -> list[list[str]]:
    cols = table.columns
    return [[label] + [fmt(m, v) for (_, m), v in zip(cols, values)] for label, values in table.rows]


def render_text(table: Table) -> str:
    """A fixed-width table for the terminal, with the column groups above the metric names."""
    cols = table.columns
    body = _cells(table)
    head_sub = [table.row_header] + [m for _, m in cols]
    widths = [max(len(head_sub[i]), *(len(r[i]) for r in body)) if body else len(head_sub[i]) for i in range(len(head_sub))]
    # Widen a group's columns so the group label fits over them.
    start = 1
    for label, metrics in table.groups:
        span = sum(widths[start : start + len(metrics)]) + 2 * (len(metrics) - 1)
        if len(label) > span:
            widths[start + len(metrics) - 1] += len(label) - span
        start += len(metrics)
    line_groups = [" " * widths[0]]
    start = 1
    for label, metrics in table.groups:
        span = sum(widths[start : start + len(metrics)]) + 2 * (len(metrics) - 1)
        line_groups.append(label.center(span))
        start += len(metrics)
    out = [table.title]
    if any(label for label, _ in table.groups):
        out.append("  ".join(line_groups).rstrip())
    out.append("  ".join([head_sub[0].ljust(widths[0])] + [h.rjust(w) for h, w in zip(head_sub[1:], widths[1:])]))
    out.append("  ".join("-" * w for w in widths))
    for row in body:
        out.append("  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]))
    out += [f"  {n}" for n in table.notes]
    return "\n".join(out)


def render_markdown(table: Table) -> str:
    cols = table.columns
    header = [table.row_header] + [f"{g} {m}".strip() for g, m in cols]
    lines = [f"**{table.title}**", "", "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(cols)) + "|"]
    for row in _cells(table):
        lines.append("| " + " | ".join(row) + " |")
    if table.notes:
        lines += [""] + [f"*{n}*" for n in table.notes]
    return "\n".join(lines)
