"""More of torch.nn, against PyTorch in float64 from the same seed: the margin / embedding /
likelihood losses, ParameterList / ParameterDict, adaptive max pooling, Bilinear,
ConvTranspose1d, Softmax2d, CosineSimilarity, PairwiseDistance, Dropout1d/3d, Mish."""
import numpy as np
import pytest

import lamina
from conftest import assert_same_results, requires_torch, run_in_both


def _both(fn):
    assert_same_results(*run_in_both(fn))


def _inputs(fw):
    rng = np.random.default_rng(1)
    x = fw.tensor(rng.standard_normal((6, 5)), requires_grad=True)
    x2 = fw.tensor(rng.standard_normal((6, 5)), requires_grad=True)
    x3 = fw.tensor(rng.standard_normal((6, 5)))
    y = fw.tensor([1., -1., 1., 1., -1., -1.])
    yl = fw.tensor(np.where(rng.random((6, 5)) > 0.5, 1.0, -1.0))
    cls = fw.tensor([0, 4, 2, 2, 1, 3])
    return x, x2, x3, y, yl, cls


LOSSES = {
    "margin_ranking": lambda nn, F, x, x2, x3, y, yl, c: nn.MarginRankingLoss(0.3)(x[:, 0], x2[:, 0], y),
    "margin_ranking_sum": lambda nn, F, x, x2, x3, y, yl, c: nn.MarginRankingLoss(margin=0.1, reduction="sum")(
        x[:, 0], x2[:, 0], y),
    "hinge_embedding": lambda nn, F, x, x2, x3, y, yl, c: nn.HingeEmbeddingLoss(0.5)(x, yl),
    "soft_margin": lambda nn, F, x, x2, x3, y, yl, c: nn.SoftMarginLoss()(x, yl),
    "cosine_embedding": lambda nn, F, x, x2, x3, y, yl, c: nn.CosineEmbeddingLoss(0.2)(x, x2, y),
    "cosine_embedding_1d": lambda nn, F, x, x2, x3, y, yl, c: F.cosine_embedding_loss(x[0], x2[0], y[0]),
    "triplet": lambda nn, F, x, x2, x3, y, yl, c: nn.TripletMarginLoss()(x, x2, x3),
    "triplet_swap_p1": lambda nn, F, x, x2, x3, y, yl, c: nn.TripletMarginLoss(margin=0.5, p=1, swap=True)(x, x2, x3),
    "poisson": lambda nn, F, x, x2, x3, y, yl, c: nn.PoissonNLLLoss()(x, x3.abs()),
    "poisson_full": lambda nn, F, x, x2, x3, y, yl, c: nn.PoissonNLLLoss(log_input=False, full=True)(
        x.abs() + 0.1, x3.abs() * 3),
    "gaussian": lambda nn, F, x, x2, x3, y, yl, c: nn.GaussianNLLLoss()(x, x3, x2.abs() + 0.5),
    "gaussian_shared_var": lambda nn, F, x, x2, x3, y, yl, c: nn.GaussianNLLLoss(full=True, reduction="sum")(
        x, x3, x2[:, 0].abs()),
    "multilabel_soft_margin": lambda nn, F, x, x2, x3, y, yl, c: nn.MultiLabelSoftMarginLoss(
        weight=lamina_or_torch(nn).arange(1., 6.))(x, (yl > 0).double()),
    "multi_margin": lambda nn, F, x, x2, x3, y, yl, c: nn.MultiMarginLoss()(x, c),
    "multi_margin_p2": lambda nn, F, x, x2, x3, y, yl, c: nn.MultiMarginLoss(
        p=2, margin=0.7, weight=lamina_or_torch(nn).arange(1., 6.), reduction="none")(x, c).sum(),
}


def lamina_or_torch(nn):
    return lamina if nn is lamina.nn else requires_torch()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_torch(name):
    def run(fw):
        x, x2, x3, y, yl, c = _inputs(fw)
        loss = LOSSES[name](fw.nn, fw.nn.functional, x, x2, x3, y, yl, c)
        loss.backward()
        out = {"loss": loss, "dx": x.grad}
        if x2.grad is not None:
            out["dx2"] = x2.grad
        return out
    _both(run)


@pytest.mark.parametrize("size", [(3, 4), 1, (2, None), (7, 3), (3, 3)])
def test_adaptive_max_pool2d_matches_torch(size):
    def run(fw):
        x = fw.tensor(np.random.default_rng(2).standard_normal((2, 3, 7, 9)), requires_grad=True)
        y, i = fw.nn.functional.adaptive_max_pool2d(x, size, return_indices=True)
        (y * y).sum().backward()
        return {"y": y, "i": i, "dx": x.grad}
    _both(run)


