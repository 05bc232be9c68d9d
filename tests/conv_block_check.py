"""The fused conv + bias + ReLU + 2x2 max-pool block against the three eager ops, shared by the
conv-block and row-Winograd tests (imported by name: pytest puts tests/ on sys.path)."""
import numpy as np

import lamina
import lamina.nn.functional as F


def assert_fused_block_is_bitwise_the_unfused_ops(arrays, dtype):
    """Runs F.conv2d_relu_max_pool2d and max_pool2d(relu(conv2d)) on the same (x, w, b) with the same
    non-uniform upstream gradient; asserts values and all three gradients are bitwise equal and
    returns the fused output."""
    outs, grads = [], []
    for fused in (True, False):
        x, w, b = (lamina.tensor(a, requires_grad=True) for a in arrays)
        y = F.conv2d_relu_max_pool2d(x, w, b) if fused else F.max_pool2d(F.relu(F.conv2d(x, w, b)), 2)
        (y * lamina.from_numpy(np.arange(y.numel(), dtype=dtype).reshape(y.shape) % 7 - 3)).sum().backward()
        outs.append(y.detach().numpy())
        grads.append([t.grad.numpy() for t in (x, w, b)])
    np.testing.assert_array_equal(outs[0], outs[1])
    for g0, g1 in zip(*grads):
        np.testing.assert_array_equal(g0, g1)
    return outs[0]
