"""Where the scaler's decisions take effect: railway, local or log, behind one Protocol."""

from __future__ import annotations

from typing import Protocol


class BackendError(Exception):
    """The backend could not read or set the worker count; the next poll tries again."""


class BackendMisconfigured(BackendError):
    """The backend's settings are wrong (a bad token, an unknown id): no retry will help."""


class Backend(Protocol):
    name: str

    async def start(self) -> None:
        """Check the settings against the world; raises :class:`BackendMisconfigured`."""

    async def current(self) -> int | None:
        """Workers running (committed) now; None for a backend that cannot tell."""

    async def scale(self, workers: int) -> None:
        """Run ``workers`` workers from now on; raises :class:`BackendError` on failure."""

    async def close(self) -> None:
        """Release what the backend holds (the local backend drains its workers)."""
