"""Batch-lane direct convolution (csrc/conv_direct_lane.h) and the fused conv blocks."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F

torch = pytest.importorskip("torch")

# (N, C, H, K, pad): LeNet's C1 and C3, batches that fill, miss and overrun the lanes (16 f32,
# 8 f64 on AVX-512; 8 and 4 on AVX2), channel counts off the register blocks (5, 7).
LANE_CASES = [(64, 6, 14, 16, 0), (17, 1, 28, 6, 2), (33, 3, 12, 5, 1), (16, 2, 9, 7, 2), (8, 6, 14, 16, 0)]


def _conv(x, w, b, pad, act=None):
    y = F.conv2d(lamina.from_numpy(x), lamina.from_numpy(w), None if b is None else lamina.from_numpy(b), padding=pad)
    return (F.relu(y) if act == "relu" else y).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LANE_CASES, ids=lambda c: "N{}C{}H{}K{}p{}".format(*c))
def test_lane_path_is_bitwise_the_per_image_path_and_matches_torch(case, dtype):
    """A batch (lanes over images) gives exactly what each image alone gives (the wide-row
    path, N = 1): the same taps summed in the same order, the bias added last."""
    N, C, H, K, pad = case
    rng = np.random.default_rng(N * 7 + C)
    x = rng.standard_normal((N, C, H, H)).astype(dtype)
    w = rng.standard_normal((K, C, 5, 5)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    y = _conv(x, w, b, pad)
    alone = np.concatenate([_conv(x[i:i + 1], w, b, pad) for i in range(N)])
    np.testing.assert_array_equal(y, alone)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=pad)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y, ref.numpy(), rtol=tol, atol=tol)
    np.testing.assert_array_equal(_conv(x, w, None, pad), np.concatenate([_conv(x[i:i + 1], w, None, pad)
                                                                          for i in range(N)]))


def test_lane_path_is_thread_count_independent():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((80, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    threads = lamina.get_num_threads()
    try:
        out = []
        for t in (1, 2):
            lamina.set_num_threads(t)
            out.append(_conv(x, w, b, 0))
    finally:
        lamina.set_num_threads(threads)
    np.testing.assert_array_equal(out[0], out[1])


def test_lane_path_keeps_nan_and_inf():
    """Non-finite inputs reach exactly the outputs whose windows hold them."""
    x = np.zeros((16, 1, 10, 10), np.float32)
    x[3, 0, 4, 4] = np.nan
    x[5, 0, 0, 0] = np.inf
    w = np.ones((6, 1, 5, 5), np.float32)
    y = _conv(x, w, None, 2)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=2).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(y[np.isfinite(ref)], ref[np.isfinite(ref)])
    assert np.isnan(y[3]).sum() == 6 * 25 and np.isfinite(np.delete(y, [3, 5], axis=0)).all()
