"""The layers decoders and generators are built from, against PyTorch: ConvTranspose2d (init,
forward, gradients, output_size), F.interpolate / nn.Upsample in every mode lamina has,
pixel_shuffle / pixel_unshuffle and InstanceNorm (affine, running statistics, eval)."""
import numpy as np
import pytest

import lamina
from conftest import requires_torch


def _both(build):
    """build(fw) -> a dict of arrays, for lamina and torch."""
    torch = requires_torch()
    return build(lamina), build(torch)


def _close(a, b, rtol, atol):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=rtol, atol=atol, err_msg=k)


CONVT = [((16, 8, 4), dict(stride=2, padding=1), (2, 16, 5, 5)),
         ((4, 6, 3), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=(1, 2)),
          (3, 4, 5, 4)),
         ((3, 2, 1), dict(bias=False), (3, 5, 5)),
         ((10, 4, 4), dict(bias=False), (2, 10, 1, 1))]


@pytest.mark.parametrize("args,kw,xs", CONVT, ids=["dcgan-up", "groups-outpad", "unbatched", "from-1x1"])
def test_conv_transpose2d_module_matches_torch(args, kw, xs):
    def run(fw):
        fw.manual_seed(0)
        m = fw.nn.ConvTranspose2d(*args, **kw).double()
        x = fw.tensor(np.random.default_rng(1).standard_normal(xs), requires_grad=True)
        y = m(x)
        (y * y).sum().backward()
        out = dict(w=m.weight.detach().numpy(), y=y.detach().numpy(), dx=x.grad.numpy(), dw=m.weight.grad.numpy(),
                   repr=repr(m))
        if m.bias is not None:
            out["db"] = m.bias.grad.numpy()
        return out
    lam, tor = _both(run)
    assert lam.pop("repr") == tor.pop("repr")
    _close(lam, tor, 1e-10, 1e-10)


def test_conv_transpose2d_output_size_and_errors():
    torch = requires_torch()
    for fw in (lamina, torch):
        m = fw.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
        assert tuple(m(fw.zeros(1, 4, 5, 5), output_size=(10, 10)).shape) == (1, 2, 10, 10)
        assert tuple(m(fw.zeros(1, 4, 5, 5), output_size=[1, 2, 9, 9]).shape) == (1, 2, 9, 9)
    m = lamina.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    with pytest.raises(ValueError, match="output_size"):
        m(lamina.zeros(1, 4, 5, 5), output_size=(12, 12))
    with pytest.raises(ValueError, match="output_padding"):
        lamina.nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=2)
    with pytest.raises(lamina.nn.ModuleShapeError, match="input channels"):
        m(lamina.zeros(1, 3, 5, 5))


INTERP = [dict(scale_factor=2), dict(size=(9, 4)), dict(scale_factor=1.7), dict(scale_factor=(0.6, 2.5)),
          dict(scale_factor=2, mode="bilinear"), dict(size=(8, 11), mode="bilinear", align_corners=True),
          dict(scale_factor=1.3, mode="bilinear"), dict(size=(3, 3), mode="bilinear"),
          dict(scale_factor=2.5, mode="nearest-exact"), dict(size=(2, 3), mode="area"),
          dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)]


@pytest.mark.parametrize("kw", INTERP, ids=[str(k) for k in INTERP])
def test_interpolate_2d_matches_torch(kw):
    def run(fw):
        x = fw.tensor(np.random.default_rng(2).standard_normal((2, 3, 5, 7)), requires_grad=True)
        y = fw.nn.functional.interpolate(x, **kw)
        (y * y).sum().backward()
        return dict(y=y.detach().numpy(), dx=x.grad.numpy())
    lam, tor = _both(run)
    _close(lam, tor, 1e-12, 1e-12)


@pytest.mark.parametrize("kw", [dict(scale_factor=2, mode="linear"), dict(size=9, mode="linear", align_corners=True),
                                dict(size=4), dict(scale_factor=3)])
def test_interpolate_1d_matches_torch(kw):
    lam, tor = _both(lambda fw: dict(y=fw.nn.functional.interpolate(
        fw.tensor(np.random.default_rng(3).standard_normal((2, 3, 6))), **kw).numpy()))
    _close(lam, tor, 1e-12, 1e-12)


def test_upsample_modules_and_errors():
    torch = requires_torch()
    for m_args in [dict(scale_factor=2, mode="bilinear"), dict(size=(4, 4))]:
        assert repr(lamina.nn.Upsample(**m_args)) == repr(torch.nn.Upsample(**m_args))
    x = lamina.zeros(1, 2, 3, 3)
    with pytest.raises(ValueError, match="exactly one"):
        lamina.nn.functional.interpolate(x)
    with pytest.raises(ValueError, match="mode"):
        lamina.nn.functional.interpolate(x, scale_factor=2, mode="cubic")
    with pytest.raises(ValueError, match="bilinear"):
        lamina.nn.functional.interpolate(lamina.zeros(1, 2, 3), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners"):
        lamina.nn.functional.interpolate(x, scale_factor=2, align_corners=True)


def test_pixel_shuffle_roundtrip_matches_torch():
    def run(fw):
        x = fw.tensor(np.random.default_rng(4).standard_normal((2, 18, 3, 4)), requires_grad=True)
        y = fw.nn.PixelShuffle(3)(x)
        z = fw.nn.PixelUnshuffle(3)(y)
        (y * fw.tensor(np.arange(y.numel(), dtype=np.float64).reshape(tuple(y.shape)))).sum().backward()
        return dict(y=y.detach().numpy(), z=z.detach().numpy(), dx=x.grad.numpy())
    lam, tor = _both(run)
    _close(lam, tor, 0, 0)
    with pytest.raises(ValueError, match="divisible"):
        lamina.nn.functional.pixel_shuffle(lamina.zeros(1, 5, 2, 2), 2)


@pytest.mark.parametrize("kw", [{}, dict(affine=True), dict(track_running_stats=True)])
def test_instance_norm_matches_torch(kw):
    def run(fw):
        m = fw.nn.InstanceNorm2d(3, **kw).double()
        x = fw.tensor(np.random.default_rng(5).standard_normal((2, 3, 4, 4)), requires_grad=True)
        y = m(x)
        (y * fw.tensor(np.arange(96.0).reshape(2, 3, 4, 4))).sum().backward()
        m(x * 2)
        out = dict(y=y.detach().numpy(), dx=x.grad.numpy(), repr=repr(m))
        if m.track_running_stats:
            out.update(rm=m.running_mean.numpy(), rv=m.running_var.numpy())
            m.eval()
            out["eval"] = m(x).detach().numpy()
        if m.affine:
            out.update(dw=m.weight.grad.numpy(), db=m.bias.grad.numpy())
        return out
    lam, tor = _both(run)
    assert lam.pop("repr") == tor.pop("repr")
    _close(lam, tor, 1e-9, 1e-10)
