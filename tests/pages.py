"""Local test pages served by a small aiohttp app on an ephemeral port (no test reaches the internet).

`PageServer` is started by the `pages` fixture in `tests/conftest.py`; `url(path)` builds absolute URLs.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from mock_server.serving import listen_on_loopback

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Capture test index</title>
<meta name="description" content="A page for capture-replay tests">
<style>body{font-family:sans-serif;margin:20px} .hidden{display:none}</style></head>
<body>
<h1 id="title">Hello from the test index</h1>
<p class="intro">This is a <strong>local</strong> page served by aiohttp.</p>
<nav><a href="/counter" class="nav" data-tab="counter">Counter</a>
<a href="/form" class="nav" data-tab="form">Form</a>
<a href="/list" class="nav" data-tab="list">List</a></nav>
<img src="/pixel.png" alt="a pixel" id="pixel">
<script>console.log("index loaded");</script>
</body></html>"""

COUNTER = """<!doctype html>
<html><head><meta charset="utf-8"><title>Counter</title></head>
<body>
<h1>Counter</h1>
<button id="inc" data-role="increment" style="width:120px;height:40px">Increment</button>
<button id="hidden-btn" style="display:none">Hidden</button>
<p>Count: <span id="count">0</span></p>
<div id="hover-target" style="width:100px;height:50px;background:#ccc"
     onmouseover="document.getElementById('hovered').textContent='yes'">hover me</div>
<p>Hovered: <span id="hovered">no</span></p>
<script>
document.getElementById('inc').addEventListener('click', () => {
  const el = document.getElementById('count');
  el.textContent = String(Number(el.textContent) + 1);
});
</script>
</body></html>"""

FORM = """<!doctype html>
<html><head><meta charset="utf-8"><title>Login form</title></head>
<body>
<form id="login" onsubmit="event.preventDefault();document.getElementById('out').textContent='submitted:'+document.getElementById('user').value">
<input id="user" name="username" type="text">
<input id="password" name="password" type="password">
<select id="color" name="color"><option value="red">Red</option><option value="green">Green</option><option value="blue">Blue</option></select>
<input id="agree" name="agree" type="checkbox">
<textarea id="notes" name="notes"></textarea>
<button id="submit" type="submit">Sign in</button>
</form>
<p id="out"></p>
<p>Keys: <span id="keys"></span></p>
<script>
document.addEventListener('keydown', e => { document.getElementById('keys').textContent += e.key + ' '; });
</script>
</body></html>"""

ERRORS = """<!doctype html>
<html><head><meta charset="utf-8"><title>Noisy page</title></head>
<body><p>console and errors</p>
<script>
console.log("hello console");
console.warn("a warning");
setTimeout(() => { throw new Error("boom from the page"); }, 0);
</script></body></html>"""

LONG = """<!doctype html>
<html><head><meta charset="utf-8"><title>Long page</title></head>
<body style="margin:0"><div style="height:4000px;background:linear-gradient(#fff,#00f)">tall</div>
<p id="bottom">bottom</p></body></html>"""

MOUSE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Mouse</title></head>
<body style="margin:0">
<div id="pad" style="width:600px;height:400px;background:#eee"></div>
<p>Last: <span id="last">none</span> Moves: <span id="moves">0</span></p>
<script>
let moves = 0;
document.addEventListener('mousemove', e => { moves++; document.getElementById('moves').textContent = moves;
  document.getElementById('last').textContent = e.clientX + ',' + e.clientY; });
