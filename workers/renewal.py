"""Lease renewal: the leases a worker holds, extended together once per beat.

Modelled on BullMQ's ``LockManager``: attempts are tracked when they start and untracked when they
end, and one batched, fenced extend per beat says which leases were lost to another worker and
which jobs were asked to cancel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.leases import Lease, LeaseClient, LeaseState

LeaseKey = tuple[str, str]
"""(queue, entry id): what identifies a lease among a worker's pending entries."""


def lease_key(lease: Lease) -> LeaseKey:
    return lease.queue, lease.entry


@dataclass(frozen=True, slots=True)
class Beat:
    """What one renewal found: leases now owned by someone else, and jobs asked to cancel."""

    lost: list[Lease] = field(default_factory=list)
    cancel_requested: list[Lease] = field(default_factory=list)


class LeaseRenewal:
    """Keeps the tracked leases alive, one extend.lua call per batch per beat."""

    def __init__(self, leases: LeaseClient) -> None:
        self._client = leases
        self._held: dict[LeaseKey, Lease] = {}

    def track(self, lease: Lease) -> None:
        self._held[lease_key(lease)] = lease

    def untrack(self, lease: Lease) -> None:
        self._held.pop(lease_key(lease), None)

    def holds(self, lease: Lease) -> bool:
        return lease_key(lease) in self._held

    def __len__(self) -> int:
        return len(self._held)

    async def beat(self) -> Beat:
        """Extend every tracked lease; report the lost and the cancel-requested ones."""
        held = list(self._held.values())
        beat = Beat()
        if not held:
            return beat
        for lease, state in zip(held, await self._client.extend(held), strict=True):
            if state is LeaseState.LOST:
                beat.lost.append(lease)
            elif state is LeaseState.CANCEL_REQUESTED:
                beat.cancel_requested.append(lease)
        return beat
