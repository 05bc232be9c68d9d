"""Small PyTorch functions and Tensor methods (compositions of lamina ops) and the mask
operators ~ & | ^ << >>, against torch: values and gradients in float64."""
import numpy as np
import pytest

import lamina
from conftest import assert_same_results, requires_torch, run_in_both


def _program(fw):
    out = {}
    x = fw.tensor(np.linspace(-3, 3, 12).reshape(3, 4), requires_grad=True)
    y = fw.tensor(np.linspace(1, 2, 12).reshape(3, 4))
    out["r"] = (fw.fmod(x, 1.3) + x.fmod(y) + fw.select(x, 1, 2).sum() + x.select(0, -1).sum()
                + fw.unflatten(x, 1, (2, -1)).sum(1).sum())
    out["cov"] = fw.cov(x)
    out["corr"] = fw.corrcoef(x + y * y)
    out["trap"] = fw.trapezoid(x, dim=1) + fw.trapezoid(x, dx=0.5, dim=0).sum()
    out["trapx"] = fw.trapezoid(x, fw.tensor([0.0, 1.0, 3.0, 4.5]))
    out["ctrap"] = fw.cumulative_trapezoid(x, dim=1)
    out["lcse"] = x.logcumsumexp(1) + fw.logcumsumexp(x, 0)
    out["where"] = x.where(x > 0, y)
    out["mT"] = x.mT + x.reshape(1, 3, 4).mT.sum(0)
    out["float_power"] = x.float_power(2)
    sum(v.sum() for v in out.values()).backward()
    out["dx"] = x.grad
    out["comb"] = fw.combinations(fw.tensor([1.0, 2.0, 3.0, 4.0]), 3).sum(1)
    out["combr"] = fw.combinations(fw.tensor([1.0, 2.0, 3.0]), 2, with_replacement=True)
    out["vander"] = fw.vander(fw.tensor([1.0, 2.0, 3.0]), N=4)
    out["vander_inc"] = fw.vander(fw.tensor([1.0, 2.0, 3.0]), increasing=True)
    for w in ("hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"):
        out[w] = getattr(fw, w)(8, dtype=fw.float64)
        out[w + "_sym"] = getattr(fw, w)(7, periodic=False, dtype=fw.float64)
    out["ip"] = fw.zeros(3, 4, dtype=fw.float64).index_put_((fw.tensor([0, 2, 0]), fw.tensor([1, 3, 1])),
                                                            fw.tensor([1.0, 2.0, 3.0]), accumulate=True)
    out["ip2"] = fw.zeros(3, 4, dtype=fw.float64).index_put((fw.tensor([0, 2]),), fw.tensor(5.0))
    z = fw.arange(6.0)
    z.apply_(lambda v: v * v + 1)
    out["apply"] = z
    out["contains"] = (3.0 in fw.tensor([1.0, 3.0]), 5 in fw.tensor([1, 2]))
    out["misc"] = (x.ndimension(), x.nelement(), x.get_device(), x.is_pinned(), fw.is_complex(x))
    out["rev"] = fw.tensor([[1, 2], [3, 4]]).__reversed__()
    out["reshape_as"] = fw.arange(12.0).reshape_as(x)
    return out


def test_small_functions_and_methods_match_torch():
    assert_same_results(*run_in_both(_program), tol=1e-10)


def test_mask_operators_match_torch():
    torch = requires_torch()

    def program(fw):
        m, n, i = fw.tensor([True, False, True]), fw.tensor([True, True, False]), fw.tensor([5, 3, -2])
        r = [(~m).tolist(), (m & n).tolist(), (m | n).tolist(), (m ^ n).tolist(), (m & True).tolist(),
             (False | m).tolist(), (~i).tolist(), (i & 6).tolist(), (i | 8).tolist(), (i << 2).tolist(),
             (i >> 1).tolist()]
        mm = m.clone()
        mm &= n
        mm |= fw.tensor([False, False, True])
        r.append(mm.tolist())
        x = fw.tensor([1.0, -2.0, 3.0])
        r.append(x[(x > 0) & ~(x > 2)].tolist())
        return r
    assert program(lamina) == program(torch)
    with pytest.raises(TypeError):
        ~lamina.tensor([1.0])
    with pytest.raises(TypeError):
        lamina.tensor([1.0]) & lamina.tensor([True])


def test_legacy_constructors_and_typed_tensor_classes_match_torch():
    torch = requires_torch()
    cases = ["fw.Tensor(2, 3).shape", "fw.Tensor([1, 2]).tolist()", "str(fw.Tensor([1, 2]).dtype).split('.')[-1]",
             "fw.Tensor().shape", "fw.Tensor(fw.Size([2, 1])).shape", "fw.FloatTensor([1, 2]).tolist()",
             "str(fw.LongTensor([1.0, 2.0]).dtype).split('.')[-1]", "fw.ones(2).type(fw.LongTensor).tolist()",
             "fw.ByteTensor([1]).tolist()", "fw.BoolTensor([1, 0]).tolist()", "fw.DoubleTensor(2).shape",
             "isinstance(fw.ones(1), fw.FloatTensor)", "isinstance(fw.ones(1), fw.LongTensor)",
             "fw.ones(2).new(3).shape", "fw.ones(2, dtype=fw.float64).new([1, 2]).tolist()",
             "str(fw.tensor([1, 2]).dtype).split('.')[-1]", "fw.ones(2).type()"]
    for c in cases:
        got, want = eval(c, {"fw": lamina}), eval(c, {"fw": torch})
        if hasattr(want, "__len__") and type(want).__name__ == "Size":
            got, want = tuple(got), tuple(want)
        if isinstance(want, str):
            got, want = got.replace("lamina", "FW"), want.replace("torch", "FW")
        assert got == want, c
