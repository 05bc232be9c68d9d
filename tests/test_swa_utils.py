"""optim.swa_utils (AveragedModel, EMA averaging, SWALR, update_bn) against torch, and copies of
0-d tensors keeping their shape (deepcopy of a batch-norm layer's num_batches_tracked)."""
import copy
import pickle

import numpy as np

import lamina
from conftest import assert_same_results, run_in_both

X = np.random.default_rng(0).standard_normal((16, 3))
def program(fw):
    swa_utils = fw.optim.swa_utils
    net = fw.nn.Sequential(fw.nn.Linear(3, 4), fw.nn.BatchNorm1d(4), fw.nn.ReLU(), fw.nn.Linear(4, 1))
    opt = fw.optim.SGD(net.parameters(), lr=0.1)
    swa = swa_utils.AveragedModel(net)
    ema = swa_utils.AveragedModel(net, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.9))
    ema2 = swa_utils.AveragedModel(net, avg_fn=swa_utils.get_ema_avg_fn(0.8), use_buffers=True)
    sched = swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=3)
    lrs = []
    x = fw.tensor(X)
    for step in range(6):
        opt.zero_grad()
        (net(x) ** 2).mean().backward()
        opt.step()
        swa.update_parameters(net); ema.update_parameters(net); ema2.update_parameters(net)
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    loader = fw.utils.data.DataLoader(fw.utils.data.TensorDataset(x), batch_size=4)
    swa_utils.update_bn(loader, swa)
    return {"lrs": np.array(lrs), "swa": swa(x), "ema": ema(x), "ema2": ema2(x), "n": int(swa.n_averaged.item()),
            "rm": swa.module[1].running_mean, "rv": swa.module[1].running_var}


def test_swa_utils_match_torch():
    assert_same_results(*run_in_both(program), tol=1e-10)


def test_copies_keep_zero_dimensional_shapes():
    t = lamina.tensor(3.0, requires_grad=True)
    for c in (copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
        assert c.shape == () and c.item() == 3.0 and c.requires_grad
    assert copy.deepcopy(lamina.nn.BatchNorm1d(3)).num_batches_tracked.shape == ()
