"""The README's nginx upstream block, as written, in front of three real instances: a whole
session through the load balancer, its requests spread over the instances."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mock_server.state import JOURNAL
from tests.cluster.conftest import free_port
from tests.emulator import ApiClient

pytestmark = pytest.mark.browser

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(instances: list[str], port: int) -> str:
    """The README's nginx block with its servers and port replaced."""
    block = re.search(r"```nginx\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    servers = "".join(f"    server {url.removeprefix('http://')};\n" for url in instances)
    block = re.sub(r"(    server 10\.0\.0\.\d+:8790;\n)+", servers, block)
    return block.replace("listen 8790;", f"listen 127.0.0.1:{port};")


async def test_a_session_through_the_readme_nginx_block(instances, pages, tmp_path):
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is missing: scripts/dev setup installs it (apt-get)")
    port = free_port()
    temp = "".join(
        f"{name}_temp_path {tmp_path}/{name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\naccess_log off;\n{temp}"
        f"{readme_block([i.url for i in instances], port)}}}\n"
    )
    nginx = subprocess.Popen([binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")])
    try:
        async with ApiClient(f"http://127.0.0.1:{port}") as lb:

            async def listening() -> None:
                while True:
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                        writer.close()
                        return
                    except OSError:
                        assert nginx.poll() is None, (tmp_path / "error.log").read_text()
                        await asyncio.sleep(0.02)

            await asyncio.wait_for(listening(), 10)
            sid = (await lb.create())["id"]
            await lb.act(sid, "goto", {"url": pages.url("/counter")})
            for _ in range(4):
                await lb.act(sid, "click", {"selector": "#inc"})
            found = await lb.act(sid, "query", {"selector": "#count"})
            assert found["elements"][0]["text"] == "4"
            assert (await lb.get(sid))["actionCount"] == 6
            assert (await lb.close(sid))["status"] == "closed"
        served = [len(i.app[JOURNAL].entries) for i in instances]
        assert sum(served) == 9 and sum(1 for n in served if n) >= 2, served
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
