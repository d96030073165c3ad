"""What the live endpoints send, encoded once as the bytes of a text frame: a change is
encoded once whoever receives it, a batch once per audience, never once per socket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.core.events import JobEvent


def job_of(event: JobEvent) -> dict[str, str]:
    """What a frame says of the job: what the change itself carries. More of the record would
    cost a read per change, which 10,000 changes/s cannot afford; a client reads the job."""
    return {
        "id": event.job_id,
        "status": event.status,
        "queue": event.queue,
        "tenant": event.tenant,
    }


def change(event: JobEvent) -> dict[str, Any]:
    return {"event_id": event.event_id, "job": job_of(event)}


def frame(op: str, **fields: Any) -> bytes:
    return orjson.dumps({"op": op, **fields})


def event_frame(event: JobEvent) -> bytes:
    return frame("event", **change(event))


def events_frame(events: list[JobEvent]) -> bytes:
    return frame("events", events=[change(e) for e in events])


def wire(payload: bytes) -> bytes:
    """A whole WebSocket text frame as a server sends it (final, unmasked, uncompressed)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return head + payload


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """Changes in order, sent as one ``events`` frame to subscribers that asked for batches;
    ``wire`` is that frame ready for a socket's transport, built once for all of them."""

    events: list[JobEvent]
    frame: bytes
    wire: bytes

    @classmethod
    def of(cls, events: list[JobEvent]) -> Batch:
        frame = events_frame(events)
        return cls(events, frame, wire(frame))
