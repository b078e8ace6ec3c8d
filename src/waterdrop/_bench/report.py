"""What a run's report becomes for a reader: several runs' reports pooled into one
(``bench/compare.py --combine``), and the table with each scenario's figures, ratio, bar and
verdict, per cluster, with the ratios side by side when there are two.

Reads the report only: nothing here runs a client.
"""

from __future__ import annotations

import statistics
from typing import Any

from .settings import COMMON, PAYLOAD_SIZE, SCENARIOS
from .stats import pool_rates


def combine_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' reports as one: rounds pooled, medians over all of them (the flatness
    run with the median change stands for all, every run's change listed)."""
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    out: dict[str, Any] = {"meta": dict(first["meta"]), "options": dict(first["options"]),
                           "targets": {}, "runs": len(reports)}
    out["options"]["rounds"] = sum(r["options"]["rounds"] for r in reports)
    med = statistics.median
    for name in first["targets"]:
        runs = [r["targets"][name] for r in reports if name in r["targets"]]
        target: dict[str, Any] = {"label": runs[0]["label"] + f", {len(runs)} runs pooled",
                                  "bootstrap": runs[0]["bootstrap"]}
        ok = [t["async"] for t in runs if "async" in t and "error" not in t["async"]]
        if ok:
            a: dict[str, Any] = {"messages": ok[0]["messages"], "bar": 2.0}
            for client in ("waterdrop", "confluent"):
                a[client] = pool_rates([t[client] for t in ok])
            a["ratio"] = a["waterdrop"]["msgs_per_s"] / a["confluent"]["msgs_per_s"]
            if a["waterdrop"].get("cpu_us_per_msg") and a["confluent"].get("cpu_us_per_msg"):
                a["cpu_ratio"] = (a["confluent"]["cpu_us_per_msg"]
                                  / a["waterdrop"]["cpu_us_per_msg"])
            a["pass"] = a["ratio"] >= 2.0
            a["ratio_per_run"] = [t["ratio"] for t in ok]
            target["async"] = a
        ok = [t["many"] for t in runs if "many" in t and "error" not in t["many"]]
        if ok:
            m: dict[str, Any] = {"messages": ok[0]["messages"], "batch": ok[0]["batch"],
                                 "bar": 0.75}
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
            target["many"] = m
        ok = [t["sync"] for t in runs if "sync" in t and "error" not in t["sync"]]
        if ok:
            y: dict[str, Any] = {"messages": ok[0]["messages"], "bar": 1.0}
            for client in ("waterdrop", "confluent"):
                y[client] = {
                    "p50_ms": med([x for t in ok for x in t[client]["rounds_p50_ms"]]),
                    "p99_ms": med([x for t in ok for x in t[client]["rounds_p99_ms"]]),
                    "rounds_p50_ms": [x for t in ok for x in t[client]["rounds_p50_ms"]],
                    "rounds_p99_ms": [x for t in ok for x in t[client]["rounds_p99_ms"]]}
            y["ratio_p50"] = y["waterdrop"]["p50_ms"] / y["confluent"]["p50_ms"]
            y["ratio_p99"] = y["waterdrop"]["p99_ms"] / y["confluent"]["p99_ms"]
            y["pass"] = y["ratio_p50"] <= 1.0 and y["ratio_p99"] <= 1.0
            target["sync"] = y
        ok = [t["memory"] for t in runs if "memory" in t and "error" not in t["memory"]]
        if ok:
            mem: dict[str, Any] = {"messages": ok[0]["messages"], "bar": 1.0}
            for client in ("waterdrop", "confluent"):
                mem[client] = {k: med([t[client][k] for t in ok])
                               for k in ("baseline_mib", "inflight_mib", "peak_mib")}
                mem[client]["rounds_peak_mib"] = [x for t in ok
                                                  for x in t[client]["rounds_peak_mib"]]
            mem["ratio"] = mem["waterdrop"]["peak_mib"] / mem["confluent"]["peak_mib"]
            mem["ratio_above_baseline"] = (
                (mem["waterdrop"]["peak_mib"] - mem["waterdrop"]["baseline_mib"])
                / (mem["confluent"]["peak_mib"] - mem["confluent"]["baseline_mib"]))
            mem["pass"] = mem["ratio"] <= 1.0
            target["memory"] = mem
        ok = [t["flat"] for t in runs if "flat" in t and "error" not in t["flat"]]
        if ok:
            flat = dict(sorted(ok, key=lambda t: t["waterdrop"]["change_pct"])[len(ok) // 2])
            flat["change_pct_per_run"] = {c: [t[c]["change_pct"] for t in ok]
                                          for c in ("waterdrop", "confluent")}
            flat["change_pct_from_1st_per_run"] = {
                c: [t[c].get("change_pct_from_1st") for t in ok]
                for c in ("waterdrop", "confluent")}
            target["flat"] = flat
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


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(scenario, waterdrop, baseline, ratio, bar, verdict) rows for one target."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    r = results.get("async")
    if r:
        if "error" in r:
            rows.append(("produce_async", "error", r["error"][:40], "", ">= 2.0x", "FAIL"))
        else:
            rows.append(("produce_async, all waited", _fmt_rate(r["waterdrop"]["msgs_per_s"]),
                         "confluent " + _fmt_rate(r["confluent"]["msgs_per_s"]),
                         _fmt_ratio(r["ratio"]), ">= 2.0x", _verdict(r["pass"])))
            if r.get("cpu_ratio"):
                rows.append(("  CPU per message (speed-up)", _fmt_cpu(r["waterdrop"]),
                             "confluent " + _fmt_cpu(r["confluent"]),
                             _fmt_ratio(r["cpu_ratio"]), "", ""))
    r = results.get("many")
    if r:
        if "error" in r:
            rows.append(("produce_many_async", "error", r["error"][:40], "", ">= 0.75x", "FAIL"))
        else:
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
    r = results.get("sync")
    if r:
        if "error" in r:
            rows.append(("produce_sync", "error", r["error"][:40], "", "<= 1.0x", "FAIL"))
        else:
            rows.append(("produce_sync p50, linger 0", f"{r['waterdrop']['p50_ms']:.3f} ms",
                         f"confluent {r['confluent']['p50_ms']:.3f} ms",
                         _fmt_ratio(r["ratio_p50"]), "<= 1.0x",
                         _verdict(r["ratio_p50"] <= 1.0)))
            rows.append(("produce_sync p99, linger 0", f"{r['waterdrop']['p99_ms']:.3f} ms",
                         f"confluent {r['confluent']['p99_ms']:.3f} ms",
                         _fmt_ratio(r["ratio_p99"]), "<= 1.0x",
                         _verdict(r["ratio_p99"] <= 1.0)))
    r = results.get("memory")
    if r:
        if "error" in r:
            rows.append(("peak RSS, 1M in flight", "error", r["error"][:40], "", "<= 1.0x", "FAIL"))
        else:
            n = r["messages"]
            rows.append((f"peak RSS, {n / 1e6:g}M in flight", f"{r['waterdrop']['peak_mib']:.1f} MiB",
                         f"confluent {r['confluent']['peak_mib']:.1f} MiB",
                         _fmt_ratio(r["ratio"]), "<= 1.0x", _verdict(r["pass"])))
            rows.append(("  above process baseline",
                         f"{r['waterdrop']['peak_mib'] - r['waterdrop']['baseline_mib']:.1f} MiB",
                         "confluent "
                         f"{r['confluent']['peak_mib'] - r['confluent']['baseline_mib']:.1f} MiB",
                         _fmt_ratio(r["ratio_above_baseline"]), "", ""))
    r = results.get("flat")
    if r:
        if "error" in r:
            rows.append(("RSS flat", "error", r["error"][:40], "", "<= 2 %", "FAIL"))
        else:
            def flat(x: dict[str, Any]) -> str:
                return f"{x['start_mib']:.1f}->{x['end_mib']:.1f} MiB {x['change_pct']:+.2f}%"

            def from_1st(x: dict[str, Any]) -> str:
                if "first_mib" not in x:
                    return "-"
                return (f"{x['first_mib']:.1f}->{x['end_mib']:.1f} MiB "
                        f"{x['change_pct_from_1st']:+.2f}%")

            def arenas(x: dict[str, Any]) -> str:
                a, o = x.get("thread_arenas_mib") or [None], x.get("other_rss_mib") or [None]
                if None in a or None in o:
                    return "-"
                return f"{a[-1] - a[0]:+.2f} | {o[-1] - o[0]:+.2f} MiB"

            unit, units = r["unit"], r["units"]
            start = 2 if units > 2 else 1
            name = f"RSS {start * unit / 1e6:g}M..{units * unit / 1e6:g}M msgs"
            rows.append((name, flat(r["waterdrop"]), "confluent " + flat(r["confluent"]), "",
                         "|chg| <= 2 %", _verdict(r["pass"])))
            rows.append((f"  from {unit / 1e6:g}M (before settling)", from_1st(r["waterdrop"]),
                         "confluent " + from_1st(r["confluent"]), "", "", ""))
            rows.append((f"  thread arenas | rest, {unit / 1e6:g}M..", arenas(r["waterdrop"]),
                         "confluent " + arenas(r["confluent"]), "", "", ""))

            def heap(x: dict[str, Any]) -> str:
                h = x.get("malloc_in_use_mib") or []
                return f"{h[0]:.2f}->{h[-1]:.2f} MiB" if h and None not in h else "-"

            rows.append(("  C heap in use (mallinfo2)", heap(r["waterdrop"]),
                         "confluent " + heap(r["confluent"]), "", "", ""))
    return rows


def format_report(report: dict[str, Any]) -> str:
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

