"""What a run's report becomes for a reader: several runs' reports pooled into one
(``bench/compare.py --combine``), and the table with each scenario's figures, ratio, bar and
verdict, per cluster, with the ratios side by side when there are two.

Reads the report only: nothing here runs a client.
"""

from __future__ import annotations

import statistics
from typing import Any, Callable

from .settings import COMMON, PAYLOAD_SIZE, SCENARIOS
from .stats import pool_rates


def _pool_async(ok: list[dict[str, Any]]) -> dict[str, Any]:
    a: dict[str, Any] = {"messages": ok[0]["messages"], "bar": 2.0}
    for client in ("waterdrop", "confluent"):
        a[client] = pool_rates([t[client] for t in ok])
    a["ratio"] = a["waterdrop"]["msgs_per_s"] / a["confluent"]["msgs_per_s"]
    if a["waterdrop"].get("cpu_us_per_msg") and a["confluent"].get("cpu_us_per_msg"):
        a["cpu_ratio"] = a["confluent"]["cpu_us_per_msg"] / a["waterdrop"]["cpu_us_per_msg"]
    a["pass"] = a["ratio"] >= 2.0
    a["ratio_per_run"] = [t["ratio"] for t in ok]
    return a


def _pool_many(ok: list[dict[str, Any]]) -> dict[str, Any]:
    m: dict[str, Any] = {"messages": ok[0]["messages"], "batch": ok[0]["batch"], "bar": 0.75}
    for client in ("waterdrop", "confluent_produce_batch", "c"):
        parts = [t[client] for t in ok if t.get(client)]
        m[client] = pool_rates(parts) if parts else None
    if m["c"]:
        m["ratio"] = m["waterdrop"]["msgs_per_s"] / m["c"]["msgs_per_s"]
        if m["waterdrop"].get("cpu_us_per_msg") and m["c"].get("cpu_us_per_msg"):
            m["cpu_ratio"] = m["c"]["cpu_us_per_msg"] / m["waterdrop"]["cpu_us_per_msg"]
        m["pass"] = m["ratio"] >= 0.75
        m["ratio_per_run"] = [t["ratio"] for t in ok]
    else:
        m["ratio"] = m["pass"] = None
        m["note"] = ok[0].get("note")
    m["ratio_vs_confluent_batch"] = (m["waterdrop"]["msgs_per_s"]
                                     / m["confluent_produce_batch"]["msgs_per_s"])
    return m


def _pool_sync(ok: list[dict[str, Any]]) -> dict[str, Any]:
    y: dict[str, Any] = {"messages": ok[0]["messages"], "bar": 1.0}
    for client in ("waterdrop", "confluent"):
        p50 = [x for t in ok for x in t[client]["rounds_p50_ms"]]
        p99 = [x for t in ok for x in t[client]["rounds_p99_ms"]]
        y[client] = {"p50_ms": statistics.median(p50), "p99_ms": statistics.median(p99),
                     "rounds_p50_ms": p50, "rounds_p99_ms": p99}
    y["ratio_p50"] = y["waterdrop"]["p50_ms"] / y["confluent"]["p50_ms"]
    y["ratio_p99"] = y["waterdrop"]["p99_ms"] / y["confluent"]["p99_ms"]
    y["pass"] = y["ratio_p50"] <= 1.0 and y["ratio_p99"] <= 1.0
    return y


def _pool_memory(ok: list[dict[str, Any]]) -> dict[str, Any]:
    mem: dict[str, Any] = {"messages": ok[0]["messages"], "bar": 1.0}
    for client in ("waterdrop", "confluent"):
        mem[client] = {k: statistics.median([t[client][k] for t in ok])
                       for k in ("baseline_mib", "inflight_mib", "peak_mib")}
        mem[client]["rounds_peak_mib"] = [x for t in ok for x in t[client]["rounds_peak_mib"]]
    mem["ratio"] = mem["waterdrop"]["peak_mib"] / mem["confluent"]["peak_mib"]
    mem["ratio_above_baseline"] = (
        (mem["waterdrop"]["peak_mib"] - mem["waterdrop"]["baseline_mib"])
        / (mem["confluent"]["peak_mib"] - mem["confluent"]["baseline_mib"]))
    mem["pass"] = mem["ratio"] <= 1.0
    return mem


