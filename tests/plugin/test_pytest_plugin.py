"""The pytest plugin, as a user's project would use it: through pytest's own test runner."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_fixtures_are_available_to_any_project(tmp_path):
    (tmp_path / "test_user_code.py").write_text(textwrap.dedent('''
        import confluent_kafka
        from waterdrop import Producer

        def test_buffered(waterdrop_buffered_producer):
            waterdrop_buffered_producer.produce_sync(topic="orders", payload=b"{}")
            assert [m["topic"] for m in waterdrop_buffered_producer.client.messages] == ["orders"]

        def test_mock_cluster(waterdrop_mock_cluster):
            with Producer(kafka={"bootstrap.servers": waterdrop_mock_cluster.bootstrap_servers}) as p:
                report = p.produce_sync(topic="orders", payload=b"x")
            assert report.error is None and report.offset == 0

        def test_session_cluster(waterdrop_mock_cluster_session):
            assert waterdrop_mock_cluster_session.bootstrap_servers.startswith("127.0.0.1:")
    '''))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
