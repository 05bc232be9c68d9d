"""nn.utils.weight_norm / spectral_norm (and their remove_*) against PyTorch: parameter and
buffer names, the power-iteration buffers, training steps through the reparametrization."""
import warnings

import numpy as np
import pytest

import lamina
from conftest import assert_same_results, run_in_both


def _program(fw):
    warnings.simplefilter("ignore")   # torch's deprecation warning for the old weight_norm
    lin = fw.nn.utils.weight_norm(fw.nn.Linear(3, 4))
    conv = fw.nn.utils.weight_norm(fw.nn.Conv2d(2, 3, 2), dim=None)
    sn = fw.nn.utils.spectral_norm(fw.nn.Linear(5, 4))
    snc = fw.nn.utils.spectral_norm(fw.nn.Conv2d(2, 3, 2), n_power_iterations=2)
    snt = fw.nn.utils.spectral_norm(fw.nn.ConvTranspose2d(2, 3, 2))       # dim 1 by default
    out = {"names": sorted(n for n, _ in lin.named_parameters()) + sorted(sn.state_dict()),
           "g": lin.weight_g, "g_all": conv.weight_g}
    params = [p for m in (lin, conv, sn, snc, snt) for p in m.parameters()]
    opt = fw.optim.SGD(params, lr=0.1)
    x = fw.tensor(np.linspace(-1, 1, 6).reshape(2, 3))
    xi = fw.tensor(np.linspace(-1, 1, 32).reshape(1, 2, 4, 4))
    x5 = fw.tensor(np.linspace(-1, 1, 10).reshape(2, 5))
    for step in range(3):
        opt.zero_grad()
        loss = ((lin(x) ** 2).sum() + (conv(xi) ** 2).sum() + (sn(x5) ** 2).sum() + (snc(xi) ** 2).sum()
                + (snt(xi) ** 2).sum())
        loss.backward()
        opt.step()
        out[f"loss{step}"] = loss
    out["u"], out["v"], out["vt"] = sn.weight_u, snc.weight_v, snt.weight_u
    sn.eval()
    out["eval"] = sn(x5)                      # eval: no power iteration, the buffers stay
    out["u_after_eval"] = sn.weight_u
    fw.nn.utils.remove_weight_norm(lin)
    fw.nn.utils.remove_spectral_norm(sn)
    out["names_after"] = sorted(n for n, _ in lin.named_parameters()) + sorted(sn.state_dict())
    out["lin_after"], out["sn_after"] = lin(x), sn(x5)
    return out


def test_weight_norm_and_spectral_norm_match_torch():
    assert_same_results(*run_in_both(_program), tol=1e-10)


def test_misuse_is_refused():
    m = lamina.nn.utils.weight_norm(lamina.nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="two weight_norm"):
        lamina.nn.utils.weight_norm(m)
    with pytest.raises(ValueError, match="not found"):
        lamina.nn.utils.remove_spectral_norm(m)
    with pytest.raises(ValueError, match="n_power_iterations"):
        lamina.nn.utils.spectral_norm(lamina.nn.Linear(2, 2), n_power_iterations=0)
