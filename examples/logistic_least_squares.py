"""Univariate logistic least squares: dL/dw and dL/db by hand, by autodiff, by finite differences.

Lecture ("Backpropagation"):  z = w x + b,   y = sigma(z),   L = (y - t)^2 / 2
Backward pass with error signals (bar v = dL/dv):
    bar y = y - t
    bar z = bar y * sigma'(z) = bar y * y (1 - y)
    bar w = bar z * x
    bar b = bar z                    (the lecture's "Exercise!": dL/db = (sigma(wx+b) - t) sigma'(wx+b))

    python examples/logistic_least_squares.py
"""
import sys

import numpy as np

import lamina


def by_hand(w, b, x, t):
    z = w * x + b
    y = 1.0 / (1.0 + np.exp(-z))
    L = 0.5 * (y - t) ** 2
    y_bar = y - t
    z_bar = y_bar * y * (1.0 - y)
    return L, z_bar * x, z_bar


def by_autodiff(w, b, x, t):
    wt = lamina.tensor([w], dtype=lamina.float64, requires_grad=True)
    bt = lamina.tensor([b], dtype=lamina.float64, requires_grad=True)
    z = wt * x + bt
    y = z.sigmoid()
    L = (0.5 * (y - t) ** 2).sum()
    L.backward()
    return L.item(), wt.grad.item(), bt.grad.item()


def main():
    rng = np.random.default_rng(0)
    worst = 0.0
    print("     w       b       x     t |        dL/dw by hand     autodiff |        dL/db by hand     autodiff")
    for _ in range(6):
        w, b, x = rng.normal(0.0, 1.5, 3)
        t = float(rng.integers(0, 2))
        L, dw, db = by_hand(w, b, x, t)
        L2, dw2, db2 = by_autodiff(w, b, x, t)
        h = 1e-6  # central differences in float64: error ~ h^2
        fd_w = (by_hand(w + h, b, x, t)[0] - by_hand(w - h, b, x, t)[0]) / (2 * h)
        fd_b = (by_hand(w, b + h, x, t)[0] - by_hand(w, b - h, x, t)[0]) / (2 * h)
        worst = max(worst, abs(L - L2), abs(dw - dw2), abs(db - db2))
        assert abs(dw - fd_w) < 1e-8 and abs(db - fd_b) < 1e-8, (dw, fd_w, db, fd_b)
        print(f"{w:6.2f}  {b:6.2f}  {x:6.2f}  {t:3.0f} | {dw:20.15f} {dw2:12.8f} | {db:20.15f} {db2:12.8f}")
    print(f"max |hand - autodiff| = {worst:.3g} (float64); finite differences agree to 1e-8")
    return 0 if worst < 1e-14 else 1


if __name__ == "__main__":
    sys.exit(main())
