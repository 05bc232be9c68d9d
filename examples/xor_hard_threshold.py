"""XOR from hard thresholds: the lecture's 2-2-1 multilayer perceptron, weights set by hand.

    h1 = I[x1 + x2 - 0.5 > 0]      x1 OR x2
    h2 = I[x1 + x2 - 1.5 > 0]      x1 AND x2
    y  = I[h1 - h2 - 0.5 > 0]      h1 AND NOT h2  =  x1 XOR x2

No linear classifier computes XOR; one hidden layer of two threshold units does.

    python examples/xor_hard_threshold.py
"""
import sys

import numpy as np

import lamina
import lamina.nn as nn


def xor_net():
    net = nn.Sequential(nn.Linear(2, 2), nn.Step(), nn.Linear(2, 1), nn.Step())
    with lamina.no_grad():
        net[0].weight.copy_(np.array([[1.0, 1.0], [1.0, 1.0]], dtype=np.float32))
        net[0].bias.copy_(np.array([-0.5, -1.5], dtype=np.float32))
        net[2].weight.copy_(np.array([[1.0, -1.0]], dtype=np.float32))
        net[2].bias.copy_(np.array([-0.5], dtype=np.float32))
    return net


def main():
    net = xor_net()
    x = lamina.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    with lamina.no_grad():
        h = net[1](net[0](x)).numpy()
        y = net(x).numpy().ravel()
    want = np.array([0.0, 1.0, 1.0, 0.0])
    print(" x1  x2 | h1 (OR)  h2 (AND) | y   x1 XOR x2")
    for (x1, x2), (h1, h2), yi, wi in zip(x.numpy(), h, y, want):
        print(f"  {x1:.0f}   {x2:.0f} |    {h1:.0f}        {h2:.0f}    | {yi:.0f}       {wi:.0f}")
    ok = bool(np.array_equal(y, want))
    print("XOR correct on all 4 inputs" if ok else "XOR WRONG")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