def _pool_flat(ok: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median waterdrop change stands for all; every run's change listed."""
    flat = dict(sorted(ok, key=lambda t: t["waterdrop"]["change_pct"])[len(ok) // 2])
    flat["change_pct_per_run"] = {c: [t[c]["change_pct"] for t in ok]
                                  for c in ("waterdrop", "confluent")}
    flat["change_pct_from_1st_per_run"] = {c: [t[c].get("change_pct_from_1st") for t in ok]
                                           for c in ("waterdrop", "confluent")}
    return flat


#: How each scenario's results of several runs become one (the runs without an error).
_POOL: dict[str, Callable[[list[dict[str, Any]]], dict[str, Any]]] = {
    "async": _pool_async, "many": _pool_many, "sync": _pool_sync, "memory": _pool_memory,
    "flat": _pool_flat,
}


def combine_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' reports as one: rounds pooled, medians over all of them (the flatness
    run with the median change stands for all, every run's change listed)."""
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    out: dict[str, Any] = {"meta": dict(first["meta"]), "options": dict(first["options"]),
                           "targets": {}, "runs": len(reports)}
    out["options"]["rounds"] = sum(r["options"]["rounds"] for r in reports)
    for name in first["targets"]:
        runs = [r["targets"][name] for r in reports if name in r["targets"]]
        target: dict[str, Any] = {"label": runs[0]["label"] + f", {len(runs)} runs pooled",
                                  "bootstrap": runs[0]["bootstrap"]}
        for scenario in SCENARIOS:
            ok = [t[scenario] for t in runs if scenario in t and "error" not in t[scenario]]
            if ok:
                target[scenario] = _POOL[scenario](ok)
        out["targets"][name] = target
    return out


def _fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f} msg/s"


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _fmt_cpu(x: dict[str, Any]) -> str:
    value = x.get("cpu_us_per_msg")
    return "-" if value is None else f"{value:.2f} us/msg"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


Row = tuple[str, str, str, str, str, str]


def _async_rows(r: dict[str, Any]) -> list[Row]:
    rows = [("produce_async, all waited", _fmt_rate(r["waterdrop"]["msgs_per_s"]),
             "confluent " + _fmt_rate(r["confluent"]["msgs_per_s"]),
             _fmt_ratio(r["ratio"]), ">= 2.0x", _verdict(r["pass"]))]
    if r.get("cpu_ratio"):
        rows.append(("  CPU per message (speed-up)", _fmt_cpu(r["waterdrop"]),
                     "confluent " + _fmt_cpu(r["confluent"]), _fmt_ratio(r["cpu_ratio"]), "", ""))
    return rows


def _many_rows(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    wd = _fmt_rate(r["waterdrop"]["msgs_per_s"])
    if r["c"]:
        rows.append(("produce_many_async x10k", wd, "C " + _fmt_rate(r["c"]["msgs_per_s"]),
                     _fmt_ratio(r["ratio"]), ">= 0.75x", _verdict(r["pass"])))
        if r.get("cpu_ratio"):
            rows.append(("  CPU per message (C/wd)", _fmt_cpu(r["waterdrop"]),
                         "C " + _fmt_cpu(r["c"]), _fmt_ratio(r["cpu_ratio"]), "", ""))
    else:
        rows.append(("produce_many_async x10k", wd, "C: not built (skipped)", "-",
                     ">= 0.75x", "n/a"))
    rows.append(("  (ref) vs confluent batch", wd, "confluent produce_batch "
                 + _fmt_rate(r["confluent_produce_batch"]["msgs_per_s"]),
                 _fmt_ratio(r["ratio_vs_confluent_batch"]), "", ""))
    return rows


def _sync_rows(r: dict[str, Any]) -> list[Row]:
    return [(f"produce_sync {p}, linger 0", f"{r['waterdrop'][f'{p}_ms']:.3f} ms",
             f"confluent {r['confluent'][f'{p}_ms']:.3f} ms", _fmt_ratio(r[f"ratio_{p}"]),
             "<= 1.0x", _verdict(r[f"ratio_{p}"] <= 1.0))
            for p in ("p50", "p99")]


def _memory_rows(r: dict[str, Any]) -> list[Row]:
    wd, ck = r["waterdrop"], r["confluent"]
    return [
        (f"peak RSS, {r['messages'] / 1e6:g}M in flight", f"{wd['peak_mib']:.1f} MiB",
         f"confluent {ck['peak_mib']:.1f} MiB", _fmt_ratio(r["ratio"]), "<= 1.0x",
         _verdict(r["pass"])),
        ("  above process baseline", f"{wd['peak_mib'] - wd['baseline_mib']:.1f} MiB",
         f"confluent {ck['peak_mib'] - ck['baseline_mib']:.1f} MiB",
         _fmt_ratio(r["ratio_above_baseline"]), "", ""),
    ]


def _flat_rows(r: dict[str, Any]) -> list[Row]:
    def flat(x: dict[str, Any]) -> str:
        return f"{x['start_mib']:.1f}->{x['end_mib']:.1f} MiB {x['change_pct']:+.2f}%"

    def from_1st(x: dict[str, Any]) -> str:
        if "first_mib" not in x:
            return "-"
        return f"{x['first_mib']:.1f}->{x['end_mib']:.1f} MiB {x['change_pct_from_1st']:+.2f}%"

    def arenas(x: dict[str, Any]) -> str:
        a, o = x.get("thread_arenas_mib") or [None], x.get("other_rss_mib") or [None]
        if None in a or None in o:
            return "-"
        return f"{a[-1] - a[0]:+.2f} | {o[-1] - o[0]:+.2f} MiB"

    def heap(x: dict[str, Any]) -> str:
        h = x.get("malloc_in_use_mib") or []
        return f"{h[0]:.2f}->{h[-1]:.2f} MiB" if h and None not in h else "-"

    unit, units = r["unit"], r["units"]
    start = 2 if units > 2 else 1
    name = f"RSS {start * unit / 1e6:g}M..{units * unit / 1e6:g}M msgs"
    wd, ck = r["waterdrop"], r["confluent"]
    return [
        (name, flat(wd), "confluent " + flat(ck), "", "|chg| <= 2 %", _verdict(r["pass"])),
        (f"  from {unit / 1e6:g}M (before settling)", from_1st(wd), "confluent " + from_1st(ck),
         "", "", ""),
        (f"  thread arenas | rest, {unit / 1e6:g}M..", arenas(wd), "confluent " + arenas(ck),
         "", "", ""),
        ("  C heap in use (mallinfo2)", heap(wd), "confluent " + heap(ck), "", "", ""),
    ]


#: Each scenario's rows, and what its row says (name, bar) when the scenario failed.
_ROWS: dict[str, tuple[Callable[[dict[str, Any]], list[Row]], str, str]] = {
    "async": (_async_rows, "produce_async", ">= 2.0x"),
    "many": (_many_rows, "produce_many_async", ">= 0.75x"),
    "sync": (_sync_rows, "produce_sync", "<= 1.0x"),
    "memory": (_memory_rows, "peak RSS, 1M in flight", "<= 1.0x"),
    "flat": (_flat_rows, "RSS flat", "<= 2 %"),
}


def table_rows(results: dict[str, Any]) -> list[Row]:
    """(scenario, waterdrop, baseline, ratio, bar, verdict) rows for one target."""
    rows: list[Row] = []
    for scenario in SCENARIOS:
        r = results.get(scenario)
        if not r:
            continue
        rows_of, name, bar = _ROWS[scenario]
        if "error" in r:
            rows.append((name, "error", r["error"][:40], "", bar, "FAIL"))
        else:
            rows.extend(rows_of(r))
    return rows


def format_report(report: dict[str, Any]) -> str:
    """The report as text: a header (what ran, with which settings), one table per cluster,
    and the ratios side by side when there are two clusters."""
    meta = report["meta"]
    opts = report["options"]
    lines = [
        "waterdrop vs confluent-kafka vs librdkafka C, "
        f"{meta.get('payload_bytes', PAYLOAD_SIZE)} B payloads, medians of "
        f"{opts['rounds']} alternating rounds x {opts['messages']:,} messages",
        f"waterdrop {meta.get('waterdrop')} (librdkafka {meta.get('waterdrop_librdkafka')}), "
        f"confluent-kafka {meta.get('confluent_kafka')} (librdkafka "
        f"{meta.get('confluent_kafka_librdkafka')}), Python {meta['python']}, "
        f"{meta['cpus']} CPUs" + (f", _core built {meta['waterdrop_core_built']} UTC"
                                  if meta.get("waterdrop_core_built") else ""),
        "settings (both): " + ", ".join(f"{k}={v}" for k, v in COMMON.items()),
    ]
    headers = ("scenario", "waterdrop", "baseline", "ratio", "bar", "")
    for name, results in report["targets"].items():
        rows = table_rows(results)
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(headers)]
        lines.append("")
        lines.append(f"== {results['label']}")
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for row in rows:
            lines.append("  ".join(
                cell.rjust(w) if i in (1, 3) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        notes = [results[s]["note"] for s in SCENARIOS
                 if isinstance(results.get(s), dict) and results[s].get("note")]
        lines.extend(f"note: {note}" for note in notes)
    if len(report["targets"]) > 1:
        lines.append("")
        lines.append("ratios side by side (" + " | ".join(report["targets"]) + ")")
        per_target = {t: {row[0]: row[3] for row in table_rows(r)}
                      for t, r in report["targets"].items()}
        first = next(iter(report["targets"].values()))
        for row in table_rows(first):
            if not row[3]:
                continue
            lines.append((f"  {row[0]:<30} " + " | ".join(
                per_target[t].get(row[0], "-").rjust(7) for t in report["targets"])
                + (f"   bar {row[4]}" if row[4] else "")).rstrip())
    return "\n".join(lines)

