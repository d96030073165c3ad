"""The queue core: the only code that talks to Redis, shared by every process kind (DESIGN §1)."""
