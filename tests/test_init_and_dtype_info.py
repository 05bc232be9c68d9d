"""nn.init's trunc_normal_ / orthogonal_ / eye_ / dirac_ give PyTorch's values from the same seed
(trunc_normal_ by PyTorch's rejection sampling, draw for draw, in both of its regimes);
finfo / iinfo / promote_types / result_type / can_cast, is_inference_mode_enabled and
utils.checkpoint answer as PyTorch's."""
import numpy as np
import pytest

import lamina
from conftest import requires_torch


def _draw(fw, dt, fill):
    fw.manual_seed(0)
    w = fw.empty(*fill[0], dtype=getattr(fw, dt))
    fill[1](fw.nn.init, w)
    return w.numpy(), fw.randn(3).numpy()  # the values, and where the generator was left


INITS = {
    "trunc_normal_std": ((40, 6), lambda I, w: I.trunc_normal_(w, std=0.02)),
    "trunc_normal_shifted": ((3, 50), lambda I, w: I.trunc_normal_(w, mean=1.0, std=2.0, a=-1.0, b=2.5)),
    "trunc_normal_narrow": ((200,), lambda I, w: I.trunc_normal_(w, std=2.0, a=-0.1, b=0.2)),
    "orthogonal_tall": ((5, 3), lambda I, w: I.orthogonal_(w, gain=2.0)),
    "orthogonal_wide": ((3, 5), lambda I, w: I.orthogonal_(w)),
    "orthogonal_conv": ((3, 2, 2, 2), lambda I, w: I.orthogonal_(w)),
    "eye": ((3, 4), lambda I, w: I.eye_(w)),
    "dirac_groups": ((4, 2, 3, 3), lambda I, w: I.dirac_(w, groups=2)),
}


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(INITS))
def test_init_matches_torch(name, dt):
    torch = requires_torch()
    (lv, lr), (tv, tr) = _draw(lamina, dt, INITS[name]), _draw(torch, dt, INITS[name])
    # QR may round differently in the last bits; everything else is draw for draw
    tol = (1e-6 if dt == "float32" else 1e-13) if name.startswith("orthogonal") else 0
    np.testing.assert_allclose(lv, tv, rtol=tol, atol=tol)
    np.testing.assert_array_equal(lr, tr)
    if name.startswith("orthogonal"):
        flat = lv.reshape(lv.shape[0], -1)
        small = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
        gain = 2.0 if name == "orthogonal_tall" else 1.0
        np.testing.assert_allclose(small, gain ** 2 * np.eye(small.shape[0]), atol=1e-5)


def test_dtype_info_matches_torch():
    torch = requires_torch()
    for lt, tt in ((lamina.float32, torch.float32), (lamina.float64, torch.float64)):
        lf, tf = lamina.finfo(lt), torch.finfo(tt)
        for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(lf, attr) == getattr(tf, attr), attr
    assert lamina.finfo().eps == torch.finfo().eps
    for lt, tt in ((lamina.int64, torch.int64), (lamina.uint8, torch.uint8), (lamina.int32, torch.int32)):
        assert (lamina.iinfo(lt).min, lamina.iinfo(lt).max) == (torch.iinfo(tt).min, torch.iinfo(tt).max)
    assert str(lamina.promote_types(lamina.int64, lamina.float32)) == "float32"
    assert str(lamina.promote_types(lamina.uint8, lamina.int8)) == "int16"
    assert str(lamina.result_type(lamina.tensor([1, 2]), 1.0)) == "float32"
    assert str(lamina.result_type(lamina.tensor([1.0], dtype=lamina.float64), lamina.tensor(2.0))) == "float64"
    pairs = [("float32", "int32"), ("int32", "float32"), ("bool", "int64"), ("int64", "bool"), ("float64", "float32")]
    for a, b in pairs:
        assert lamina.can_cast(getattr(lamina, a if a != "bool" else "bool_"), getattr(lamina, b if b != "bool" else "bool_")) \
            == torch.can_cast(getattr(torch, a), getattr(torch, b)), (a, b)
    with pytest.raises(TypeError):
        lamina.finfo(lamina.int64)


def test_inference_mode_flag_and_checkpoint():
    assert not lamina.is_inference_mode_enabled()
    with lamina.inference_mode():
        assert lamina.is_inference_mode_enabled()
        with lamina.inference_mode(False):
            assert not lamina.is_inference_mode_enabled()
        assert lamina.is_inference_mode_enabled()
    assert not lamina.is_inference_mode_enabled()
    from lamina.utils.checkpoint import checkpoint
    lin = lamina.nn.Linear(3, 2)
    x = lamina.randn(4, 3, requires_grad=True)
    checkpoint(lin, x, use_reentrant=False).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.tile(lin.weight.detach().numpy().sum(0), (4, 1)), rtol=1e-6)
