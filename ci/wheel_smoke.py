#!/usr/bin/env python3
"""Smoke test of an *installed* waterdrop: what a user gets from `pip install waterdrop`.

Run by ci/wheel-smoke (here) and by cibuildwheel's test-command (every release wheel):

    python ci/wheel_smoke.py [--version X.Y.Z] [--require-readback] [--check-linkage DIR...]

1. imports waterdrop (from anywhere but a checkout's src/), checks ``__version__`` and
   ``librdkafka_version()`` against vendor/librdkafka/VERSION (read from this script's
   checkout, which need not be importable), and that ``librdkafka_features()`` has every
   codec and mechanism shared/API.md promises;
2. produces 100 messages (keys, headers, 3 partitions) to ``waterdrop.testing.MockCluster``
   and checks every delivery report;
3. reads them back with confluent-kafka's own consumer when it is installed
   (``--require-readback``: it must be);
4. ``--check-linkage DIR...`` (Linux): every library ``_core`` needs (ldd) is inside the
   wheel or one the platform policy lets a wheel take from the system (auditwheel's
   whitelist: libc, libm, libpthread, libdl, librt, libgcc_s, libstdc++, libresolv, libz...,
   and the dynamic loader); after all of the above no shared object mapped into
   the process comes from one of DIRs (the build prefix), and no librdkafka from outside the
   venv is mapped (confluent-kafka's own copy lives in the venv).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINNED = (HERE.parent / "vendor" / "librdkafka" / "VERSION").read_text().split()[0]
N = 100
# The manylinux policy's system libraries (auditwheel's lib_whitelist, the same for every
# manylinux_2_x policy); ci/wheel-smoke passes the exact list for the wheel's tag.
POLICY_LIBS = (
    "libGL.so.1", "libICE.so.6", "libSM.so.6", "libX11.so.6", "libXext.so.6", "libXrender.so.1",
    "libanl.so.1", "libatomic.so.1", "libc.so.6", "libdl.so.2", "libexpat.so.1", "libgcc_s.so.1",
    "libglib-2.0.so.0", "libgobject-2.0.so.0", "libgthread-2.0.so.0", "libm.so.6", "libmvec.so.1",
    "libnsl.so.1", "libpthread.so.0", "libresolv.so.2", "librt.so.1", "libstdc++.so.6",
    "libutil.so.1", "libz.so.1",
)
LOADERS = ("ld-linux", "ld64.so", "ld-musl", "libc.musl", "linux-vdso", "linux-gate")


def fail(msg: str) -> None:
    print(f"wheel smoke: FAIL: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def check_import(version: str | None) -> None:
    import waterdrop

    where = Path(waterdrop.__file__).resolve()
    print(f"waterdrop {waterdrop.__version__} from {where.parent}")
    if (where.parent.parent / "waterdrop" / "_core.pyx").exists() and where.parent.parent.name == "src":
        fail(f"imported from a checkout ({where}), not from the installed wheel")
    if version is not None and waterdrop.__version__ != version:
        fail(f"__version__ is {waterdrop.__version__!r}, the wheel says {version!r}")
    got = waterdrop.librdkafka_version()
    print(f"librdkafka {got} (pinned {PINNED})")
    if got != PINNED:
        fail(f"librdkafka_version() is {got!r}, expected the pinned {PINNED!r}")
    # shared/API.md: every install, wheel or source build, has at least these
    features = waterdrop.librdkafka_features()
    print(f"librdkafka features: {' '.join(features)}")
    missing = [f for f in ("gzip", "snappy", "lz4", "zstd", "ssl", "sasl_plain", "sasl_scram",
                           "sasl_oauthbearer") if f not in features]
    if missing:
        fail(f"librdkafka_features() lacks {', '.join(missing)}")


def produce_and_read_back(require_readback: bool) -> None:
    from waterdrop import Producer
    from waterdrop.testing import MockCluster

    topic = f"smoke-{os.getpid()}"
    started = time.monotonic()
    with MockCluster(brokers=3) as cluster:
        cluster.create_topic(topic, partitions=3)
        with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
            handles = [
                producer.produce_async(
                    topic=topic, payload=f"payload-{i}".encode(), key=f"key-{i}",
                    partition=i % 3, headers={"n": str(i)},
                )
                for i in range(N)
            ]
            reports = [h.wait() for h in handles]
        for i, report in enumerate(reports):
            if report.error is not None or report.partition != i % 3 or report.offset != i // 3:
                fail(f"message {i}: {report!r}")
        print(f"produced {N} messages to MockCluster, all acknowledged")
        try:
            from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        except ImportError:
            if require_readback:
                fail("confluent-kafka is not installed; it is needed to read the messages back")
            print("read-back skipped (confluent-kafka not installed)")
            return
        consumer = Consumer({
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": f"smoke-{os.getpid()}",
            "enable.auto.commit": False,
        })
        try:
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
            got = []
            deadline = time.monotonic() + 30
            while len(got) < N and time.monotonic() < deadline:
                for m in consumer.consume(num_messages=N, timeout=0.5):
                    if m.error() is not None:
                        fail(f"consumer error: {m.error()}")
                    got.append((m.partition(), m.offset(), m.key(), m.value(), m.headers()))
        finally:
            consumer.close()
        want = [
            (i % 3, i // 3, f"key-{i}".encode(), f"payload-{i}".encode(), [("n", str(i).encode())])
            for i in range(N)
        ]
        if sorted(got) != sorted(want):
            fail(f"read back {len(got)} messages that differ from what was produced")
        print(f"read {N} messages back with confluent-kafka, identical ({time.monotonic() - started:.1f}s)")


def check_linkage(forbidden: list[str], policy_libs: tuple[str, ...]) -> None:
    """What _core links and what this process mapped: nothing from outside the wheel but the
    C runtime, nothing from a forbidden directory (a build prefix), no foreign librdkafka."""
    import subprocess

    import waterdrop._core as core

    so = Path(core.__file__).resolve()
    site = so.parent.parent
    if not sys.platform.startswith("linux"):
        print(f"linkage check skipped on {sys.platform}")
        return
    res = subprocess.run(["ldd", str(so)], capture_output=True, text=True)
    needed = []
    for line in res.stdout.splitlines():
        line = line.strip()
        name, _, rest = line.partition(" => ")
        name = name.split()[0] if name else name
        path = rest.split(" (")[0].strip() if rest else (line.split()[0] if line.startswith("/") else "")
        if "not found" in rest:
            fail(f"{so.name} needs {name}, which is not found")
        if not path or name.startswith(("linux-vdso", "linux-gate")):
            continue
        real = os.path.realpath(path)
        inside = real.startswith(str(site) + os.sep)
        base = os.path.basename(name)
        if not inside and base not in policy_libs and not base.startswith(LOADERS):
            fail(f"{so.name} needs {name} from {real}: neither in the wheel nor in the policy's system libraries")
        needed.append(f"{name}{' (wheel)' if inside else ''}")
    print(f"{so.name} needs: {', '.join(needed)}")

    bad_dirs = [os.path.realpath(d) for d in forbidden]
    mapped = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and ".so" in parts[5]:
            mapped.add(os.path.realpath(parts[5].strip()))
    for path in sorted(mapped):
        if any(path.startswith(d + os.sep) for d in bad_dirs):
            fail(f"{path} is mapped into the process: it comes from a forbidden directory")
        if "rdkafka" in os.path.basename(path) and not path.startswith(str(site) + os.sep):
            fail(f"a librdkafka from outside the venv is mapped: {path}")
    print(f"{len(mapped)} shared objects mapped; none from {', '.join(bad_dirs) or '(no forbidden dirs)'}"
          "; every librdkafka copy is inside the venv")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", help="the version the wheel's file name carries")
    ap.add_argument("--require-readback", action="store_true")
    ap.add_argument("--check-linkage", nargs="*", metavar="FORBIDDEN_DIR",
                    help="Linux: check _core's linkage and this process's mapped libraries")
    ap.add_argument("--policy-libs", default="",
                    help="comma-separated sonames the platform policy allows (default: manylinux's)")
    args = ap.parse_args()
    check_import(args.version)
    produce_and_read_back(args.require_readback)
    if args.check_linkage is not None:
        policy = tuple(x for x in args.policy_libs.split(",") if x) or POLICY_LIBS
        check_linkage(args.check_linkage, policy)
    print("wheel smoke: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
