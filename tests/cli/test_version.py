"""``waterdrop --version`` says what was built: waterdrop, librdkafka and its features."""

from __future__ import annotations

import waterdrop
from tests.cli.conftest import invoke, run


def test_version_lists_librdkafkas_features():
    result = invoke(["--version"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    feature_line = [line for line in lines if line.startswith("librdkafka features:")]
    assert len(feature_line) == 1, result.stdout
    listed = feature_line[0].split(":", 1)[1].split()
    assert listed == list(waterdrop.librdkafka_features())
    assert {"gzip", "snappy", "lz4", "zstd"} <= set(listed)
    proc = run("waterdrop script", ["--version"])
    assert proc.returncode == 0 and proc.stdout == result.stdout
