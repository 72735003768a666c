"""A real Redis (Debian's `redis-server`, on a free port, stopped after) and emulator instances
sharing it, each with its own browser and registry, on ephemeral 127.0.0.1 ports."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import RunningEmulator, emulator_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """`redis-server` in a temporary folder; `stop` saves its data so `start` brings it back."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is missing: scripts/dev setup installs it (apt-get)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "3600 1",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:  # the event: Redis says it is ready (EOF if it died)
            if b"Ready to accept connections" in line:
                break
        else:
            pytest.fail("redis-server exited at start")
        # Keep reading its log so a full pipe never blocks it.
        self._drain = threading.Thread(target=self.process.stdout.read, daemon=True)
        self._drain.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: redis saves its data (--save), then exits
            self.process.wait(timeout=20)
            self._drain.join(timeout=5)
            assert self.process.stdout is not None
            self.process.stdout.close()
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def start_instances(n: int, redis_url: str, **overrides: Any) -> list[RunningEmulator]:
    settings = {"heartbeat_ttl": 3.0, **overrides}
    config = replace(emulator_config(), redis_url=redis_url, **settings)
    started = []
    try:
        for _ in range(n):
            started.append(await RunningEmulator(config).start())
    except BaseException:
        await asyncio.gather(*(e.stop() for e in started))
        raise
    return started


@pytest.fixture
async def instances(redis_server):
    running = await start_instances(3, redis_server.url)
    yield running
    for emulator in running:
        await emulator.stop()
