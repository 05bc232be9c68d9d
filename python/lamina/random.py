"""lamina's random numbers: PyTorch's CPU generator, draw for draw.

A Generator is a Mersenne Twister (MT19937, seeded as C++'s std::mt19937 is) and every draw turns
its 32- or 64-bit outputs into values the way PyTorch's CPU kernels do, so that code ported from
PyTorch with only its imports changed starts from the same random numbers: `manual_seed(0)` then
`randn`, `rand`, `randint`, `randperm`, `uniform_`/`normal_` and the `nn` initializers give
PyTorch's values. How each draw is made (what PyTorch 2.x does on an x86 CPU with AVX2, checked
against it in tests/test_random_torch.py):

- float32 uniform [0, 1): the low 24 bits of one 32-bit output, times 2^-24; float64: the low 53
  bits of a 64-bit output (two 32-bit ones, the first in the high half), times 2^-53.
- uniform(a, b): u * (b - a) + a in the tensor's dtype, fused (one rounding).
- normal, 16 or more float32 values: all the uniforms first, then Box-Muller on each block of 16
  (value j pairs with j + 8), with PyTorch's AVX2 single-precision log and sincos (Cephes
  polynomials, csrc/random_kernel.h) so that the bits agree; a ragged tail redraws 16 uniforms
  for the last 16 values.
  float64: the same blocks in double precision.
- normal, fewer than 16 values: each from two float64 uniforms, Box-Muller in double, and the
  sine half is cached on the generator for the next such draw.
- randint(low, high): the output (32-bit if high - low < 2^32, else 64-bit) mod (high - low), + low.
- randperm(n): a forward Fisher-Yates shuffle with 32-bit outputs mod (n - i).
- bernoulli(p) (dropout's masks): a float64 uniform per value, kept when below p; with a tensor
  of probabilities, a uniform of the probabilities' dtype per value.
- exponential(lambd): -log1p(-u) / lambd from a float64 uniform; multinomial without replacement
  (or one sample) races p / q with q ~ Exp(1); with replacement, a float64 uniform per draw
  searched in the row's normalized running sums.
PyTorch's released wheels have MKL's random streams switched off for bernoulli_ and exponential_
(its DistributionKernels.cpp: only its internal builds use them), so these hold on every CPU.
"""
import functools
import math
import threading

import numpy as np

_MASK24 = np.uint64((1 << 24) - 1)
_MASK53 = np.uint64((1 << 53) - 1)
# A fresh Generator's seed before manual_seed, as PyTorch's torch.Generator() (its default
# generator instead starts from the OS entropy pool, as lamina's does).
DEFAULT_GENERATOR_SEED = 67280421310721


