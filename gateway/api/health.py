"""GET /health: liveness plus a cheap database check; no token needed."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from gateway import __version__
from gateway.services import services
from gateway.store.db import run_db

routes = web.RouteTableDef()


def _ping(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    svc = services(request.app)
    try:
        await run_db(_ping, svc.engine)
        db = "ok"
    except Exception as exc:  # report, don't crash: health is what operators look at
        db = f"error: {type(exc).__name__}"
    status = 200 if db == "ok" else 503
    return web.json_response({"status": "ok" if status == 200 else "degraded", "version": __version__,
                              "database": db}, status=status)
