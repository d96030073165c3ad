"""What every Tide process runs on, with no Redis knowledge: logging, signals, the loop, HTTP."""
