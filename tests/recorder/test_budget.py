"""The credit budget: `check_budget` over an audit, and `capture-replay audit --budget` failing CI
with the costliest sessions when the credits billed across cassettes exceed it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mock_server.cli import main
from recorder.audit import audit_cassettes, check_budget
from recorder.cassette import open_cassette
from tests.recorder.test_diff import write_flow


def _cassettes(tmp_path):
    a = write_flow(tmp_path / "a.cassette", sid="sess_cheap", billed=1)
    b = write_flow(tmp_path / "b.cassette", sid="sess_dear", billed=5, sessions=2)
    return a, b  # 1 + 5 + 5 = 11 credits


def test_check_budget_sums_credits_and_ranks_sessions(tmp_path):
    paths = _cassettes(tmp_path)
    cassettes = [open_cassette(p) for p in paths]
    try:
        report = audit_cassettes(cassettes)
    finally:
        for c in cassettes:
            c.close()
    check = check_budget(report, 10, top=2)
    assert check.total == 11 and check.exceeded
    assert [(s.session_id, s.credits) for s in check.top] == [("sess_dear0", 5), ("sess_dear1", 5)]
    assert not check_budget(report, 11).exceeded


def test_audit_budget_exceeded_exits_4_with_the_top_sessions(tmp_path):
    a, b = _cassettes(tmp_path)
    result = CliRunner().invoke(main, ["audit", str(a), str(b), "--budget", "10"])
    assert result.exit_code == 4, result.output
    assert "budget: 11 of 10 credits EXCEEDED" in result.output
    assert "error: 11 credits billed, over the budget of 10; top sessions by cost:" in result.output
    lines = result.output.splitlines()
    top = lines[
        lines.index("error: 11 credits billed, over the budget of 10; top sessions by cost:") + 1 :
    ]
    assert [line.split()[2] for line in top] == ["sess_dear0", "sess_dear1", "sess_cheap"]


def test_audit_within_budget_exits_0(tmp_path):
    a, b = _cassettes(tmp_path)
    result = CliRunner().invoke(main, ["audit", str(a), str(b), "--budget", "11", "--json"])
    assert result.exit_code == 0, result.output
    budget = json.loads(result.output)["budget"]
    assert budget == {
        "budget": 11,
        "total": 11,
        "exceeded": False,
        "top": [
            {"sessionId": "sess_dear0", "user": "user_123", "credits": 5},
            {"sessionId": "sess_dear1", "user": "user_123", "credits": 5},
            {"sessionId": "sess_cheap", "user": "user_123", "credits": 1},
        ],
    }
    plain = CliRunner().invoke(main, ["audit", str(a)])
    assert plain.exit_code == 0 and "budget" not in plain.output


def test_audit_budget_rejects_a_negative_budget(tmp_path):
    a, _ = _cassettes(tmp_path)
    result = CliRunner().invoke(main, ["audit", str(a), "--budget", "-1"])
    assert result.exit_code == 2 and "--budget" in result.output
