"""The batch endpoints on real Chromium: a signed batch of images runs in the background, its
results land in the object store and arrive at a local aiohttp webhook; signatures in hex and
base64 pass, a bad one is 401; a bad item is 400 naming its index before anything runs; a
webhook off loopback is refused unless its host is allowed; recording redacts the signature."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image

from mock_server.config import Mode
from mock_server.serving import listen_on_loopback
from mock_server.state import BROWSER
from recorder.cassette import open_cassette
from recorder.contract import sign_body
from recorder.proxy import ProxyConfig
from recorder.verify import verify_cassette
from tests.emulator import ApiClient, RunningEmulator, emulator_config
from tests.pages import PageServer
from tests.recorder.conftest import running_proxy

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

KEY, SECRET = "batch_user", "batch-secret"
# A second secret of the same user, as `--users FILE` gives one user several lines.
API_SECRET = "batch-api-secret"


class Webhook:
    """A local aiohttp app that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.app = web.Application()
        self.app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(self.app, access_log=None)
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        await self.received.put(await request.json())
        return web.json_response({"ok": True})

    async def start(self) -> Webhook:
        self.url = await listen_on_loopback(self._runner) + "/hook"
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.received.get(), 60)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningEmulator]:
    config = emulator_config(
        users={KEY: (SECRET, API_SECRET)},
        storage_dir=tmp_path_factory.mktemp("store"),
        batch_max=6,
        allow_webhook_hosts=("hooks.example.test",),
    )
    running = await RunningEmulator(config).start()
    yield running
    await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def webhook() -> AsyncIterator[Webhook]:
    hook = await Webhook().start()
    yield hook
    await hook.stop()


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


