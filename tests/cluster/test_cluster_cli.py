"""`serve --redis` refuses what cluster mode cannot do, before anything starts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from mock_server.cli import main

CASSETTE = Path(__file__).resolve().parents[2] / "cassettes/examples/counter-flow.msgpack"


def serve(*args: str):
    return CliRunner().invoke(main, ["serve", "--port", "0", *args])


def test_redis_needs_a_redis_url():
    result = serve("--redis", "http://127.0.0.1:6379")
    assert result.exit_code == 2 and "expected redis://HOST:PORT/DB" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_hybrid_mode_is_refused_in_cluster_mode():
    result = serve(
        "--redis", "redis://127.0.0.1:1/0", "--mode", "hybrid", "--cassette", str(CASSETTE)
    )
    assert result.exit_code == 2
    assert "--mode hybrid cannot run in cluster mode" in result.output


def test_the_redis_password_is_never_shown():
    from mock_server.cluster.store import redacted

    assert redacted("redis://:s3cret@10.0.0.1:6379/0") == "redis://10.0.0.1:6379/0"
    assert redacted("redis://user:pw@host/1?db=2") == "redis://host/1?db=2"
    assert redacted("unix:///tmp/r.sock?password=pw&db=3") == "unix:///tmp/r.sock?db=3"
