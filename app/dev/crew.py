"""The workers ``tide dev`` runs, as the rest of it sees them: a fixed fleet (``--workers N``) or
the scaler's (:class:`app.dev.autoscale.DevScaler`), each able to say how many run, how many are
wanted, and why they cannot run."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from app.process.fleet import WorkerFleet


class Crew(Protocol):
    """The workers, fixed or scaled: ``failed`` is set, with ``failure`` saying why, when they
    cannot run."""

    @property
    def failed(self) -> asyncio.Event: ...

    @property
    def failure(self) -> str | None: ...

    def counts(self) -> tuple[int, int]:
        """(workers running, workers wanted), for the flow line."""
        ...

    def describe(self, concurrency: int) -> list[str]:
        """The banner's lines about the workers."""
        ...


@dataclass(frozen=True, slots=True)
class FixedCrew:
    """``--workers N``: a fleet of N, no scaler."""

    fleet: WorkerFleet

    @property
    def failed(self) -> asyncio.Event:
        return self.fleet.failed

    @property
    def failure(self) -> str | None:
        return self.fleet.failure

    def counts(self) -> tuple[int, int]:
        return self.fleet.alive(), self.fleet.count

    def describe(self, concurrency: int) -> list[str]:
        return [f"Workers:  {self.fleet.count} x {concurrency} jobs (--workers: fixed, no scaler)"]