def test_small_layers_match_torch():
    def run(fw):
        nn = fw.nn
        rng = np.random.default_rng(3)
        b = nn.Bilinear(3, 4, 5)
        x1 = fw.tensor(rng.standard_normal((6, 3)), requires_grad=True)
        x2 = fw.tensor(rng.standard_normal((6, 4)))
        yb = b(x1, x2)
        ct = nn.ConvTranspose1d(4, 3, 3, stride=2, padding=1, output_padding=1)
        xc = fw.tensor(rng.standard_normal((2, 4, 5)), requires_grad=True)
        yc = ct(xc)
        (yb.sum() + (yc * yc).sum()).backward()
        s = fw.tensor(rng.standard_normal((2, 3, 2, 2)))
        return {"b_w": b.weight, "yb": yb, "dx1": x1.grad, "dbw": b.weight.grad, "ct_w": ct.weight, "yc": yc,
                "dxc": xc.grad, "dctw": ct.weight.grad, "repr": repr(b) + repr(ct),
                "outsize": tuple(ct(xc, output_size=[10]).shape),
                "sm2d": nn.Softmax2d()(s), "cos": nn.CosineSimilarity(dim=1)(x1, x1 + 1),
                "pdist": nn.PairwiseDistance()(x1, x1 * 2), "mish": nn.Mish()(x1),
                "amax1d": nn.AdaptiveMaxPool1d(3)(xc), "aavg1d": nn.AdaptiveAvgPool1d(4)(xc),
                "drop_eval": nn.functional.dropout1d(xc, 0.5, training=False),
                "drop_repr": repr(nn.Dropout3d(0.3))}
    _both(run)


def test_parameter_containers_match_torch():
    def run(fw):
        nn = fw.nn

        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.ws = nn.ParameterList([nn.Parameter(fw.randn(3, 3)) for _ in range(2)])
                self.extra = nn.ParameterDict({"a": nn.Parameter(fw.ones(3))})
                self.extra["b"] = nn.Parameter(fw.zeros(3))

            def forward(self, x):
                for w in self.ws:
                    x = x @ w
                return x * self.extra["a"] + self.extra["b"]
        m = M()
        m.ws.append(nn.Parameter(fw.eye(3)))
        y = m(fw.ones(1, 3))
        y.sum().backward()
        return {"keys": list(m.state_dict().keys()), "y": y, "g0": m.ws[0].grad, "len": [len(m.ws), len(m.extra)]}
    _both(run)


@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (2, 5, 7), (2, 6, 2, 3, 2), (1, 1, 3)])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_local_response_norm_matches_torch(shape, size):
    x = np.random.default_rng(size).standard_normal(shape)

    def program(fw):
        t = fw.tensor(x, requires_grad=True)
        layer = fw.nn.LocalResponseNorm(size, alpha=0.3, beta=0.6, k=1.5)
        y = layer(t)
        (y * y).sum().backward()
        return {"y": y, "dx": t.grad, "repr": repr(layer)}
    assert_same_results(*run_in_both(program), tol=1e-13)


def test_fold_unfold_modules_match_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))

    def program(fw):
        t = fw.tensor(x, requires_grad=True)
        unfold = fw.nn.Unfold((3, 2), dilation=(1, 2), padding=1, stride=(2, 1))
        cols = unfold(t)
        fold = fw.nn.Fold((7, 6), (3, 2), dilation=(1, 2), padding=1, stride=(2, 1))
        back = fold(cols * 2.0)
        (back * back).sum().backward()
        return {"cols": cols, "back": back, "dx": t.grad, "r": repr(unfold) + repr(fold)}
    assert_same_results(*run_in_both(program), tol=1e-12)
    with pytest.raises(ValueError, match="sliding blocks"):
        lamina.nn.functional.fold(lamina.zeros(1, 12, 23), (7, 6), (3, 2), dilation=(1, 2), padding=1, stride=(2, 1))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("case", ["offsets", "2d", "last_offset", "padding", "weights"])
def test_embedding_bag_matches_torch(mode, case):
    if case == "weights" and mode != "sum":
        return
    idx1 = [1, 2, 4, 5, 4, 3, 2, 9, 0, 0]

    def program(fw):
        kw = {"mode": mode}
        if case == "last_offset":
            kw["include_last_offset"] = True
        if case == "padding":
            kw["padding_idx"] = 2
        bag = fw.nn.EmbeddingBag(10, 3, **kw)
        args = {"offsets": (fw.tensor([[1, 2, 4], [5, 4, 3]]), None), "2d": (fw.tensor([[1, 2, 4], [5, 4, 3]]), None),
                "last_offset": (fw.tensor(idx1), fw.tensor([0, 2, 2, 7, 10])),
                "padding": (fw.tensor(idx1), fw.tensor([0, 2, 3, 7])),
                "weights": (fw.tensor(idx1), fw.tensor([0, 4, 4, 8]))}[case]
        if case == "offsets":
            args = (fw.tensor(idx1), fw.tensor([0, 3, 3, 8]))     # bag 1 empty: zeros
        psw = fw.tensor(np.linspace(-1, 2, 10)) if case == "weights" else None
        y = bag(*args, per_sample_weights=psw) if psw is not None else bag(*args)
        (y * fw.tensor(np.arange(y.numel(), dtype=np.float64).reshape(tuple(y.shape)))).sum().backward()
        return {"y": y, "dw": bag.weight.grad, "repr": repr(bag)}
    assert_same_results(*run_in_both(program), tol=1e-12)
