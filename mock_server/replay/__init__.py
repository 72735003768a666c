"""Replay: cassettes played session by session, the decisions of what a request gets
(`engine`), matching (`matching`), the cassette index and cursors (`player`), and record modes
(`episodes`). Never imports the app, routes, admin or http modules."""
