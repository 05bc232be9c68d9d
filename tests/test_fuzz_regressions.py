"""Bugs found by tools/fuzz_graph.py and tools/fuzz_kernels.py, each pinned by the smallest
program that showed it."""
import numpy as np
import pytest

import lamina
from lamina import nn


class _DeadBranch(nn.Module):
    """`dead` is used in the forward, but its result never reaches the loss (fuzz seed 19)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.eye(3, dtype=np.float32))
        self.dead = nn.Parameter(np.ones((3, 3), np.float32))

    def forward(self, x):
        _ = x @ self.dead
        return x @ self.w


def test_a_parameter_off_the_loss_path_keeps_grad_none_when_compiled():
    # Eager (and PyTorch) leave p.grad None for a parameter the loss does not depend on, and the
    # optimizer skips it; the compiled step published a zero gradient for it instead.
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.zeros((2, 3), np.float32)
    eager = _DeadBranch()
    opt = lamina.optim.SGD(eager.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.mse_loss(eager(lamina.tensor(x)), lamina.tensor(y)).backward()
        opt.step()
    assert eager.dead.grad is None
    model = _DeadBranch()
    step = lamina.compile(model, nn.functional.mse_loss, lamina.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(3):
        step(x, y)
        assert model.dead.grad is None
    np.testing.assert_array_equal(model.w.detach().numpy(), eager.w.detach().numpy())
    np.testing.assert_array_equal(model.dead.detach().numpy(), eager.dead.detach().numpy())


def test_a_mean_pointwise_loss_over_an_empty_batch_is_nan_as_in_pytorch():
    # fuzz seeds 3, 11, 25, 29 (batch 0): mse_loss returned 0.0 where PyTorch returns NaN (a mean
    # over nothing); csrc/loss.h's reduced_loss already says so, the pointwise losses skipped it.
    torch = __import__("pytest").importorskip("torch")
    x = np.zeros((0, 3), np.float32)
    for name in ("mse_loss", "binary_cross_entropy_with_logits"):
        got = getattr(nn.functional, name)(lamina.tensor(x, requires_grad=True), lamina.tensor(x))
        want = getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(x))
        assert np.isnan(want.item()) and np.isnan(got.item()), name
        assert got.dtype == lamina.float32
        got.backward()                                   # an empty gradient, no error
    s = getattr(nn.functional, "mse_loss")(lamina.tensor(x), lamina.tensor(x), reduction="sum")
    assert s.item() == 0.0
    model = nn.Linear(3, 3)
    step = lamina.compile(model, nn.functional.mse_loss, lamina.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(2):                                   # the traced step, then the compiled one
        assert np.isnan(step(x, x))


class _ThreeUses(nn.Module):
    """An intermediate `v` read by three ops, in an order that a depth-first walk of the graph
    from the loss does not follow (fuzz seeds 3097, 3146, 2036)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.linspace(-1.3, 1.7, 12).reshape(4, 3))

    def forward(self, x):
        v = x @ self.w
        p = v * 2.1              # consumers made in the order p, q, r ...
        q = v * 3.3
        r = v / 0.7
        return (r + q) + p       # ... but a depth-first walk from the loss meets r first


def test_a_value_with_many_gradient_contributions_sums_them_as_eager_does():
    # Eager swept its graph depth-first while the compiler went in reverse creation order, so
    # three or more contributions were summed in another order: ~1 ulp apart from step 1 on.
    rng = np.random.default_rng(3097)
    xs = [rng.standard_normal((5, 4)) for _ in range(3)]
    ys = [rng.standard_normal((5, 3)) for _ in range(3)]
    eager, compiled = _ThreeUses(), _ThreeUses()
    opt = lamina.optim.SGD(eager.parameters(), lr=0.01, momentum=0.9)
    step = lamina.compile(compiled, nn.functional.mse_loss,
                          lamina.optim.SGD(compiled.parameters(), lr=0.01, momentum=0.9))
    for x, y in zip(xs, ys):
        opt.zero_grad()
        loss = nn.functional.mse_loss(eager(lamina.tensor(x)), lamina.tensor(y))
        loss.backward()
        opt.step()
        assert step(x, y) == loss.item()
        np.testing.assert_array_equal(compiled.w.grad.numpy(), eager.w.grad.numpy())
    np.testing.assert_array_equal(compiled.w.detach().numpy(), eager.w.detach().numpy())


