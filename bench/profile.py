#!/usr/bin/env python3
"""Where the time per message goes: callgrind instruction counts and perf profiles of the
per-message produce path, waterdrop vs confluent-kafka vs librdkafka's C loop.

    python bench/profile.py callgrind                 # enqueue path only (brokers idle)
    python bench/profile.py callgrind --deliver       # full path: enqueue, delivery, wait
    python bench/profile.py perf                      # perf record -g, full path, flat top
    python bench/profile.py callgrind --cases wd-async,ck-produce --n1 20000 --n2 100000

The cluster is a MockCluster in its own process (bench/mockcluster_host.py), so neither the
profiler nor the counts see the brokers. Each case is the ``path`` role of the harness
(src/waterdrop/_bench/children.py; the C case is bench/c/produce_bench): N produces of one kind
with linger.ms 120,000 (nothing is sent; the process leaves with _exit right after the loop), or
with ``--deliver`` linger.ms 5 and every message delivered and waited for.

callgrind: every case runs twice, with N1 and N2 messages; instructions per message are
(total(N2) - total(N1)) / (N2 - N1), so start-up, imports, connecting and the warm-up cancel
out. The same difference per function (self cost, from callgrind_annotate) gives the top
functions per message, and per component (CPython, waterdrop's Cython, librdkafka, confluent's
C, libc). Counts cover every thread of the client process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))

from waterdrop._bench.processes import HostedMockCluster, child_command  # noqa: E402
from waterdrop._bench.settings import PAYLOAD_SIZE, QUEUED, TOPIC, log  # noqa: E402

C_PROGRAM = os.path.join(HERE, "c", "produce_bench")
CASES = {
    # name: (client, api, description)
    "wd-async": ("waterdrop", "produce_async", "waterdrop produce_async (handle kept)"),
    "ck-produce": ("confluent", "produce", "confluent produce()+on_delivery+poll(0)"),
    "wd-many": ("waterdrop", "produce_many_async", "waterdrop produce_many_async x10k"),
    "ck-batch": ("confluent", "produce_batch", "confluent produce_batch x10k"),
    "c": ("c", "rd_kafka_produce", "C rd_kafka_produce F_COPY (librdkafka floor)"),
    # Not in the default set: one message at a time, linger.ms 0, always delivered.
    "wd-sync": ("waterdrop", "produce_sync", "waterdrop produce_sync, linger.ms 0"),
    "ck-sync": ("confluent", "produce_flush", "confluent produce()+flush(), linger.ms 0"),
}
DEFAULT_CASES = ("wd-async", "ck-produce", "wd-many", "ck-batch", "c")


def case_command(case: str, bootstrap: str, n: int, deliver: bool) -> tuple[list[str], dict]:
    client, api, _ = CASES[case]
    env = dict(os.environ)
    if client == "c":
        if deliver:
            env["PRODUCE_BENCH_X"] = "linger.ms=5"
        else:
            env["PRODUCE_BENCH_X"] = ",".join(f"{k}={v}" for k, v in QUEUED.items())
            env["PRODUCE_BENCH_EXIT_AFTER_LOOP"] = "1"
        return [C_PROGRAM, bootstrap, TOPIC, str(n), str(PAYLOAD_SIZE), "1"], env
    args = ["--client", client, "--api", api, "--bootstrap", bootstrap, "--topic", TOPIC,
            "--messages", str(n)]
    if deliver:
        args.append("--deliver")
    return child_command("path", args), env


_LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?)\s*$")


def annotate(path: str, inclusive: bool = False) -> tuple[int, dict[str, int]]:
    out = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
                          "--threshold=100", "--auto=no", path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    total = 0
    functions: dict[str, int] = {}
    for line in out.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        count = int(m.group(1).replace(",", ""))
        name = m.group(2)
        if name.startswith("PROGRAM TOTALS"):
            total = count
        else:
            functions[name] = functions.get(name, 0) + count
    return total, functions


def component(name: str) -> str:
    """Which part of the stack a callgrind_annotate function line belongs to."""
    obj = name.rsplit("[", 1)[-1].rstrip("]") if name.endswith("]") else ""
    fn = name.split(" [", 1)[0]
    file = fn.rsplit(":", 1)[0]
    base = os.path.basename(file)
    func = fn.rsplit(":", 1)[-1]
    if func.startswith(("__pyx", "__Pyx")):
        return "waterdrop Cython (_core)"
    if "cimpl" in obj or "/confluent_kafka/src/" in file or base in (
            "confluent_kafka.c", "Producer.c", "Metadata.c", "Admin.c", "AdminTypes.c"):
        return "confluent-kafka C (cimpl)"
    if (base.startswith(("rd", "tinycthread", "crc32c", "snappy", "lz4", "regexp", "cJSON"))
            and base.endswith((".c", ".h"))) or "librdkafka" in os.path.basename(obj) \
            or func.startswith("rd_"):
        return "librdkafka"  # whose: the case says (waterdrop and the C program: 2.14.2)
    if "_core" in obj or base == "_core.c":
        return "waterdrop Cython (_core)"
    if "produce_bench" in obj:
        return "C program"
    if "python" in os.path.basename(obj).lower() or file.startswith(
            ("Objects/", "Python/", "Modules/", "Include/", "Parser/", "./Objects", "./Python",
             "./Modules", "./Include")) or "/Objects/" in file or "/Python/" in file \
            or "/Modules/" in file or "/Include/" in file:
        return "CPython"
    if "libc.so" in obj or "ld-linux" in obj or file.startswith(
            ("./malloc", "./nptl", "./string", "./elf", "./stdlib", "./misc", "./posix",
             "./sysdeps", "./libio", "./time", "./io")):
        return "libc / ld.so"
    if "libcrypto" in obj or "libssl" in obj:
        return "OpenSSL"
    if "vgpreload" in obj or "valgrind" in obj:
        return "valgrind"
    return "other"


def short(name: str) -> str:
    fn = name.split(" [", 1)[0]
    func = fn.rpartition(":")[2].split("'", 1)[0]  # f'2 (recursion level) -> f
    return f"{func}  [{component(name)}]"


def run_callgrind(args: argparse.Namespace, bootstrap: str, outdir: str) -> dict:
    results = {}
    for case in args.cases:
        if case == "c" and not os.access(C_PROGRAM, os.X_OK):
            log("callgrind: C program not built (bench/c/build.sh): skipped")
            continue
        totals: dict[int, int] = {}
        funcs: dict[int, dict[str, int]] = {}
        incl: dict[int, dict[str, int]] = {}
        for n in (args.n1, args.n2):
            out = os.path.join(outdir, f"callgrind.{case}.{'deliver' if args.deliver else 'enqueue'}.{n}")
            command, env = case_command(case, bootstrap, n, args.deliver)
            if args.reuse and os.path.exists(out):
                log(f"callgrind: {case} N={n}: reusing {out}")
                totals[n], funcs[n] = annotate(out)
                if args.inclusive:
                    incl[n] = annotate(out, inclusive=True)[1]
                continue
            log(f"callgrind: {case} N={n} ...")
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            *command], env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=7200)
            totals[n], funcs[n] = annotate(out)
            if args.inclusive:
                incl[n] = annotate(out, inclusive=True)[1]
        dn = args.n2 - args.n1
        per_msg = (totals[args.n2] - totals[args.n1]) / dn
        diff = {name: (funcs[args.n2].get(name, 0) - funcs[args.n1].get(name, 0)) / dn
                for name in set(funcs[args.n2]) | set(funcs[args.n1])}
        by_component: dict[str, float] = defaultdict(float)
        by_function: dict[str, float] = defaultdict(float)
        for name, value in diff.items():
            by_component[component(name)] += value
            by_function[short(name)] += value  # inlined header code merged into its function
        top = sorted(by_function.items(), key=lambda kv: -kv[1])[: args.top]
        results[case] = {
            "description": CASES[case][2], "instructions_per_message": per_msg,
            "by_component": dict(sorted(by_component.items(), key=lambda kv: -kv[1])),
            "top": [(name, value) for name, value in top],
        }
        if args.inclusive:
            inclusive: dict[str, float] = defaultdict(float)
            for name in set(incl[args.n2]) | set(incl[args.n1]):
                if component(name) in ("waterdrop Cython (_core)", "confluent-kafka C (cimpl)",
                                       "C program") or name.split(" [")[0].endswith(
                                           ("rd_kafka_produce", "rd_kafka_produce_batch",
                                            "rd_kafka_producev", "rd_kafka_poll")):
                    inclusive[short(name)] = max(inclusive[short(name)], (
                        incl[args.n2].get(name, 0) - incl[args.n1].get(name, 0)) / dn)
            results[case]["inclusive"] = sorted(inclusive.items(), key=lambda kv: -kv[1])[
                : args.top]
        log(f"callgrind: {case}: {per_msg:,.0f} instructions/message")
    return results


def print_callgrind(results: dict, deliver: bool) -> None:
    what = "full path (enqueue + delivery + wait)" if deliver else "enqueue path (brokers idle)"
    print(f"callgrind, instructions per message, {what}:")
    for case, r in results.items():
        print(f"  {r['description']:<48} {r['instructions_per_message']:>10,.0f}")
    for case, r in results.items():
        print(f"\n{r['description']}: {r['instructions_per_message']:,.0f} instr/msg")
        print("  by component:")
        for name, value in r["by_component"].items():
            if abs(value) >= 1:
                print(f"    {value:>9,.0f}  {name}")
        print("  top functions (self):")
        for name, value in r["top"]:
            print(f"    {value:>9,.1f}  {name}")
        if r.get("inclusive"):
            print("  binding functions (inclusive):")
            for name, value in r["inclusive"]:
                print(f"    {value:>9,.1f}  {name}")


def run_perf(args: argparse.Namespace, bootstrap: str, outdir: str) -> None:
    for case in args.cases:
        if case == "c" and not os.access(C_PROGRAM, os.X_OK):
            continue
        data = os.path.join(outdir, f"perf.{case}.data")
        command, env = case_command(case, bootstrap, args.perf_messages, True)
        log(f"perf: {case} N={args.perf_messages} ...")
        subprocess.run(["perf", "record", "-F", str(args.frequency), "-g", "-o", data,
                        "--", *command], env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        report = subprocess.run(
            ["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
             "--percent-limit", str(args.percent_limit), "-g", "none"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        dso = subprocess.run(
            ["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso",
             "-g", "none"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        print(f"\n== perf, {CASES[case][2]}, {args.perf_messages:,} messages delivered")
        print("  by object:")
        for line in dso.splitlines():
            if line.strip() and not line.startswith("#"):
                print("   " + line.rstrip())
        print("  top symbols (self):")
        for line in report.splitlines():
            if line.strip() and not line.startswith("#"):
                print("   " + line.rstrip()[:150])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", choices=("callgrind", "perf"))
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES),
                        help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--n1", type=int, default=20_000)
    parser.add_argument("--n2", type=int, default=120_000)
    parser.add_argument("--deliver", action="store_true",
                        help="callgrind: full path (linger.ms 5, every message delivered)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--no-inclusive", dest="inclusive", action="store_false",
                        help="skip the inclusive costs of the binding's own functions")
    parser.add_argument("--perf-messages", type=int, default=1_000_000)
    parser.add_argument("--frequency", type=int, default=2000)
    parser.add_argument("--percent-limit", type=float, default=1.0)
    parser.add_argument("--outdir", help="keep the raw profiles here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true",
                        help="analyse the profiles already in --outdir instead of rerunning")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for case in args.cases:
        if case not in CASES:
            parser.error(f"unknown case {case!r}")
    outdir = args.outdir or tempfile.mkdtemp(prefix="waterdrop-profile-")
    os.makedirs(outdir, exist_ok=True)
    with HostedMockCluster([TOPIC], script=os.path.join(HERE, "mockcluster_host.py")) as mc:
        if args.tool == "callgrind":
            results = run_callgrind(args, mc.bootstrap_servers, outdir)
            if args.json:
                print(json.dumps(results))
            else:
                print_callgrind(results, args.deliver)
        else:
            run_perf(args, mc.bootstrap_servers, outdir)
    log(f"raw profiles in {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