async def post_batch(
    emu: RunningEmulator,
    raw: bytes,
    signature: str | None,
    endpoint: str = "image",
    key: str = KEY,
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-req-signature"] = signature
    return await emu.call("POST", f"/batch-{endpoint}/{key}", raw=raw, headers=headers, token=None)


async def batch_count(emu: RunningEmulator) -> int:
    status, body = await emu.call("GET", "/__admin/batches", token=None)
    assert status == 200
    return body["count"]


async def test_a_batch_of_five_images_reaches_the_webhook_with_five_results(
    emu: RunningEmulator, site: PageServer, webhook: Webhook
):
    paths = ["/", "/counter", "/form", "/list?n=3", "/colour"]
    raw = encode(
        {
            "notification_uri": webhook.url,
            "data": [
                {"url": site.url(p), "options": {"vw": 320 + i, "vh": 200, "full": False}}
                for i, p in enumerate(paths)
            ],
        }
    )
    status, answer = await post_batch(emu, raw, sign_body(SECRET, raw))
    assert status == 202, answer
    assert answer["success"] is True and answer["total"] == 5
    note = await webhook.next()
    assert note["id"] == answer["id"] and note["status"] == "completed"
    assert (note["total"], note["succeeded"], note["failed"]) == (5, 5, 0)
    results = sorted(note["results"], key=lambda r: r["index"])
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    for i, result in enumerate(results):
        assert result["success"] is True and result["contentType"] == "image/png"
        stored = emu.config.storage_dir / result["key"]
        assert result["key"].startswith(KEY + "/")
        with Image.open(io.BytesIO(stored.read_bytes())) as image:
            assert image.size == (320 + i, 200)
        assert result["location"] == f"{emu.url}/__storage/{result['key']}"

    status, progress = await emu.call("GET", answer["progress"], token=None)
    assert status == 200
    batch = progress["batch"]
    assert (batch["status"], batch["done"], batch["failed"]) == ("completed", 5, 0)
    assert batch["notification"]["status"] == 200


async def test_a_failing_item_does_not_stop_the_others(
    emu: RunningEmulator, site: PageServer, webhook: Webhook
):
    raw = encode(
        {
            "notification_uri": webhook.url,
            "data": [
                {"url": "http://127.0.0.1:9/unreachable"},
                {"url": site.url("/"), "options": {"fileName": "after-failure"}},
            ],
        }
    )
    status, answer = await post_batch(emu, raw, sign_body(SECRET, raw))
    assert status == 202, answer
    note = await webhook.next()
    failed, ok = sorted(note["results"], key=lambda r: r["index"])
    assert (
        failed["success"] is False
        and failed["status"] == 502
        and "Could not load" in (failed["error"])
    )
    assert ok["success"] is True and ok["key"] == f"{KEY}/after-failure.png"
    assert (emu.config.storage_dir / ok["key"]).is_file()


async def test_batch_pdf_stores_pdfs(emu: RunningEmulator, site: PageServer, webhook: Webhook):
    raw = encode(
        {
            "notification_uri": webhook.url,
            "data": [{"url": site.url("/"), "options": {"format": "A5", "s3Acl": "public-read"}}],
        }
    )
    status, answer = await post_batch(emu, raw, sign_body(SECRET, raw), endpoint="pdf")
    assert status == 202, answer
    (result,) = (await webhook.next())["results"]
    assert result["contentType"] == "application/pdf" and result["key"].endswith(".pdf")
    assert (emu.config.storage_dir / result["key"]).read_bytes().startswith(b"%PDF")


async def test_signatures_in_hex_and_base64_pass_and_bad_ones_are_401(
    emu: RunningEmulator, site: PageServer
):
    raw = encode({"data": [{"url": site.url("/"), "options": {"vw": 100, "vh": 100}}]})
    digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()
    second = sign_body(API_SECRET, raw)
    for good in (digest.hex(), digest.hex().upper(), base64.b64encode(digest).decode(), second):
        status, answer = await post_batch(emu, raw, good)
        assert status == 202, answer
    bad = [
        None,
        "",
        hmac.new(b"wrong", raw, hashlib.sha256).hexdigest(),
        sign_body(SECRET, raw + b" "),
    ]
    before = await batch_count(emu)
    for signature in bad:
        status, answer = await post_batch(emu, raw, signature)
        assert status == 401 and answer["success"] is False
        assert "x-req-signature" in answer["error"]
    status, answer = await post_batch(emu, raw, sign_body(SECRET, raw), key="unknown")
    assert (status, answer["error"]) == (401, "Unknown API key")
    assert await batch_count(emu) == before


@pytest.mark.parametrize(
    ("item", "named"),
    [
        ({"url": "{site}", "options": {"vw": 0}}, "vw"),
        ({"url": "{site}", "options": {"type": "bmp"}}, "type"),
        ({"url": "{site}", "options": {"fileName": "../x"}}, "fileName"),
        ({"url": "{site}", "options": {"s3Acl": "everyone"}}, "s3Acl"),
        ({"url": "{site}", "options": {"skipUpload": True}}, "skipUpload"),
        ({"url": "{site}", "options": {"vw": [1]}}, "vw"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"options": {}}, "url"),
    ],
)
async def test_a_bad_item_is_400_naming_its_index_before_anything_runs(
    emu: RunningEmulator, site: PageServer, item: dict[str, Any], named: str
):
    good = {"url": site.url("/")}
    bad = json.loads(json.dumps(item).replace("{site}", site.url("/")))
    raw = encode({"data": [good, good, bad]})
    before, hits = await batch_count(emu), dict(site.hits)
    status, answer = await post_batch(emu, raw, sign_body(SECRET, raw))
    assert status == 400, answer
    assert answer["error"].startswith("data[2]") and named.lower() in answer["error"].lower()
    assert answer["index"] == 2
    assert await batch_count(emu) == before and site.hits == hits


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"data": []}, "data"),
        ({"data": [{"url": "http://127.0.0.1:1/"}] * 7}, "at most 6"),
        ({"items": []}, "data"),
        ({"data": [{"url": "http://127.0.0.1:1/"}], "notification_uri": "ftp://x/"}, "http"),
        (
            {"data": [{"url": "http://127.0.0.1:1/"}], "notification_uri": "http://[::1]:99999/"},
            "notification_uri",
        ),
        (
            {"data": [{"url": "http://127.0.0.1:1/"}], "notification_uri": "http://127.0.0.1:x/"},
            "notification_uri",
        ),
        (
            {"data": [{"url": "http://127.0.0.1:1/"}], "notification_uri": "http://10.0.0.1/h"},
            "loopback",
        ),
        (
            {"data": [{"url": "http://127.0.0.1:1/"}], "notification_uri": "https://evil.test/"},
            "--allow-webhook-host",
        ),
    ],
)
async def test_bad_batches_are_400(emu: RunningEmulator, body: dict[str, Any], named: str):
    raw = encode(body)
    status, answer = await post_batch(emu, raw, sign_body(SECRET, raw))
    assert status == 400 and named in answer["error"], answer


