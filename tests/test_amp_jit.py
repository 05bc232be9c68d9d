"""lamina.amp (autocast, GradScaler) and lamina.jit against PyTorch's behaviour."""
import warnings

import numpy as np
import pytest

import lamina
from conftest import requires_torch


def _scaler_program(fw):
    fw.manual_seed(0)
    net = fw.nn.Linear(3, 2)
    opt = fw.optim.SGD(net.parameters(), lr=0.01)
    scaler = fw.amp.GradScaler("cpu", init_scale=4.0, growth_interval=2)
    out = []
    x = fw.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype=fw.float32)
    for step in range(6):
        opt.zero_grad()
        with fw.autocast("cpu", enabled=False):
            loss = (net(x) ** 2).sum()
        if step == 3:
            loss = loss * float("inf")          # an overflowing step: skipped, scale halved
        scaler.scale(loss).backward()
        if step == 1:
            scaler.unscale_(opt)                # e.g. before gradient clipping
            out.append(net.weight.grad.numpy().tolist())
        scaler.step(opt)
        scaler.update()
        out.append((step, scaler.get_scale(), net.weight.detach().numpy().tolist()))
    out.append(scaler.state_dict())
    s2 = fw.amp.GradScaler("cpu")
    s2.load_state_dict(scaler.state_dict())
    out.append(s2.get_scale())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = fw.cuda.amp.GradScaler()            # no CUDA: disabled, a pass-through
    out.append((d.is_enabled(), d.get_scale()))
    return out


def test_grad_scaler_schedule_and_steps_equal_torch():
    torch = requires_torch()
    got, want = _scaler_program(lamina), _scaler_program(torch)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(g, tuple) and len(g) == 3:        # (step, scale, weights): scale exact
            assert g[:2] == w[:2]
            np.testing.assert_allclose(g[2], w[2], rtol=1e-6, atol=1e-7)
        elif isinstance(g, list):                       # unscaled gradients
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
        else:
            assert g == w


def test_autocast_warns_once_and_keeps_precision():
    x = lamina.ones(2, 2)
    with pytest.warns(UserWarning, match="full precision"):
        with lamina.autocast("cpu", dtype=lamina.float32):
            y = x @ x
    assert y.dtype == lamina.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with lamina.autocast("cpu"):            # the second time: silent
            pass

    @lamina.autocast("cpu", enabled=False)
    def f(a):
        return a * 2
    assert f(x).tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_jit_passes_modules_and_functions_through():
    m = lamina.nn.Linear(2, 1)
    assert lamina.jit.script(m) is m and lamina.jit.trace(m, lamina.ones(1, 2)) is m
    assert lamina.jit.ignore(len) is len and not lamina.jit.is_scripting()
    with pytest.raises(NotImplementedError, match="TorchScript"):
        lamina.jit.save(m, "x.pt")
