"""Smaller PyTorch layers and functions: 3-D / circular padding, ChannelShuffle, pdist, LP
pooling, max unpooling, DataParallel, LazyLinear, gumbel_softmax; values, reprs, state-dict keys,
random draws and gradients against torch."""
import numpy as np

from conftest import assert_same_results, run_in_both

x4 = np.random.default_rng(0).standard_normal((2, 6, 4, 5))
def program(fw):
    out = {}
    x = fw.tensor(x4, requires_grad=True)
    out["shuffle"] = fw.nn.ChannelShuffle(3)(x)
    out["pdist"] = fw.nn.functional.pdist(x.reshape(4, 60)) + fw.nn.functional.pdist(x.reshape(6, 40), p=1).sum()
    out["lp2"] = fw.nn.LPPool2d(2, 2)(x.abs() + 0.1)
    out["lp1"] = fw.nn.LPPool1d(3, 2, stride=1)(x[0].abs() + 0.1)
    y, idx = fw.nn.functional.max_pool2d(x, 2, return_indices=True)
    out["unpool"] = fw.nn.MaxUnpool2d(2)(y, idx, output_size=x.shape)
    y1, i1 = fw.nn.functional.max_pool1d(x[0], 2, return_indices=True)
    out["unpool1"] = fw.nn.functional.max_unpool1d(y1, i1, 2)
    for name, cls, pad in [("c3", "ConstantPad3d", (1, 0, 2, 1, 0, 1)), ("z3", "ZeroPad3d", 1), ("r3", "ReflectionPad3d", 1),
                           ("p3", "ReplicationPad3d", (1, 2, 0, 1, 1, 0)), ("ci1", "CircularPad1d", 2), ("ci2", "CircularPad2d", (1, 2, 1, 0)),
                           ("ci3", "CircularPad3d", 1)]:
        m = getattr(fw.nn, cls)(pad, 2.5) if cls == "ConstantPad3d" else getattr(fw.nn, cls)(pad)
        inp = x[0] if cls == "CircularPad1d" else x
        out[name] = m(inp)
        out[name + "r"] = repr(m)
    dp = fw.nn.DataParallel(fw.nn.Linear(5, 3))
    out["dp"] = dp(x)
    out["dpkeys"] = list(dp.state_dict())
    lz = fw.nn.LazyLinear(4)
    out["lazy"] = lz(x)
    out["lazyr"] = repr(lz)
    tot = sum(v.sum() for v in out.values() if hasattr(v, "sum"))
    tot.backward()
    out["dx"] = x.grad
    return out


def test_layers_match_torch():
    assert_same_results(*run_in_both(program), tol=1e-10)


def gprog(fw):
    fw.manual_seed(3)
    l = fw.tensor(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True)
    a = fw.nn.functional.gumbel_softmax(l, tau=0.5)
    b = fw.nn.functional.gumbel_softmax(l, hard=True)
    (a * fw.arange(4.0) + b * fw.arange(4.0)).sum().backward()
    return {"a": a, "b": b, "dl": l.grad}


def test_gumbel_softmax_draws_and_straight_through_gradient_match_torch():
    assert_same_results(*run_in_both(gprog), tol=1e-10)
