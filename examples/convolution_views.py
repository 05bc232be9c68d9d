"""Three views of one convolution give one answer (lecture, "Convolution operator").

    (a * b)_t = sum_tau a_tau b_{t - tau}

1. translate-and-scale: add up copies of b shifted by tau and scaled by a_tau
2. flip-and-filter:     flip b, slide it along (zero-padded) a, take dot products
3. matrix product:      a Toeplitz matrix built from b times a (how conv layers are computed)

checked against lamina.signal (on lamina's conv kernels) and against a deep-learning conv
layer (a cross-correlation: it needs the flipped kernel), for the lecture's
(2, -1, 1) * (1, 1, 2) and for a 2-D example.

    python examples/convolution_views.py
"""
import sys

import numpy as np

import lamina
import lamina.nn as nn
from lamina.signal import conv_matrix, convolve, convolve2d


def translate_and_scale(a, b):
    out = np.zeros(len(a) + len(b) - 1)
    for tau, a_tau in enumerate(a):
        out[tau:tau + len(b)] += a_tau * b
    return out


def flip_and_filter(a, b):
    m = len(b)
    padded = np.concatenate([np.zeros(m - 1), a, np.zeros(m - 1)])
    flipped = b[::-1]
    return np.array([padded[t:t + m] @ flipped for t in range(len(a) + m - 1)])


def translate_and_scale_2d(A, B):
    out = np.zeros((A.shape[0] + B.shape[0] - 1, A.shape[1] + B.shape[1] - 1))
    for (s, t), a_st in np.ndenumerate(A):
        out[s:s + B.shape[0], t:t + B.shape[1]] += a_st * B
    return out


def flip_and_filter_2d(A, B):
    kh, kw = B.shape
    P = np.pad(A, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    F = B[::-1, ::-1]
    out = np.zeros((A.shape[0] + kh - 1, A.shape[1] + kw - 1))
    for i, j in np.ndindex(*out.shape):
        out[i, j] = (P[i:i + kh, j:j + kw] * F).sum()
    return out


def matrix_2d(A, B):
    """(A * B)_ij = sum_st A_st B_{i-s, j-t}: one row per output, one column per input pixel."""
    oh, ow = A.shape[0] + B.shape[0] - 1, A.shape[1] + B.shape[1] - 1
    M = np.zeros((oh * ow, A.size))
    for i, j in np.ndindex(oh, ow):
        for s, t in np.ndindex(*A.shape):
            if 0 <= i - s < B.shape[0] and 0 <= j - t < B.shape[1]:
                M[i * ow + j, s * A.shape[1] + t] = B[i - s, j - t]
    return (M @ A.ravel()).reshape(oh, ow), M


def conv_layer(x, k):
    """A conv layer cross-correlates; with the kernel flipped and 'full' padding it convolves."""
    nd = x.ndim
    layer = (nn.Conv1d if nd == 1 else nn.Conv2d)(1, 1, k.shape, padding=tuple(s - 1 for s in k.shape),
                                                  bias=False, dtype=np.float64)
    with lamina.no_grad():
        layer.weight.copy_(k[(slice(None, None, -1),) * nd][None, None].copy())
        return layer(lamina.tensor(x[None, None], dtype=lamina.float64)).numpy()[0, 0]


def main():
    a, b = np.array([2.0, -1.0, 1.0]), np.array([1.0, 1.0, 2.0])
    print(f"a = {a.astype(int).tolist()}, b = {b.astype(int).tolist()}")
    for tau, a_tau in enumerate(a):
        row = [0.0] * tau + (a_tau * b).tolist() + [0.0] * (len(a) - 1 - tau)
        print(f"  translate-and-scale: a_{tau} * b shifted by {tau} = {np.array(row).astype(int).tolist()}")
    T = conv_matrix(b, len(a))
    print("  matrix view (columns are shifted copies of b):")
    for r in np.asarray(T).astype(int):
        print("    " + " ".join(f"{v:2d}" if v else " ." for v in r))
    views = {
        "translate-and-scale": translate_and_scale(a, b),
        "flip-and-filter": flip_and_filter(a, b),
        "matrix product": np.asarray(T, dtype=np.float64) @ a,
        "lamina.signal.convolve": np.asarray(convolve(a, b), dtype=np.float64),
        "Conv1d layer, flipped kernel": conv_layer(a, b),
    }
    ok = True
    for name, v in views.items():
        same = np.allclose(v, views["translate-and-scale"], rtol=0, atol=1e-12)
        ok &= same
        print(f"  {name:30s} {np.round(v).astype(int).tolist()}")
    print(f"(2, -1, 1) * (1, 1, 2) = {np.round(views['matrix product']).astype(int).tolist()}")
    print("commutative: a * b == b * a:", np.array_equal(convolve(a, b), convolve(b, a)))
    ok &= np.array_equal(convolve(a, b), convolve(b, a))

    A = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 0.0, 1.0]])
    B = np.array([[1.0, -1.0], [2.0, 0.0]])
    by_matrix, M = matrix_2d(A, B)
    views2 = {
        "translate-and-scale": translate_and_scale_2d(A, B),
        "flip-and-filter": flip_and_filter_2d(A, B),
        f"matrix product ({M.shape[0]}x{M.shape[1]})": by_matrix,
        "lamina.signal.convolve2d": np.asarray(convolve2d(A, B), dtype=np.float64),
        "Conv2d layer, flipped kernel": conv_layer(A, B),
    }
    ref = views2["translate-and-scale"]
    print("2-D: A (3x3) * B (2x2) =")
    for r in ref.astype(int):
        print("    " + " ".join(f"{v:3d}" for v in r))
    for name, v in views2.items():
        same = np.allclose(v, ref, rtol=0, atol=1e-12)
        ok &= same
        print(f"  {name:30s} {'same' if same else 'DIFFERENT'}")
    print("all views agree" if ok else "VIEWS DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
