"""Opening cassettes for replay with the configured matchers; a bad cassette or matcher name is
the contract's 400 (at runtime) and one CLI line (at start)."""

from __future__ import annotations

from pathlib import Path

from mock_server.config import ServerConfig
from mock_server.errors import BadRequestError
from mock_server.replay.matching import parse_matchers
from mock_server.replay.player import Player
from recorder.errors import CassetteError


def load_player(config: ServerConfig, paths: tuple[Path, ...]) -> Player:
    try:
        matchers = parse_matchers(config.match_on)
    except ValueError as err:
        raise BadRequestError(str(err)) from err
    try:
        return Player(
            paths,
            matchers=matchers,
            ignore=config.ignore,
            exhausted=config.exhausted,
            cycle_sessions=config.cycle_sessions,
        )
    except CassetteError as err:
        raise BadRequestError(str(err)) from err
