"""lamina.signal against numpy.convolve / numpy.correlate and scipy.signal.convolve2d /
correlate2d, the lecture's example, and the Toeplitz form of convolution."""
import itertools

import numpy as np
import pytest

from lamina import signal


def test_lecture_example():
    # The lecture writes (2, -1, 1) * (1, 1, 2) as a Toeplitz matrix times (2, -1, 1); that
    # product (and numpy) gives (2, 1, 4, -1, 2). The slide's printed middle entry "3" is a
    # typo: 2*2 + (-1)*1 + 1*1 = 4.
    T = signal.conv_matrix(np.array([1, 1, 2]), 3)
    assert T.tolist() == [[1, 0, 0], [1, 1, 0], [2, 1, 1], [0, 2, 1], [0, 0, 2]]
    assert (T @ np.array([2, -1, 1])).tolist() == [2, 1, 4, -1, 2]
    assert signal.convolve([2, -1, 1], [1, 1, 2]).tolist() == [2, 1, 4, -1, 2]
    # Commutativity and distributivity (the lecture's properties).
    a, b, c = np.array([2.0, -1, 1]), np.array([1.0, 1, 2]), np.array([0.5, 3, -2, 1])
    np.testing.assert_allclose(signal.convolve(a, b), signal.convolve(b, a))
    np.testing.assert_allclose(signal.convolve(a, 2 * b[:3] + 3 * c[:3]),
                               2 * signal.convolve(a, b[:3]) + 3 * signal.convolve(a, c[:3]))


@pytest.mark.parametrize("n,m", [(1, 1), (5, 3), (3, 5), (6, 4), (4, 6), (7, 7), (10, 1), (2, 9)])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_convolve_correlate_match_numpy(n, m, mode):
    rng = np.random.default_rng(n * 10 + m)
    a, v = rng.standard_normal(n), rng.standard_normal(m)
    np.testing.assert_allclose(signal.convolve(a, v, mode), np.convolve(a, v, mode), atol=1e-12)
    np.testing.assert_allclose(signal.correlate(a, v, mode), np.correlate(a, v, mode), atol=1e-12)
    ai, vi = rng.integers(-5, 6, n), rng.integers(-5, 6, m)
    got = signal.convolve(ai, vi, mode)
    assert got.dtype == np.convolve(ai, vi, mode).dtype and np.array_equal(got, np.convolve(ai, vi, mode))
    np.testing.assert_allclose(signal.conv_matrix(v, n) @ a, np.convolve(a, v), atol=1e-12)


SHAPES = [((5, 6), (3, 3)), ((4, 7), (2, 5)), ((6, 3), (4, 2)), ((3, 3), (5, 4)), ((8, 8), (1, 1)),
          ((2, 9), (2, 9)), ((5, 5), (2, 2))]


@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_convolve2d_correlate2d_match_scipy(sa, sb, mode):
    sp = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(sum(sa) * 7 + sum(sb))
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose(signal.convolve2d(a, b, mode), sp.convolve2d(a, b, mode), atol=1e-12)
    np.testing.assert_allclose(signal.correlate2d(a, b, mode), sp.correlate2d(a, b, mode), atol=1e-12)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    got = signal.convolve2d(a32, b32, mode)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, sp.convolve2d(a32, b32, mode), rtol=1e-5, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="mode"):
        signal.convolve([1, 2], [1], mode="circular")
    with pytest.raises(ValueError, match="a"):
        signal.convolve(np.zeros((2, 2)), [1])
    with pytest.raises(ValueError, match="v"):
        signal.convolve([1, 2], [])
    with pytest.raises(TypeError, match="in1"):
        signal.convolve2d(np.zeros((2, 2), complex), np.ones((1, 1)))
    with pytest.raises(ValueError, match="in2"):
        signal.convolve2d(np.zeros((3, 2)), np.ones((2, 3)), mode="valid")
    with pytest.raises(ValueError, match="n"):
        signal.conv_matrix([1, 2], 0)
