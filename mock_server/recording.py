"""Transitional: record modes moved to `mock_server.config.plan_recording` and
`mock_server.replay.episodes`."""

from mock_server.replay.episodes import EpisodeReplayer, proxy_config_for, recording_app

__all__ = ["EpisodeReplayer", "proxy_config_for", "recording_app"]
