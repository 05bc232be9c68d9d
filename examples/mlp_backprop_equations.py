"""Backprop for a two-layer MLP: the lecture's vectorized equations against lamina's autodiff.

Forward (one example, column vectors):       Backward (bar v = dL/dv):
    z = W1 x + b1                                bar y  = y - t
    h = sigma(z)                                 bar W2 = bar y h^T        bar b2 = bar y
    y = W2 h + b2                                bar h  = W2^T bar y
    L = ||y - t||^2 / 2                          bar z  = bar h o sigma'(z)  (sigma' = h (1 - h))
                                                 bar W1 = bar z x^T        bar b1 = bar z
For a batch the loss is the sum over examples, so each gradient is the sum of the
per-example ones: with examples as rows, bar W2 = bar Y^T H and bar W1 = bar Z^T X.

    python examples/mlp_backprop_equations.py
"""
import sys

import numpy as np

import lamina
import lamina.nn as nn


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def per_example(W1, b1, W2, b2, x, t):
    """The lecture's equations literally, for one example (column vectors)."""
    x, t = x[:, None], t[:, None]
    z = W1 @ x + b1[:, None]
    h = sigmoid(z)
    y = W2 @ h + b2[:, None]
    y_bar = y - t
    W2_bar, b2_bar = y_bar @ h.T, y_bar[:, 0]
    h_bar = W2.T @ y_bar
    z_bar = h_bar * h * (1.0 - h)
    W1_bar, b1_bar = z_bar @ x.T, z_bar[:, 0]
    return 0.5 * float(((y - t) ** 2).sum()), W1_bar, b1_bar, W2_bar, b2_bar


def batched(W1, b1, W2, b2, X, T):
    """The same equations with the batch as rows: one matrix product per gradient."""
    Z = X @ W1.T + b1
    H = sigmoid(Z)
    Y = H @ W2.T + b2
    Y_bar = Y - T
    Z_bar = (Y_bar @ W2) * H * (1.0 - H)
    return 0.5 * float(((Y - T) ** 2).sum()), Z_bar.T @ X, Z_bar.sum(0), Y_bar.T @ H, Y_bar.sum(0)


def main():
    D, Hn, K, N = 5, 7, 3, 8
    lamina.manual_seed(0)
    net = nn.Sequential(nn.Linear(D, Hn, dtype=np.float64), nn.Sigmoid(), nn.Linear(Hn, K, dtype=np.float64))
    rng = np.random.default_rng(0)
    X, T = rng.standard_normal((N, D)), rng.standard_normal((N, K))
    W1, b1 = net[0].weight.detach().numpy().copy(), net[0].bias.detach().numpy().copy()
    W2, b2 = net[2].weight.detach().numpy().copy(), net[2].bias.detach().numpy().copy()

    # autodiff: lamina runs Linear + Sigmoid as one fused GEMM-with-epilogue and differentiates it
    Y = net(lamina.tensor(X))
    L = 0.5 * ((Y - lamina.tensor(T)) ** 2).sum()
    L.backward()
    auto = [L.item(), net[0].weight.grad.numpy(), net[0].bias.grad.numpy(),
            net[2].weight.grad.numpy(), net[2].bias.grad.numpy()]

    loop = [0.0] + [np.zeros_like(a) for a in auto[1:]]
    for n in range(N):
        for i, v in enumerate(per_example(W1, b1, W2, b2, X[n], T[n])):
            loop[i] = loop[i] + v
    mat = batched(W1, b1, W2, b2, X, T)

    names = ["L", "bar W1", "bar b1", "bar W2", "bar b2"]
    worst = 0.0
    print(f"{'':8s} {'shape':>8s}   max|per-example sum - autodiff|   max|batched - autodiff|")
    for name, a, lp, m in zip(names, auto, loop, mat):
        e1 = float(np.max(np.abs(np.asarray(lp) - a)))
        e2 = float(np.max(np.abs(np.asarray(m) - a)))
        worst = max(worst, e1, e2)
        print(f"{name:8s} {str(np.shape(a)):>8s}   {e1:32.3g}   {e2:22.3g}")
    ok = worst < 1e-12
    print(f"lecture's backward equations match autodiff: max difference {worst:.3g}" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
