"""CheckpointError, in a module of its own so that serialization.py and _torch_pickle.py (which
serialization imports to read torch.save files) both use it without importing each other."""


class CheckpointError(ValueError):
    """A checkpoint file that is malformed, truncated, or not a format lamina reads."""
