"""The scaler's poll loop: lead or stand by, read the signals, decide, act, remember.

Every scaler ticks; each tick takes or renews the leader lock (a standby tries to take it). At
each poll the leader reads, calls the pure policy, tells the backend, and commits the new state
and the decision under its fence; a standby only reads, to answer ``/health`` truthfully.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

import structlog
from redis.exceptions import RedisError

from app.core.queue import Queue
from app.core.scaler_signals import ScalerReadings, read_scaler_inputs
from app.core.scaler_state import Lead, ScalerRecord
from scaler.backends import Backend, BackendError
from scaler.policy import Action, Decision, PolicyState, Signals, decide
from scaler.settings import ScalerSettings

log = structlog.get_logger("tide.scaler")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the last tick saw, for the HTTP endpoints."""

    role: str
    """``starting``, ``leader``, ``standby`` or ``unavailable`` (Redis or the backend failed)."""
    workers: int = 0
    signals: Signals | None = None


def new_record(queue: Queue, settings: ScalerSettings) -> ScalerRecord:
    """This process's handle on the shared record, under an owner name no other scaler has."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return ScalerRecord(
        queue.redis,
        queue.keys,
        owner,
        settings.scaler_lock_ttl_ms,
        settings.scaler_decisions_maxlen,
    )


class Scaler:
    def __init__(
        self, queue: Queue, record: ScalerRecord, backend: Backend, settings: ScalerSettings
    ) -> None:
        self.queue = queue
        self.record = record
        self.backend = backend
        self.settings = settings
        self.config = settings.policy
        self.snapshot = Snapshot("starting")
        self._fence: int | None = None
        self._next_poll = 0.0

    @property
    def tick_s(self) -> float:
        """Often enough to renew the lock three times per TTL, and to poll on time."""
        return min(self.settings.poll_interval_ms, self.settings.scaler_lock_ttl_ms / 3) / 1000

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop``; then give the lock up so a standby takes over at once."""
        try:
            while not stop.is_set():
                await self.tick()
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick_s)
        finally:
            if self._fence is not None:
                with suppress(RedisError):
                    await self.record.resign(self._fence)
                log.info("scaler.resigned", fence=self._fence)

    async def tick(self) -> None:
        try:
            lead = await self.record.lead()
        except RedisError as exc:
            self._unavailable("redis", exc)
            return
        if lead.fence is not None and lead.fence != self._fence:
            log.info("scaler.leading", fence=lead.fence, owner=self.record.owner)
            self._next_poll = 0.0  # a new leader decides at once
        elif lead.fence is None and self._fence is not None:
            log.warning("scaler.standing_by", leader=lead.leader)
        self._fence = lead.fence
        if time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + self.settings.poll_interval_ms / 1000
        try:
            await self.poll(lead)
        except RedisError as exc:
            self._unavailable("redis", exc)
        except BackendError as exc:
            self._unavailable(self.backend.name, exc)

    def _unavailable(self, what: str, exc: Exception) -> None:
        log.warning("scaler.unavailable", source=what, error=str(exc) or repr(exc))
        self.snapshot = replace(self.snapshot, role="unavailable")

    async def poll(self, lead: Lead) -> None:
        readings = await read_scaler_inputs(self.queue, self.settings.watched, lead.now_ms)
        stored = lead.state or {}
        last: dict[str, Any] = stored.get("decision") or {}
        if lead.fence is None:
            signals = self._signals(readings, int(last.get("desired", 0)))
            self.snapshot = Snapshot("standby", signals.current, signals)
            return
        current = await self.backend.current()
        signals = self._signals(
            readings, int(last.get("desired", 0)) if current is None else current
        )
        previous = PolicyState.from_dict(stored.get("policy") or {})
        decision, state = decide(signals, previous, self.config, lead.now_ms)
        applied = await self._apply(decision)
        if not applied:
            state = replace(state, last_change_ms=previous.last_change_ms)
            decision = replace(
                decision, desired=decision.current, reason=f"{decision.reason}; NOT APPLIED"
            )
        entry = {
            "at_ms": lead.now_ms,
            **decision.to_dict(),
            "applied": applied,
            "live_workers": len(readings.workers),
            "oldest_waiting_age_s": _oldest(readings),
            "backend": self.backend.name,
            "leader": self.record.owner,
            "fence": lead.fence,
        }
        if not await self.record.commit(
            lead.fence, {"policy": state.to_dict(), "decision": entry}, entry
        ):
            log.warning("scaler.fenced_out", fence=lead.fence)
            self._fence = None
            return
        level = log.info if decision.action is not Action.HOLD else log.debug
        level("scaler.decision", **entry)
        self.snapshot = Snapshot(
            "leader", decision.desired, replace(signals, current=decision.desired)
        )

    async def _apply(self, decision: Decision) -> bool:
        if decision.desired == decision.current:
            return True
        try:
            await self.backend.scale(decision.desired)
        except BackendError as exc:
            log.error(
                "scaler.scale_failed",
                backend=self.backend.name,
                workers=decision.desired,
                error=str(exc) or repr(exc),
            )
            return False
        return True

    def _signals(self, readings: ScalerReadings, current: int) -> Signals:
        limiter = readings.limiter
        return Signals(
            waiting=sum(q.waiting for q in readings.queues),
            running=sum(q.running for q in readings.queues),
            due_delayed=readings.due_delayed,
            current=current,
            rpm_used=limiter.used if limiter else None,
            rpm_limit=limiter.limit if limiter else self.settings.global_rpm_limit or None,
        )


def _oldest(readings: ScalerReadings) -> float | None:
    ages = [q.oldest_waiting_age_s for q in readings.queues if q.oldest_waiting_age_s is not None]
    return max(ages, default=None)
