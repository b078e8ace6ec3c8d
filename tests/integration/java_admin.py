"""Committed offsets as Kafka's own Java Admin client reads them (a reader that is not
librdkafka).

confluent-kafka reads offset metadata as a NUL-terminated C string from a buffer librdkafka
does not terminate, so metadata that is sent byte for byte (by WaterDrop, by the Java client)
can come back from ``Consumer.committed()`` with bytes of the heap after it. Tests that check
metadata read it here: ``java/OffsetMetadataReader.java``, compiled with ``javac`` against the
jars of ``ci/kafka classpath``, prints ``Admin.listConsumerGroupOffsets``'s answer with each
metadata's bytes in hex.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "java",
                      "OffsetMetadataReader.java")
TIMEOUT_S = 240.0

#: {(topic, partition): (committed offset, metadata bytes)}
Offsets = dict[tuple[str, int], tuple[int, bytes]]


def missing_java() -> str | None:
    """Why the reader cannot run here (no java or javac on PATH), else None."""
    if shutil.which("java") is None or shutil.which("javac") is None:
        return "no java/javac on PATH: Kafka's Java Admin client cannot read the offsets"
    return None


def compile_reader(out_dir: str) -> list[str]:
    """Compile the reader into ``out_dir``; the command that runs it (arguments to add)."""
    found = subprocess.run(
        [sys.executable, os.path.join(ROOT, "ci", "kafka"), "classpath"],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert found.returncode == 0, f"ci/kafka classpath failed:\n{found.stderr}"
    classpath = found.stdout.strip().splitlines()[-1]
    compiled = subprocess.run(
        [shutil.which("javac") or "javac", "-d", out_dir, "-cp", classpath, SOURCE],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert compiled.returncode == 0, f"javac failed:\n{compiled.stdout}{compiled.stderr}"
    java = shutil.which("java") or "java"
    return [java, "-cp", os.pathsep.join([out_dir, classpath]), "OffsetMetadataReader"]


def read_offsets(reader: list[str], bootstrap: str, group: str) -> Offsets:
    """``group``'s committed offsets, read by the compiled reader."""
    ran = subprocess.run(
        [*reader, bootstrap, group], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert ran.returncode == 0, f"the Java reader failed:\n{ran.stdout}{ran.stderr}"
    offsets: Offsets = {}
    for line in ran.stdout.splitlines():
        if not line.startswith("OFFSET "):
            continue  # anything the client logs to stdout
        _, topic, partition, offset, hexed = line.split(" ")
        metadata = b"" if hexed == "-" else bytes.fromhex(hexed)
        offsets[(topic, int(partition))] = (int(offset), metadata)
    return offsets
