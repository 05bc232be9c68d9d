"""CheckpointError on its own, so serialization and the torch-pickle reader can both raise it
without importing each other (no import circle)."""


class CheckpointError(ValueError):
    """A checkpoint file that is malformed, truncated, or not a format lamina reads."""