def _seed_value(seed):
    """PyTorch's accepted seeds: [-2^63, 2^64); a negative one counts as seed + 2^64."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise TypeError(f"seed: expected an integer, got {type(seed).__name__}") from None
    seed = int(seed)
    if not -(1 << 63) <= seed < (1 << 64):
        raise ValueError(f"seed: expected an integer in [-2**63, 2**64), got {seed}")
    return seed + (1 << 64) if seed < 0 else seed


def _mt_key(seed32):
    """The MT19937 state std::mt19937(seed) starts from (Matsumoto and Nishimura's init_genrand)."""
    key = np.empty(624, dtype=np.uint32)
    s = seed32
    for i in range(624):
        key[i] = s
        s = (1812433253 * (s ^ (s >> 30)) + i + 1) & 0xFFFFFFFF
    return key


def _fused(x, scale, shift):
    """x * scale + shift rounded once, in x's dtype, in place (x: a fresh C-contiguous array of
    this module's): the random family's C++ kernel."""
    from . import _C
    _C.fused_scale_shift(x, x, float(scale), float(shift))
    return x


def _locked(method):
    """One draw at a time per generator, whole (PyTorch holds its generator's mutex for a whole
    kernel): two threads never interleave inside one draw, e.g. between a normal's blocks and
    its ragged tail."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return run


class Generator:
    """A random generator of its own, as PyTorch's `torch.Generator`: pass it as `generator=` to
    `random_split`, `RandomSampler`, `DataLoader`, `randperm`, `rand`, `randn`, `randint`. Draws
    are PyTorch's (see the module docstring); an unseeded one starts from PyTorch's fixed seed.

    >>> import lamina
    >>> g = lamina.Generator().manual_seed(42)
    >>> a = lamina.randperm(5, generator=g).tolist()
    >>> a == lamina.randperm(5, generator=lamina.Generator().manual_seed(42)).tolist()
    True
    """

    def __init__(self, device="cpu"):
        from ._device import check_device
        self.device = check_device(device)
        self._lock = threading.RLock()
        self.manual_seed(DEFAULT_GENERATOR_SEED)

    # Pickling and copying carry the state, not the lock (DataLoader workers, deepcopy of a
    # dataset or model that holds a generator).
    def __getstate__(self):
        return {"device": self.device, "state": self.get_state()}

    def __setstate__(self, saved):
        self.device = saved["device"]
        self._lock = threading.RLock()
        self._bits = np.random.MT19937()
        self.set_state(saved["state"])

    # ---- seeding and state
    @_locked
    def manual_seed(self, seed):
        seed = _seed_value(seed)
        self._seed = seed
        self._bits = np.random.MT19937()
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": _mt_key(seed & 0xFFFFFFFF), "pos": 624}}
        self._next_double_normal = None  # Box-Muller's cached sine half (float64 draws)
        return self

    def seed(self):
        """Reseed from the OS entropy pool and return the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy % (1 << 63)))
        return self._seed

    def initial_seed(self):
        return self._seed

    @_locked
    def get_state(self):
        """A JSON-able snapshot: the twister's 624 words and position, and the cached normals."""
        st = self._bits.state["state"]
        return {"generator": "lamina.MT19937", "seed": self._seed, "key": [int(v) for v in st["key"]],
                "pos": int(st["pos"]), "next_double_normal": self._next_double_normal}

    @_locked
    def set_state(self, state):
        if not isinstance(state, dict) or state.get("generator") != "lamina.MT19937":
            got = state.get("bit_generator", state.get("generator")) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state: expected a lamina.MT19937 state from get_state(), got {got!r} "
                             f"(states saved before lamina drew PyTorch's numbers cannot be restored)")
        key = np.asarray(state["key"], dtype=np.uint32)
        if key.shape != (624,) or not 0 <= int(state["pos"]) <= 624:
            raise ValueError(f"state: expected 624 key words and pos in [0, 624], got {key.shape[0]} and {state['pos']}")
        self._seed = int(state.get("seed", 0))
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": int(state["pos"])}}
        self._next_double_normal = state.get("next_double_normal")
        return self

    # ---- raw outputs
    def _u32(self, n):
        return self._bits.random_raw(int(n)).astype(np.uint64)

    def _u64(self, n):
        r = self._u32(2 * int(n))
        return (r[0::2] << np.uint64(32)) | r[1::2]

    def _uniform01(self, n, dtype):
        if np.dtype(dtype) == np.float64:
            return (self._u64(n) & _MASK53).astype(np.float64) * 2.0 ** -53
        return (self._u32(n) & _MASK24).astype(np.float32) * np.float32(2.0 ** -24)

    # ---- draws (NumPy Generator's method names, PyTorch's values)
    @_locked
    def random(self, size=None, dtype=np.float32):
        """Uniform on [0, 1): torch.rand."""
        n, shape = _count(size)
        out = self._uniform01(n, _float_dtype(dtype)).reshape(shape)
        return out.item() if size is None else out

    @_locked
    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float32):
        """Uniform on [low, high): Tensor.uniform_(low, high)."""
        dtype = _float_dtype(dtype)
        n, shape = _count(size)
        u = self._uniform01(n, dtype)
        if dtype == np.float64:
            out = _fused(u, float(high) - float(low), float(low))
        else:  # the bounds in float32 first, their difference in float32
            lo, hi = np.float32(low), np.float32(high)
            out = _fused(u, hi - lo, lo)
        out = out.reshape(shape)
        return out.item() if size is None else out

    def standard_normal(self, size=None, dtype=np.float32):
        """torch.randn."""
        return self.normal(0.0, 1.0, size, dtype)

    @_locked
    def normal(self, loc=0.0, scale=1.0, size=None, dtype=np.float32):
        """Tensor.normal_(mean, std)."""
        dtype = _float_dtype(dtype)
        n, shape = _count(size)
        if n >= 16:
            out = self._normal_blocks(n, dtype, float(loc), float(scale))
        else:
            out = np.array([self._normal_one(float(loc), float(scale)) for _ in range(n)], dtype=np.float64)
            out = out.astype(dtype)
        out = out.reshape(shape)
        return out.item() if size is None else out

    def _normal_blocks(self, n, dtype, mean, std):
        from . import _C
        out = self._uniform01(n, dtype)
        blocks = n // 16
        _C.normal_blocks(out[:blocks * 16], mean, std)  # in place, 16 uniforms per block
        if n % 16:  # the last 16 values again, from 16 fresh uniforms
            tail = self._uniform01(16, dtype)
            _C.normal_blocks(tail, mean, std)
            out[n - 16:] = tail
        return out

    def _normal_one(self, mean, std):
        if self._next_double_normal is not None:
            z, self._next_double_normal = self._next_double_normal, None
        else:
            u1, u2 = self._uniform01(2, np.float64)
            r = math.sqrt(-2.0 * math.log1p(-float(u2)))
            theta = 2.0 * math.pi * float(u1)
            self._next_double_normal = r * math.sin(theta)
            z = r * math.cos(theta)
        return float(_fused(np.array([z]), std, mean)[0])

    @_locked
    def integers(self, low, high=None, size=None):
        """Integers in [low, high): torch.randint (int64)."""
        if high is None:
            low, high = 0, low
        low, high = int(low), int(high)
        if high <= low:
            raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
        n, shape = _count(size)
        span = high - low
        raw = self._u32(n) if span < (1 << 32) else self._u64(n)
        out = ((raw % np.uint64(span)).astype(np.int64) + np.int64(low)).reshape(shape)
        return int(out.item()) if size is None else out

    @_locked
    def bernoulli(self, p, size=None):
        """True with probability p: Tensor.bernoulli_(p) as PyTorch's CPU kernel draws it (a
        float64 uniform per value, true when below p); dropout's masks."""
        n, shape = _count(size)
        out = (self._uniform01(n, np.float64) < float(p)).reshape(shape)
        return bool(out.item()) if size is None else out

    @_locked
    def bernoulli_probs(self, probs):
        """One draw per element of the array `probs`: torch.bernoulli(probs). float64
        probabilities are compared with 53-bit uniforms, any other float dtype with 24-bit ones."""
        probs = np.asarray(probs)
        if probs.dtype == np.float64:
            return self._uniform01(probs.size, np.float64).reshape(probs.shape) < probs
        return self._uniform01(probs.size, np.float32).reshape(probs.shape) < probs.astype(np.float32)

    @_locked
    def exponential(self, lambd=1.0, size=None, dtype=np.float32):
        """Tensor.exponential_(lambd): -log1p(-u) / lambd from a float64 uniform, in float64."""
        dtype = _float_dtype(dtype)
        n, shape = _count(size)
        u = self._uniform01(n, np.float64)
        log1p = np.fromiter(map(math.log1p, (-u).tolist()), np.float64, n)  # C's log1p, to the bit
        out = ((-1.0 / float(lambd)) * log1p).astype(dtype).reshape(shape)
        return out.item() if size is None else out

    @_locked
    def random_full(self, size, dtype):
        """Tensor.random_() with no bounds: [0, 2^mantissa] for floats, [0, max] for integers."""
        d = np.dtype(dtype)
        n, shape = _count(size)
        wide = d in (np.dtype(np.float64), np.dtype(np.int64))
        raw = self._u64(n) if wide else self._u32(n)
        if d == np.bool_:
            top = 1
        elif d.kind == "f":
            top = 1 << (53 if d == np.float64 else 24)
        else:
            top = int(np.iinfo(d).max)
        return (raw % np.uint64(top + 1)).astype(d).reshape(shape)

    @_locked
    def multinomial(self, probs, num_samples, replacement=False):
        """torch.multinomial over the rows of the 2-D array `probs` (int64 indices)."""
        probs = np.asarray(probs)
        rows, k = probs.shape
        out = np.empty((rows, num_samples), dtype=np.int64)
        if not replacement or num_samples == 1:
            # Exponential races (PyTorch's CPU path): the largest p / q, q ~ Exp(1), one q per entry.
            q = self.exponential(1.0, probs.shape, np.float64 if probs.dtype == np.float64 else np.float32)
            with np.errstate(divide="ignore", invalid="ignore"):
                keys = probs / q
            if num_samples == 1:
                return np.argmax(keys, axis=-1).reshape(rows, 1).astype(np.int64)
            order = np.argsort(-keys, axis=-1, kind="stable")
            return order[:, :num_samples].astype(np.int64)
        for r in range(rows):  # inverse CDF: a float64 uniform per draw, binary search in the CDF
            # float64 running sums stored in the row's dtype, then each divided by the float64 total
            dt = np.float64 if probs.dtype == np.float64 else np.float32
            sums = np.cumsum(probs[r].astype(np.float64))
            cdf = (sums.astype(dt).astype(np.float64) / sums[-1]).astype(dt)
            u = self._uniform01(num_samples, np.float64)
            out[r] = np.searchsorted(cdf, u, side="left")
        return out

    @_locked
    def random_int64(self):
        """torch.empty((), dtype=torch.int64).random_(): 64 bits mod 2^63 (DataLoader's seeds)."""
        return int(self._u64(1)[0]) % (1 << 63)

    @_locked
    def permutation(self, n):
        """torch.randperm(n)."""
        n = int(n)
        if n < 0:
            raise ValueError(f"randperm: n must be non-negative, got {n}")
        perm = list(range(n))
        if n > 1:
            picks = (self._u32(n - 1) % np.arange(n, 1, -1, dtype=np.uint64)).tolist()
            for i, k in enumerate(picks):
                k += i
                perm[i], perm[k] = perm[k], perm[i]
        return np.array(perm, dtype=np.int64)


