"""torch.exp_(x)-style top-level in-place functions: each writes into its input and returns it,
with PyTorch's values (torch 2.13 as the oracle)."""
import numpy as np
import pytest

import lamina

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
UNIT = RNG.uniform(0.1, 0.9, (3, 4))          # inside every unary op's domain
ABOVE_ONE = 1.0 + UNIT                          # acosh
WITH_NAN = np.where(UNIT > 0.7, np.nan, UNIT)   # nan_to_num_
INTS = RNG.integers(1, 30, (3, 4))

# name: (input, args as a function of the library, compare kwargs)
CASES = {
    **{n: (UNIT, lambda L: (), {}) for n in [
        "abs_", "acos_", "arccos_", "arcsin_", "arcsinh_", "arctan_", "arctanh_", "asin_", "asinh_", "atan_",
        "atanh_", "ceil_", "cos_", "cosh_", "deg2rad_", "erf_", "erfc_", "exp2_", "exp_", "expm1_", "fix_",
        "floor_", "frac_", "i0_", "log10_", "log1p_", "log2_", "log_", "logit_", "neg_", "negative_",
        "rad2deg_", "reciprocal_", "round_", "rsqrt_", "sigmoid_", "sin_", "sinc_", "sinh_", "sqrt_",
        "square_", "tan_", "tanh_", "trunc_", "zero_", "detach_"]},
    "acosh_": (ABOVE_ONE, lambda L: (), {}),
    "arccosh_": (ABOVE_ONE, lambda L: (), {}),
    "nan_to_num_": (WITH_NAN, lambda L: (), {}),
    "clamp_": (UNIT, lambda L: (0.3, 0.6), {}),
    "clip_": (UNIT, lambda L: (0.3, 0.6), {}),
    "clamp_min_": (UNIT, lambda L: (0.5,), {}),
    "clamp_max_": (UNIT, lambda L: (0.5,), {}),
    "fill_": (UNIT, lambda L: (2.5,), {}),
    "xlogy_": (UNIT, lambda L: (L.tensor(ABOVE_ONE),), {}),
    "ldexp_": (UNIT, lambda L: (L.tensor(INTS % 5 - 2),), {}),
    "gcd_": (INTS, lambda L: (L.tensor(INTS[::-1].copy()),), {}),
    "lcm_": (INTS, lambda L: (L.tensor(INTS[::-1].copy()),), {}),
    "index_put_": (UNIT, lambda L: ((L.tensor(np.array([0, 2])),), L.tensor(np.full((2, 4), 7.0))), {}),
    "resize_as_": (UNIT, lambda L: (L.tensor(np.zeros((4, 3))),), {}),
}


def test_every_name_is_covered():
    assert sorted(CASES) == sorted(lamina.functions._TOPLEVEL_INPLACE)


@pytest.mark.parametrize("name", sorted(CASES))
def test_toplevel_inplace_matches_torch(name):
    data, args, _ = CASES[name]
    x = lamina.tensor(data.copy())
    t = torch.tensor(data.copy())
    out = getattr(lamina, name)(x, *args(lamina))
    want = getattr(torch, name)(t, *args(torch))
    assert out is x                       # in place, returning the input
    assert tuple(x.shape) == tuple(want.shape)
    np.testing.assert_allclose(x.numpy(), want.numpy(), rtol=1e-12, atol=1e-12, equal_nan=True)
    assert str(x.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]


def test_toplevel_inplace_rejects_non_tensor():
    with pytest.raises(TypeError, match="exp_"):
        lamina.exp_(np.ones(3))


def test_toplevel_inplace_keeps_autograd_checks():
    """A leaf that requires grad refuses in-place changes, as x.exp_() does."""
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        lamina.exp_(x)
