"""Request models the document describes before a handler exists for them: the event queries
of live updates (DESIGN §5). The handlers' own models are in ``schemas.py``; what the API answers
is in :mod:`app.wire`, shared with the client. Unknown fields are refused (422).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.core.events import EVENT_ID_PATTERN


class EventsQuery(BaseModel):
    """Query of ``GET /v1/events``: changes after ``after``, waiting up to ``timeout_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: str | None = Field(
        default=None,
        pattern=EVENT_ID_PATTERN,
        description="An event id (`<entry>:<index>`), or an entry id for after all its "
        "changes. Absent: only changes from now on.",
    )
    timeout_s: float = Field(
        default=25, ge=0, le=30, description="Seconds to wait when nothing is there yet."
    )