async def test_an_allowed_webhook_host_is_accepted(emu: RunningEmulator, site: PageServer):
    raw = encode(
        {
            "notification_uri": "https://hooks.example.test/capture",
            "data": [{"url": site.url("/"), "options": {"vw": 50, "vh": 50}}],
        }
    )
    status, answer = await post_batch(emu, raw, sign_body(SECRET, raw))
    assert status == 202, answer
    status, _ = await emu.call("GET", "/__admin/batches/batch_unknown", token=None)
    assert status == 404


async def test_a_recorded_batch_keeps_the_key_hides_the_signature_and_replays(
    site: PageServer, tmp_path: Path
):
    upstream = await RunningEmulator(emulator_config(users={KEY: SECRET})).start()
    cassette = tmp_path / "batch.msgpack"
    try:
        async with running_proxy(ProxyConfig(cassette=cassette, upstream=upstream.url)) as proxy:
            raw = encode({"data": [{"url": site.url("/"), "options": {"vw": 60, "vh": 40}}]})
            signature = sign_body(SECRET, raw)
            async with ApiClient(proxy) as via_proxy:
                status, answer = await via_proxy.call(
                    "POST",
                    f"/batch-image/{KEY}",
                    raw=raw,
                    headers={"x-req-signature": signature, "Content-Type": "application/json"},
                    token=None,
                )
            assert status == 202, answer
    finally:
        await upstream.stop()
    data = cassette.read_bytes()
    assert signature.encode() not in data
    with open_cassette(cassette) as reader:
        (entry,) = reader.entries
        item = reader.load(entry)
    assert item.request.path == f"/batch-image/{KEY}" and item.request.body == raw
    headers = {k.lower(): v for k, v in item.request.headers}
    assert headers["x-req-signature"] == "<redacted>"
    replaying = await RunningEmulator(
        emulator_config(users={KEY: SECRET}, mode=Mode.REPLAY, cassettes=(cassette,))
    ).start()
    try:
        status, answer = await post_batch(replaying, raw, sign_body(SECRET, raw))
        assert status == 202 and replaying.last_headers["X-Capture-Replay"] == "hit"
        assert answer["total"] == 1 and answer["id"].startswith("batch_")
        other = encode({"data": [{"url": site.url("/form")}]})
        status, _ = await post_batch(replaying, other, sign_body(SECRET, other))
        assert status == 502 and replaying.last_headers["X-Capture-Replay"] == "miss"
        status, _ = await post_batch(replaying, raw, "bad")
        assert status == 401
        assert replaying.app[BROWSER].launched is False
    finally:
        await replaying.stop()

    # verify re-signs the body (the recorded signature is redacted) with the caller's secret
    target = await RunningEmulator(emulator_config(users={KEY: SECRET})).start()
    try:
        token = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
        with open_cassette(cassette) as reader:
            result = await verify_cassette(reader, target.url, token=token)
        assert result.sent == 1
        assert await batch_count(target) == 1
    finally:
        await target.stop()


async def test_batch_items_wait_their_turn_for_a_slot_instead_of_503(
    site: PageServer, webhook: Webhook
):
    """One capture slot and no queue: a one-shot would be 503 while another runs; batch items
    wait for the slot instead."""
    running = await RunningEmulator(emulator_config(oneshot_slots=1, oneshot_queue=0)).start()
    try:
        raw = encode(
            {
                "notification_uri": webhook.url,
                "data": [{"url": site.url("/"), "options": {"vw": 100 + i}} for i in range(3)],
            }
        )
        status, _ = await post_batch(running, raw, "any signature (no --users)", key="anyone")
        assert status == 202
        note = await webhook.next()
        assert (note["succeeded"], note["failed"]) == (3, 0), note
    finally:
        await running.stop()
