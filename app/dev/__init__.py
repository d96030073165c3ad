"""Local tooling (``tide dev``, the demo, ``tide bench``, a private redis-server); CLI only."""