# ---- found by tools/fuzz_kernels.py
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_row_winograd_keeps_a_non_finite_input_to_the_outputs_that_read_it(bad, dtype, restore_conv_settings):
    # Row Winograd F(4, 5) mixes a tile's 8 input columns into all 4 of its outputs: one inf at
    # column 5 made outputs 0, 6 and 7 of that row NaN (their windows, columns 0-4, 6-10 and
    # 7-11, do not hold it; PyTorch and the taps give finite values there) and turned the
    # others' +-inf into NaN. It is the auto path on AMD AVX-512, so the same program gave other
    # answers on other hosts.
    torch = pytest.importorskip("torch")
    from lamina import _C
    F = nn.functional
    rng = np.random.default_rng(5)
    x = rng.standard_normal((17, 6, 14, 14)).astype(dtype)
    w = (rng.standard_normal((16, 6, 5, 5)) / 12).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    x[0, 0, 0, 5] = bad
    x[16, 3, 7, 9] = bad                 # the last (partly filled) block of 16 images too
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    ref = torch.nn.functional.conv2d(tx, tw, tb).numpy()
    ref_block = torch.nn.functional.max_pool2d(torch.relu(torch.from_numpy(ref)), 2).numpy()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for mode in ("on", "auto", "off"):
        _C._conv_set_row_winograd(mode)
        y = F.conv2d(lamina.tensor(x), lamina.tensor(w), lamina.tensor(b)).detach().numpy()
        yb = F.conv2d_relu_max_pool2d(lamina.tensor(x), lamina.tensor(w), lamina.tensor(b)).detach().numpy()
        for got, want in ((y, ref), (yb, ref_block)):
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=mode)
            np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=mode)
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=mode)   # equal infinities pass


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_row_winograd_data_gradient_keeps_a_nan_gradient_to_the_inputs_it_reaches(mode, restore_conv_settings):
    # dx of a C3-like layer whose batch does not fill the lanes (N = 17) is the forward conv of
    # dy with the rotated filters, on row Winograd by the AMD rule: one NaN in dy made 240
    # entries of dx NaN where PyTorch has 150.
    torch = pytest.importorskip("torch")
    from lamina import _C
    F = nn.functional
    rng = np.random.default_rng(3)
    x = rng.standard_normal((17, 6, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((16, 6, 5, 5)) / 12).astype(np.float32)
    gy = rng.standard_normal((17, 16, 10, 10)).astype(np.float32)
    gy[4, 2, 3, 5] = np.nan
    tx = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.conv2d(tx, torch.from_numpy(w)) * torch.from_numpy(gy)).sum().backward()
    _C._conv_set_row_winograd(mode)
    xl = lamina.tensor(x, requires_grad=True)
    with np.errstate(invalid="ignore"):
        (F.conv2d(xl, lamina.tensor(w)) * lamina.tensor(gy)).sum().backward()
    np.testing.assert_array_equal(np.isnan(xl.grad.numpy()), np.isnan(tx.grad.numpy()))
    np.testing.assert_allclose(xl.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_direct_weight_gradient_keeps_a_non_finite_input_to_the_taps_that_read_it(bad, dtype, restore_conv_settings):
    # fuzz_kernels seeds 43, 522, 1117: small batches take dw on wide rows (conv_direct_bwd.h),
    # where each row's discarded columns pair a zero of the widened dy with a real input: one
    # NaN at column 0 made dw NaN at kw = 2..4 too, which never multiply it (PyTorch: finite).
    torch = pytest.importorskip("torch")
    from lamina import _C
    F = nn.functional
    rng = np.random.default_rng(1117)
    x = rng.standard_normal((3, 6, 20, 24)).astype(dtype)
    w = (rng.standard_normal((15, 6, 5, 5)) / 12).astype(dtype)
    x[1, 3, 12, 0] = bad
    gy = rng.standard_normal((3, 15, 16, 22)).astype(dtype)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (torch.nn.functional.conv2d(tx, tw, padding=(0, 1)) * torch.from_numpy(gy)).sum().backward()
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for algo in ("auto", "direct", "im2col"):
        _C._conv_set_algo(algo)
        xl, wl = lamina.tensor(x, requires_grad=True), lamina.tensor(w, requires_grad=True)
        with np.errstate(invalid="ignore"):
            (F.conv2d(xl, wl, padding=(0, 1)) * lamina.tensor(gy)).sum().backward()
        for got, want in ((wl.grad.numpy(), tw.grad.numpy()), (xl.grad.numpy(), tx.grad.numpy())):
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=algo)
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=algo)


@pytest.mark.parametrize("algo", ["auto", "winograd", "winograd4"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_3x3_winograd_keeps_a_non_finite_value_to_what_reads_it(bad, dtype, algo, restore_conv_settings):
    # brk15's report: F(4x4, 3x3) mixes a 6x6 input tile into all 16 of its outputs, so one inf
    # gave 400 non-finite outputs where PyTorch has 144, and F(2x2) turned inf into NaN. The same
    # holds for dy in the data gradient and for x, dy in the weight gradient (F(4x4) dw). The
    # mid layer shape (64 channels, 3x3, pad 1) takes Winograd by the auto rule.
    torch = pytest.importorskip("torch")
    from lamina import _C
    F = nn.functional
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 64, 16, 16)).astype(dtype)
    w = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(dtype)
    gy = rng.standard_normal((2, 64, 16, 16)).astype(dtype)
    x[0, 5, 6, 7] = bad
    gy[1, 9, 3, 12] = bad
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, padding=1)
    (ty * torch.from_numpy(gy)).sum().backward()
    _C._conv_set_algo(algo)
    xl, wl = lamina.tensor(x, requires_grad=True), lamina.tensor(w, requires_grad=True)
    with np.errstate(invalid="ignore", over="ignore"):
        yl = F.conv2d(xl, wl, padding=1)
        (yl * lamina.tensor(gy)).sum().backward()
    tol = 2e-4 if dtype == np.float32 else 1e-11
    for name, got, want in (("y", yl.detach().numpy(), ty.detach().numpy()),
                            ("dx", xl.grad.numpy(), tx.grad.numpy()), ("dw", wl.grad.numpy(), tw.grad.numpy())):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=name)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=name)  # equal infinities pass