def _count(size):
    shape = () if size is None else (tuple(int(s) for s in size) if isinstance(size, (tuple, list)) else (int(size),))
    return int(np.prod(shape, dtype=np.int64)), shape


def _float_dtype(dtype):
    d = np.dtype(dtype)
    if d not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {d}")
    return d


# The global generator: seeded from the OS entropy pool until manual_seed, as PyTorch's default.
_generator = Generator()
_generator.seed()


def manual_seed(seed):
    """Seed every random draw lamina makes (init, rand/randn, dropout, DataLoader default).

    >>> import lamina
    >>> _ = lamina.manual_seed(0); a = lamina.randn(2).numpy()
    >>> _ = lamina.manual_seed(0); b = lamina.randn(2).numpy()
    >>> bool((a == b).all())
    True
    """
    return _generator.manual_seed(seed)


def initial_seed():
    return _generator.initial_seed()


def seed():
    """Reseed the global generator from the OS entropy pool; returns the seed."""
    return _generator.seed()


def default_generator():
    return _generator


def get_rng_state():
    """A JSON-able snapshot of the global generator (for checkpoints)."""
    return _generator.get_state()


def set_rng_state(state):
    _generator.set_state(state)


def generator_of(generator=None) -> Generator:
    """`generator` (a lamina.Generator), or lamina's global one."""
    if generator is None:
        return _generator
    if isinstance(generator, Generator):
        return generator
    raise TypeError(f"generator: expected a lamina.Generator or None, got {type(generator).__name__}")