</script></body></html>"""


def list_page(n: int) -> str:
    items = "\n".join(
        f'<li class="item" data-i="{i}"><a href="/item/{i}" title="Item {i}">Item {i}</a></li>'
        for i in range(n)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>List</title></head><body>"
        f"<ul id='items'>{items}</ul><li class='item' style='display:none'>invisible</li></body></html>"
    )


# 1x1 PNG
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class PageServer:
    """An aiohttp app serving the fixture pages; counts the requests it received."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.app = web.Application()
        self.app.router.add_get("/slow", self._slow)
        self.app.router.add_get("/{name:.*}", self._page)
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()
        self.port = 0

    async def _page(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if name in EXTRA_HANDLERS:
            return await EXTRA_HANDLERS[name](request)
        pages = {
            "": INDEX,
            "counter": COUNTER,
            "form": FORM,
            "errors": ERRORS,
            "long": LONG,
            "mouse": MOUSE,
        }
        pages.update(EXTRA_PAGES)
        if name in pages:
            return web.Response(text=pages[name], content_type="text/html")
        if name == "list":
            n = int(request.query.get("n", "500"))
            return web.Response(text=list_page(n), content_type="text/html")
        if name == "pixel.png":
            return web.Response(body=PIXEL, content_type="image/png")
        if name.startswith("item/"):
            return web.Response(
                text=f"<html><head><title>{name}</title></head><body><h1>{name}</h1></body></html>",
                content_type="text/html",
            )
        return web.Response(status=404, text="not found", content_type="text/plain")

    async def _slow(self, request: web.Request) -> web.Response:
        # Answers after `s` seconds, or at once when the server stops (so teardown never waits).
        self.hits["slow"] = self.hits.get("slow", 0) + 1
        try:
            await asyncio.wait_for(self._released.wait(), float(request.query.get("s", "10")))
        except TimeoutError:
            pass
        return web.Response(text="<html><title>slow</title></html>", content_type="text/html")

    async def start(self) -> None:
        await self.start_on(0)

    async def start_on(self, port: int) -> None:
        """Listen on 127.0.0.1:`port` (0: an ephemeral one)."""
        self._released = asyncio.Event()
        self._runner = web.AppRunner(self.app, access_log=None)
        url = await listen_on_loopback(self._runner, port)
        self.port = int(url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


# -- pages for the one-shot endpoints (tests/e2e/test_oneshot.py) ----------------------------

META = """<!doctype html>
<html lang="fr-FR"><head><meta charset="utf-8"><title>Plain title</title>
<meta property="og:title" content="Open Graph title">
<meta name="description" content="A page with metadata">
<meta property="og:image" content="/images/cover.png">
<meta name="author" content="Ada Lovelace">
<meta property="og:site_name" content="Capture Replay Tests">
<meta property="og:url" content="https://example.test/articles/1">
<meta property="article:published_time" content="2026-01-02T03:04:05Z">
<link rel="apple-touch-icon" href="/logo.png">
<link rel="alternate" type="application/rss+xml" href="/feed.xml">
</head><body><h1>Metadata</h1><p>Body text for metadata.</p></body></html>"""

# A box that moves and changes colour on every animation frame.
ANIMATED = """<!doctype html>
<html><head><meta charset="utf-8"><title>Animated</title></head>
<body style="margin:0;background:#fff">
<div id="box" style="position:absolute;top:40px;width:80px;height:80px;background:red"></div>
<script>
const box = document.getElementById('box');
const t0 = performance.now();
function step(now) {
  const t = (now - t0) / 1000;
  box.style.left = Math.round((t * 150) % 300) + 'px';
  box.style.background = 'hsl(' + Math.round(t * 120) % 360 + ',80%,50%)';
  requestAnimationFrame(step);
}
requestAnimationFrame(step);
</script></body></html>"""

# White by default, black under prefers-color-scheme: dark.
DARK = """<!doctype html>
<html><head><meta charset="utf-8"><title>Dark aware</title>
<style>html,body{margin:0;height:100%;background:#fff}
@media (prefers-color-scheme: dark){html,body{background:#000}}</style></head>
<body></body></html>"""

BASIC_AUTH = ("alice", "s3cret")

EXTRA_PAGES = {"meta": META, "animated": ANIMATED, "dark": DARK}


async def basic_auth_page(request: web.Request) -> web.Response:
    """`/auth`: 401 with a Basic challenge unless the credentials are BASIC_AUTH."""
    import base64

    expected = "Basic " + base64.b64encode(":".join(BASIC_AUTH).encode()).decode()
    if request.headers.get("Authorization") != expected:
        return web.Response(
            status=401, text="auth required", headers={"WWW-Authenticate": 'Basic realm="t"'}
        )
    return web.Response(
        text="<html><head><title>Secret</title></head><body><p id='ok'>welcome</p></body></html>",
        content_type="text/html",
    )


EXTRA_HANDLERS = {"auth": basic_auth_page}

# Loads, then never yields its main thread again: every later evaluate or navigation waits.
BUSY = """<!doctype html>
<html><head><meta charset="utf-8"><title>Busy</title></head>
<body><p>busy</p>
<script>window.addEventListener('load', () => setTimeout(() => { while (true) {} }, 0));</script>
</body></html>"""

EXTRA_PAGES["busy"] = BUSY


async def big_page(request: web.Request) -> web.Response:
    """`/big?mb=N`: about N MB of paragraphs (3 by default)."""
    mb = float(request.query.get("mb", "3"))
    row = "<p>Some words in a paragraph of the big page.</p>\n"
    body = row * int(mb * 1024 * 1024 / len(row))
    html = f"<!doctype html><html><head><title>Big</title></head><body>{body}</body></html>"
    return web.Response(text=html, content_type="text/html")


EXTRA_HANDLERS["big"] = big_page

# A select whose option `purple` a script adds 200 ms after load.
LATE_OPTION = """<!doctype html>
<html><head><meta charset="utf-8"><title>Late option</title></head>
<body><select id="color"><option value="red">Red</option></select>
<script>setTimeout(() => document.getElementById('color').add(new Option('Purple', 'purple')), 200);
</script></body></html>"""

EXTRA_PAGES["late-option"] = LATE_OPTION

# -- pages for the image options, user agent and devices (tests/e2e/test_oneshot_fidelity.py) ---

# No dark styles at all: default white canvas, black text, a red picture in the corner.
PLAIN = """<!doctype html>
<html><head><meta charset="utf-8"><title>Plain</title></head>
<body style="margin:0"><img id="red" src="/red.svg" width="40" height="40"
 style="position:absolute;left:0;top:0"><p style="margin-top:60px">plain text</p></body></html>"""

RED_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
    '<rect width="40" height="40" fill="#f00"/></svg>'
)

# Overflows in both directions, so a browser that shows scrollbars shows both.
OVERFLOW = """<!doctype html>
<html><head><meta charset="utf-8"><title>Overflow</title></head>
<body style="margin:0;background:#fff"><div style="width:3000px;height:3000px"></div></body></html>"""

EXTRA_PAGES.update(plain=PLAIN, overflow=OVERFLOW)


async def user_agent_page(request: web.Request) -> web.Response:
    """`/ua`: the User-Agent header this request arrived with in `#header`, and the page's
    navigator.userAgent in `#navigator`."""
    from html import escape

    header = escape(request.headers.get("User-Agent", ""))
    return web.Response(
        text="<html><head><title>UA</title></head><body>"
        f"<p id='header'>{header}</p><p id='navigator'></p>"
        "<script>document.getElementById('navigator').textContent = navigator.userAgent</script>"
        "</body></html>",
        content_type="text/html",
    )


async def red_svg(request: web.Request) -> web.Response:
    return web.Response(text=RED_SVG, content_type="image/svg+xml")


EXTRA_HANDLERS.update({"ua": user_agent_page, "red.svg": red_svg})
# `/colour`: one flat colour filling the viewport, `COLOUR["value"]` at the time of the request
# (tests change it between two identical one-shots to tell a cached capture from a new one).
COLOUR = {"value": "#ff0000"}


async def colour_page(request: web.Request) -> web.Response:
    html = (
        "<!doctype html><html><head><title>Colour</title><style>html,body{margin:0;height:100%;"
        f"background:{COLOUR['value']}}}</style></head><body></body></html>"
    )
    return web.Response(text=html, content_type="text/html")


EXTRA_HANDLERS["colour"] = colour_page
