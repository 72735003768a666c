from __future__ import annotations

import pytest

from tests.pages import PageServer


@pytest.fixture
async def pages():
    server = PageServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def emulator():
    from tests.emulator import RunningEmulator, emulator_config

    running = await RunningEmulator(emulator_config()).start()
    yield running
    await running.stop()
