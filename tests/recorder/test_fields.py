"""The field tables (`recorder.fields`) and the findings drawn from them (`recorder.findings`):
tables consistent with the emulator's action types and endpoints, selector syntax recognised,
and the README's tables written from the code (`scripts/readme_tables.py --check`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mock_server.actions import ActionType
from mock_server.oneshot.options import PARSERS, Query
from recorder.contract import ONESHOT_ENDPOINTS
from recorder.fields import ACTIONS, ANY_ACTION, CREATE, ONESHOT, Kind
from recorder.findings import Level, playwright_syntax, request_findings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "readme_tables.py"


def test_tables_cover_every_action_type_and_endpoint():
    assert list(ACTIONS) == [t.value for t in ActionType]
    assert tuple(ONESHOT) == ONESHOT_ENDPOINTS


@pytest.mark.parametrize(
    "fields",
    [CREATE, ANY_ACTION, *ACTIONS.values(), *ONESHOT.values()],
)
def test_a_name_is_documented_or_chosen_never_both_and_aliases_point_inside(fields):
    assert not set(fields.documented) & set(fields.chosen)
    for name, note in fields.chosen.items():
        if note.startswith("alias of "):
            target = note.removeprefix("alias of ").split(",")[0]
            assert fields.kind(target) is not Kind.UNKNOWN, name


def test_the_briefed_oneshot_options_are_in_the_image_table():
    image = ONESHOT["image"]
    for name in ("full", "darkMode", "bestFormat", "fileName", "s3Acl", "s3Redirect"):
        assert image.kind(name) is Kind.DOCUMENTED
    for name in ("skipUpload", "fresh", "timestamp"):
        assert image.kind(name) is Kind.DOCUMENTED
    assert ONESHOT["animated"].kind("hideScrollbars") is Kind.DOCUMENTED
    assert image.names("full") == ("full", "fullPage")
    assert image.names("type") == ("type", "format")


@pytest.mark.parametrize(
    ("selector", "syntax"),
    [
        ("text=Sign in", "text="),
        ("XPATH=//div", "xpath="),
        ("role=button[name='OK']", "role="),
        ("#list >> nth=1", ">>"),
        ('button:has-text("Sign")', ":has-text("),
        ("li:visible", ":visible"),
        ("//div[@id='a']", "a leading // (XPath)"),
        ('"Sign in"', 'a leading " (text)'),
        ("#submit", None),
        ("a[href*='text=x'] > span", None),
        ("div:has(> p.note):not(.x)", None),
        ('[data-label=":visible >> x"]', None),
    ],
)
def test_playwright_only_selector_syntax(selector, syntax):
    assert playwright_syntax(selector) == syntax


def action(kind: str, payload: object) -> bytes:
    return json.dumps({"type": kind, "payload": payload}).encode()


def test_findings_of_an_action_and_its_batch_steps():
    path = "/v1/sessions/sess_1/actions"
    fill = {"selector": "#a", "text": "x", "bogus": 1, "vw": 10, "vh": 10}
    found = request_findings("POST", path, "", action("fill", fill))
    assert [(f.level, f.message.split(" is ")[0]) for f in found] == [
        (Level.CHOSEN, "fill payload.selector"),
        (Level.CHOSEN, "fill payload.text"),
        (Level.UNKNOWN, "fill payload.bogus"),
    ]
    batch = {"actions": [{"type": "fill", "payload": fill}, {"type": "click", "payload": {}}]}
    assert request_findings("POST", path, "", action("batch", batch)) == found
    assert request_findings("POST", path, "", action("goto", {"url": "http://x/"})) == []
    assert request_findings("POST", path, "", b'{"type": "fly"}') == []
    assert request_findings("POST", path, "", b"not json") == []
    weird = request_findings("POST", path, "", action("title", {"a\nb" + "c" * 100: 1}))
    assert "\n" not in weird[0].message and len(weird[0].message) < 200


def test_findings_of_a_oneshot_query_and_a_create():
    found = request_findings("GET", "/key/hash/image", "url=x&fullPage=true&bogus=&x=1", b"")
    assert [f.level for f in found] == [Level.CHOSEN, Level.UNKNOWN]  # empty values: absent
    assert request_findings("GET", "/key/hash/pdf", "url=x&format=A4&landscape=true", b"") == []
    create = request_findings("POST", "/v1/sessions", "", b'{"maxTtlSeconds": 60, "ttl": 1}')
    assert [f.message.split(" is ")[0] for f in create] == ["create field ttl"]
    assert request_findings("GET", "/v1/sessions/sess_1", "x=1", b"") == []


def test_readme_tables_match_the_code(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_readme_check_fails_when_a_table_drifts(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    drifted = readme.replace("| `goto` | `url`, `waitUntil` |", "| `goto` | `url` |", 1)
    assert drifted != readme
    copy = tmp_path / "scripts"
    copy.mkdir()
    (copy / "readme_tables.py").write_text(SCRIPT.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "README.md").write_text(drifted, encoding="utf-8")
    env = {"PYTHONPATH": str(ROOT)}
    check = [sys.executable, str(copy / "readme_tables.py"), "--check"]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1 and "run scripts/readme_tables.py" in result.stderr
    fix = subprocess.run(check[:2], capture_output=True, text=True, timeout=60, env=env)
    assert fix.returncode == 0
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == readme


def test_a_body_nested_too_deeply_has_no_findings():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert request_findings("POST", "/v1/sessions", "", deep) == []
    assert request_findings("POST", "/v1/sessions/sess_1/actions", "", deep) == []


class ReadNames(dict[str, Any]):
    """A payload that remembers every name asked of it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


@pytest.mark.parametrize("endpoint", list(ONESHOT))
def test_a_oneshot_parser_reads_only_names_of_its_table(endpoint):
    query = Query("url=https%3A%2F%2Fexample.com%2F")
    query.values = ReadNames(query.values)
    PARSERS[endpoint](query, allow_file=False)
    assert query.values.asked - set(ONESHOT[endpoint].accepted) == set()
    assert "url" in query.values.asked


def test_a_batch_requests_items_are_read_as_their_one_shot_queries():
    body = {
        "data": [
            {"url": "https://example.com/", "options": {"landscape": True, "bogus": 1}},
            {"url": "https://example.com/", "options": {"bogus": "x", "waitFor": "text=Go"}},
            {"url": "https://example.com/"},
            "not an item",
        ]
    }
    found = request_findings("POST", "/batch-pdf/key", "", json.dumps(body).encode())
    assert [f.message for f in found] == [
        "pdf option bogus is unknown: neither Capture's docs nor capture-replay name it",
        "pdf option waitFor is not named by Capture's docs: " + ONESHOT["pdf"].chosen["waitFor"],
        "pdf option waitFor uses text=: Playwright-only selector syntax that Capture's docs do "
        "not describe (they take CSS selectors)",
    ]
    assert request_findings("GET", "/batch-pdf/key", "", json.dumps(body).encode()) == []
    assert request_findings("POST", "/batch-pdf/key", "", b"[not json") == []
