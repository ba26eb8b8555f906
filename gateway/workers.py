"""The background workers one gateway process runs: inbound processor, webhooks, outbox, routing.

One code path for `sendgw serve` (workers beside the HTTP server) and `sendgw worker` (workers
alone, e.g. on extra machines sharing the PostgreSQL database): both call `start_workers` and,
when stopping, `Workers.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from gateway.inbound.processor import InboundProcessor
from gateway.outbound.worker import OutboundWorker
from gateway.routing import RoutingEngine
from gateway.services import Services
from gateway.webhooks import WebhookWorker

log = logging.getLogger("sendgw.workers")

KINDS = ("inbound", "webhooks", "outbound", "routing")


@dataclass
class Workers:
    tasks: list[asyncio.Task] = field(default_factory=list)
    webhooks: WebhookWorker | None = None
    inbound: InboundProcessor | None = None
    outbound: OutboundWorker | None = None
    routing: RoutingEngine | None = None

    async def stop(self, grace_seconds: float = 0.0) -> None:
        """Stop claiming new work; give documents already being sent up to `grace_seconds` to finish
        (anything still in flight afterwards keeps its lease and is resumed, with the same
        MessageId, once the lease expires), then cancel the tasks."""
        if self.outbound is not None and grace_seconds > 0:
            await self.outbound.stop_claiming(grace_seconds)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait(self) -> None:
        """Until a worker task ends (they only end by cancellation or a bug)."""
        if self.tasks:
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)


def start_workers(svc: Services, ap, discovery, kinds: tuple[str, ...] = KINDS) -> Workers:
    """Start the workers in `kinds` on the running loop and register them in `svc.extra`.

    The outbox worker needs an AP identity (`ap`) and discovery; without an identity it is skipped.
    """
    w = Workers()
    if "webhooks" in kinds:
        w.webhooks = WebhookWorker(svc.engine, svc.settings)
        svc.extra["webhooks"] = w.webhooks
        w.tasks.append(asyncio.create_task(w.webhooks.run(), name="webhooks"))
    if "inbound" in kinds:
        w.inbound = InboundProcessor(svc.engine, svc.payloads, svc.validation,
                                     on_notify=w.webhooks.wake if w.webhooks else None)
        svc.extra["inbound"] = w.inbound
        w.tasks.append(asyncio.create_task(w.inbound.run(), name="inbound"))
    if "outbound" in kinds:
        if ap is None:
            log.info("no [ap] identity configured: the outbox worker is not started")
        else:
            w.outbound = OutboundWorker(svc.engine, svc.payloads, svc.settings, ap, discovery)
            svc.extra["outbound"] = w.outbound
            w.tasks.append(asyncio.create_task(w.outbound.run(), name="outbound"))
    if "routing" in kinds:
        w.routing = RoutingEngine(svc.engine, svc.payloads, svc.settings,
                                  track_interval=svc.settings.routing.track_seconds)
        svc.extra["routing"] = w.routing
        w.tasks.append(asyncio.create_task(w.routing.run(), name="routing"))
    return w
