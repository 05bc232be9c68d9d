"""lamina's global random state: one NumPy PCG64 generator, reseeded by manual_seed."""
import numpy as np

_generator = np.random.Generator(np.random.PCG64())


def manual_seed(seed):
    """Seed every random draw lamina makes (init, rand/randn, dropout, DataLoader default).

    >>> import lamina
    >>> _ = lamina.manual_seed(0); a = lamina.randn(2).numpy()
    >>> _ = lamina.manual_seed(0); b = lamina.randn(2).numpy()
    >>> bool((a == b).all())
    True
    """
    global _generator
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed}")
    _generator = np.random.Generator(np.random.PCG64(seed))
    return _generator


def default_generator():
    return _generator


def get_rng_state():
    """A JSON-able snapshot of the generator (for checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state):
    _generator.bit_generator.state = state
