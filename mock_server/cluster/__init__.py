"""Cluster mode (`serve --redis URL`): several emulator instances behind any load balancer share
sessions, the per-user limit, the manual clock and replay cursors through Redis, as Capture's own
API instances do; an action landing on an instance that does not own the session's browser page
is routed to its owner through Redis.

Wired into the app by `setup.setup_cluster` only when `--redis` is given (it needs the `cluster`
extra, the `redis` package); nothing here is imported otherwise.

- `store`: the Redis data model and scripts;
- `registry`: the shared `SessionRegistry`;
- `router`: actions routed to the owner (`ClusterLive`, `RequestWorker`);
- `clock`: the shared manual clock;
- `replay`: replay cursors and id mappings shared;
- `web`: the middleware (503 when Redis is unreachable, cluster-wide admin answers) and
  `GET /__admin/cluster`;
- `setup`: the instance's life (registration, heartbeat, reaping dead instances).
"""
