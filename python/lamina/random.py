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


class Generator:
    """A random generator of its own, as PyTorch's `torch.Generator`: pass it as `generator=` to
    `random_split`, `RandomSampler`, `DataLoader`, `randperm`, `rand`, `randn`, `randint`.

    >>> import lamina
    >>> g = lamina.Generator().manual_seed(42)
    >>> a = lamina.randperm(5, generator=g).tolist()
    >>> a == lamina.randperm(5, generator=lamina.Generator().manual_seed(42)).tolist()
    True
    """

    def __init__(self, device="cpu"):
        from ._device import check_device
        self.device = check_device(device)
        # Unseeded: a fresh seed from the OS entropy pool, as PyTorch's default does.
        self._seed = int(np.random.SeedSequence().entropy % (1 << 63))
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed):
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed}")
        self._seed = seed
        self._rng = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self):
        """Reseed from the OS entropy pool and return the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy % (1 << 63)))
        return self._seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return self._rng.bit_generator.state

    def set_state(self, state):
        self._rng.bit_generator.state = state
        return self

    @property
    def numpy_generator(self) -> np.random.Generator:
        """The NumPy generator that draws for this Generator."""
        return self._rng


def generator_of(generator=None) -> np.random.Generator:
    """The NumPy generator behind `generator` (a lamina.Generator), or lamina's global one."""
    if generator is None:
        return _generator
    if isinstance(generator, Generator):
        return generator.numpy_generator
    raise TypeError(f"generator: expected a lamina.Generator or None, got {type(generator).__name__}")
