"""Tide's worker runtime (``tide worker``). Task authors import from :mod:`tide`, not from here."""
