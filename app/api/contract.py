"""Request models the document describes before a handler exists for them: the event queries
of live updates (DESIGN §5). The handlers' own models are in ``schemas.py``; what the API answers
is in :mod:`app.wire`, shared with the client. Unknown fields are refused (422).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EventsQuery(BaseModel):
    """Query of ``GET /v1/events``: changes after ``after``, waiting up to ``timeout_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: str | None = Field(default=None, pattern=r"^\d+-\d+$", description="An event id.")
    timeout_s: float = Field(default=25, ge=0, le=60)
