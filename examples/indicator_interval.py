"""The indicator of [1, 2] from a small network: exactly with hard thresholds, approximately
with ReLUs (the lecture's two "Expressive power" exercises).

Hard thresholds, I[z > 0]:
    h1 = I[1 - x > 0]   (x < 1)        h2 = I[x - 2 > 0]   (x > 2)
    y  = I[0.5 - h1 - h2 > 0]          1 exactly when x is in the closed interval [1, 2]

ReLUs: two ramps of width eps make a trapezoid that is 1 on [1, 2] and 0 outside
[1 - eps, 2 + eps]:
    y = (relu(x - 1 + eps) - relu(x - 1) - relu(x - 2) + relu(x - 2 - eps)) / eps
It is exact except on the two ramps, so the L1 error is eps -> 0; but the largest error, just
outside the interval, stays near 1 for every eps: a continuous function cannot jump.

    python examples/indicator_interval.py [--plot indicator.png]
"""
import argparse
import sys

import numpy as np

import lamina
import lamina.nn as nn


def set_weights(layer, w, b):
    with lamina.no_grad():
        layer.weight.copy_(np.asarray(w, dtype=layer.weight.dtype))
        layer.bias.copy_(np.asarray(b, dtype=layer.bias.dtype))


def threshold_net():
    net = nn.Sequential(nn.Linear(1, 2, dtype=np.float64), nn.Step(), nn.Linear(2, 1, dtype=np.float64), nn.Step())
    set_weights(net[0], [[-1.0], [1.0]], [1.0, -2.0])
    set_weights(net[2], [[-1.0, -1.0]], [0.5])
    return net


def relu_net(eps):
    net = nn.Sequential(nn.Linear(1, 4, dtype=np.float64), nn.ReLU(), nn.Linear(4, 1, dtype=np.float64))
    set_weights(net[0], [[1.0]] * 4, [-1.0 + eps, -1.0, -2.0, -2.0 - eps])
    set_weights(net[2], [[1.0 / eps, -1.0 / eps, -1.0 / eps, 1.0 / eps]], [0.0])
    return net


def indicator(x):
    return ((x >= 1.0) & (x <= 2.0)).astype(np.float64)


def run(net, x):
    with lamina.no_grad():
        return net(lamina.tensor(x[:, None], dtype=lamina.float64)).numpy().ravel()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plot", default="indicator.png", help="where to save the plot (needs matplotlib)")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)

    dx = 1.0 / 1024  # a power of two: the grid hits 1.0 and 2.0 exactly
    x = np.arange(-1.0, 4.0 + dx, dx)
    edges = np.array([1.0, 2.0, np.nextafter(1.0, 0.0), np.nextafter(2.0, 3.0)])
    x = np.concatenate([x, edges])
    y = run(threshold_net(), x)
    exact_err = np.abs(y - indicator(x)).max()
    print(f"hard thresholds: max |error| over {x.size} points (incl. 1, 2 and their float neighbours) "
          f"= {exact_err:g}")
    ok = exact_err == 0.0

    grid = np.arange(-1.0, 4.0 + dx, dx)
    curves = {}
    print("ReLU trapezoid:     eps   max|err|   max|err| off the ramps   L1 error (exact: eps)")
    for eps in (0.5, 0.1, 0.01):
        yr = run(relu_net(eps), grid)
        err = np.abs(yr - indicator(grid))
        ramps = ((grid > 1.0 - eps) & (grid < 1.0)) | ((grid > 2.0) & (grid < 2.0 + eps))
        l1 = err.sum() * dx
        print(f"                 {eps:6.2f}   {err.max():8.4f}   {err[~ramps].max():22.2e}   {l1:10.5f}")
        ok &= err[~ramps].max() < 1e-9 and abs(l1 - eps) < 2 * dx
        curves[eps] = yr
    print("indicator reproduced exactly with hard thresholds; ReLU L1 error = eps" if ok else "MISMATCH")

    if not args.no_plot:
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            print("matplotlib not installed: no plot (pip install 'lamina[viz]')")
        else:
            fig = Figure(figsize=(7, 3.5), dpi=100)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot(1, 1, 1)
            ax.plot(grid, run(threshold_net(), grid), "k", lw=3, alpha=0.4, label="hard thresholds (exact)")
            for eps, yr in curves.items():
                ax.plot(grid, yr, lw=1.2, label=f"ReLU, eps={eps}")
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            ax.set_title("indicator of [1, 2]")
            ax.legend(loc="upper right", fontsize=8)
            fig.tight_layout()
            fig.savefig(args.plot)
            print(f"saved {args.plot}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
