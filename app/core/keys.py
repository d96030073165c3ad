"""Every Redis key Tide uses, built in one place.

All keys share one prefix that carries a Redis Cluster hash tag (default ``{tide}``), so a whole
deployment lives in one slot and multi-key Lua scripts stay legal. The scripts get the prefix as
their one declared key and build their key names from it (``lua/include/head.lua`` spells the
names below again; ``tests/app/core/test_keys.py`` holds the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "workers"
"""The consumer group every queue stream is read through."""
GLOBAL_LIMITER = "global"
"""Name of the limiter ``GLOBAL_RPM_LIMIT`` configures; no named limiter may take it."""


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "{tide}"

    @property
    def job_prefix(self) -> str:
        return f"{self.prefix}:job:"

    @property
    def queue_prefix(self) -> str:
        return f"{self.prefix}:q:"

    @property
    def dead_prefix(self) -> str:
        return f"{self.prefix}:dead:"

    def job(self, job_id: str) -> str:
        """Hash holding one job's record."""
        return self.job_prefix + job_id

    def queue(self, name: str) -> str:
        """Stream of entries waiting for, or leased by, a worker."""
        return self.queue_prefix + name

    def dead(self, queue: str) -> str:
        """Dead-letter stream of one queue."""
        return self.dead_prefix + queue

    @property
    def delayed(self) -> str:
        """Sorted set of job ids scored by due time (ms, server clock)."""
        return f"{self.prefix}:delayed"

    @property
    def scheduled_counts(self) -> str:
        """Hash queue -> number of that queue's jobs in ``delayed`` (kept by the scripts)."""
        return f"{self.prefix}:scheduled"

    @property
    def events(self) -> str:
        """Capped stream of job status changes for live subscribers."""
        return f"{self.prefix}:events"

    @property
    def events_count(self) -> str:
        """Counter of the status changes ever appended to ``events``: the running count ``c`` of
        its newest entry, kept by ``done.lua`` so that it need not read that entry."""
        return f"{self.events}:count"

    @property
    def events_marks(self) -> str:
        """List of ``<entry id> <running count>``, one every 64th of ``EVENTS_MAX_CHANGES``:
        where ``done.lua`` cuts the capped stream without reading its entries."""
        return f"{self.events}:marks"

    def finished(self, minute: int) -> str:
        """Hash queue -> jobs that reached a terminal state in that minute since the epoch
        (server clock), kept three minutes. ``done.lua`` builds it from the events key."""
        return f"{self.events}:finished:{minute}"

    @property
    def workers(self) -> str:
        """Hash worker id -> JSON description of a live worker."""
        return f"{self.prefix}:workers"

    @property
    def workers_seen(self) -> str:
        """Sorted set worker id -> last heartbeat (ms, server clock); prunes dead workers."""
        return f"{self.prefix}:workers:seen"

    @property
    def metrics(self) -> str:
        """Hash of fleet-wide counters (jobs ended per queue, status and tenant, job durations,
        leases lost, entries reclaimed), kept by the scripts in the call that changes state."""
        return f"{self.prefix}:metrics"

    @property
    def tenant_gauges(self) -> str:
        """Hash ``<tenant>\\n<status>`` -> the tenant's jobs pending, running or scheduled
        (absent: none), kept by the scripts in the call that changes a status (``gauges.lua``)."""
        return f"{self.metrics}:tenants"

    @property
    def queues(self) -> str:
        """Set of the queue names in use: added by submit, dropped once empty and idle."""
        return f"{self.prefix}:queues"

    # -- rate limiters (GCRA, app/core/limiter.py): the global one and the named ones ----------

    def limiter(self, name: str) -> str:
        """String: the limiter's theoretical arrival time (ms, server clock); ``P:rpm`` for the
        global limiter, ``P:limit:<name>`` for a named one."""
        return f"{self.prefix}:rpm" if name == GLOBAL_LIMITER else f"{self.prefix}:limit:{name}"

    def limiter_starts(self, name: str) -> str:
        """Sorted set of the turns the limiter granted over its last period, scored by their time:
        its usage, as the scaler and the metrics read it."""
        return f"{self.limiter(name)}:starts"

    # -- the scaler's shared record (DESIGN §7): leader lock, memory, decision log -------------

    @property
    def scaler_leader(self) -> str:
        """Hash owner, fence of the acting scaler; expires unless that scaler renews it."""
        return f"{self.prefix}:scaler:leader"

    @property
    def scaler_fence(self) -> str:
        """Counter raised at each new leadership: the fencing token of the scaler's writes."""
        return f"{self.prefix}:scaler:fence"

    @property
    def scaler_state(self) -> str:
        """JSON string: the policy's memory (cooldown timestamps, window) and the last decision."""
        return f"{self.prefix}:scaler:state"

    @property
    def scaler_decisions(self) -> str:
        """Capped stream of the scaler's decisions with their reasons, for the dashboard."""
        return f"{self.prefix}:scaler:decisions"

    # -- tenants (DESIGN §4): API keys, limits, idempotency, the recent-jobs index -------------
    # Scripts reach a tenant's keys as TENANT .. tenant .. suffix (head.lua), so the suffixes
    # below are also spelled in app/core/lua/include/tenants.lua.

    @property
    def tenant_prefix(self) -> str:
        return f"{self.prefix}:tenant:"

    def tenant_active(self, tenant: str) -> str:
        """Counter of the tenant's non-terminal jobs (absent = 0); kept by the scripts."""
        return f"{self.tenant_prefix}{tenant}:active"

    def tenant_rpm(self, tenant: str) -> str:
        """Hash second -> submissions in that second, for the last minute (rolling RPM)."""
        return f"{self.tenant_prefix}{tenant}:rpm"

    def tenant_rpm_summary(self, tenant: str) -> str:
        """Hash ``used`` (submissions in the minute) and ``oldest`` (its oldest second): what a
        submit reads instead of every second. A key of its own, so that a script of an earlier
        release, which reads every field of ``tenant_rpm`` as a second, never meets it."""
        return f"{self.tenant_prefix}{tenant}:rpm:summary"

    def tenant_dead(self, tenant: str) -> str:
        """Sorted set job id -> when its record expires (ms, server clock): the tenant's failed
        (dead-lettered) jobs; those whose time has not come are still kept, so retryable."""
        return f"{self.tenant_prefix}{tenant}:dead"

    def tenant_jobs(self, tenant: str) -> str:
        """Sorted set job id -> created (ms): the tenant's recent jobs, for listing."""
        return f"{self.tenant_prefix}{tenant}:jobs"

    @property
    def idempotency_prefix(self) -> str:
        return f"{self.prefix}:idem:"

    def idempotency(self, tenant: str, key: str) -> str:
        """Hash job, fingerprint of a tenant's ``Idempotency-Key``; expires."""
        return f"{self.idempotency_prefix}{tenant}:{key}"

    @property
    def api_key_prefix(self) -> str:
        return f"{self.prefix}:apikey:"

    def api_key(self, digest: str) -> str:
        """Hash of an API key found by its SHA-256 digest: tenant, key id, admin, limits."""
        return self.api_key_prefix + digest

    @property
    def api_key_ids(self) -> str:
        """Hash key id -> digest: lists and revokes keys without their secrets."""
        return f"{self.prefix}:apikeys"

    # -- live updates (DESIGN §5): WebSocket tickets for browsers ------------------------------

    def ws_ticket(self, digest: str) -> str:
        """JSON string: who a WebSocket ticket (found by its SHA-256 digest) acts for; expires."""
        return f"{self.prefix}:wsticket:{digest}"
