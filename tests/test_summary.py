"""lamina.summary: units / connections / weights counted the lecture's way.

The LeNet table is the lecture's ("Sizes of layers in LeNet"); AlexNet is checked against a
count written here layer by layer; stride, padding, dilation and groups against a brute-force
enumeration of every output unit's receptive field.
"""
import itertools
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import lamina
import lamina.nn as nn
from lamina.summary import LayerRow, Summary, summary

from conftest import requires_torch

# Lecture, "Sizes of layers in LeNet": (layer, units, connections, weights).
LECTURE_LENET = [
    ("C1", 4704, 117_600, 150),
    ("S2", 1176, 4704, 0),
    ("C3", 1600, 240_000, 2400),
    ("S4", 400, 1600, 0),
    ("F5", 120, 48_000, 48_000),
    ("F6", 84, 10_080, 10_080),
    ("output", 10, 840, 840),
]


def lenet_paper_layers():
    """LeNet-5 as in the lecture: 32x32 input, no padding, full C3, weightless pooling."""
    return nn.Sequential(OrderedDict([
        ("C1", nn.Conv2d(1, 6, 5)), ("act1", nn.Tanh()), ("S2", nn.AvgPool2d(2)),
        ("C3", nn.Conv2d(6, 16, 5)), ("act3", nn.Tanh()), ("S4", nn.AvgPool2d(2)),
        ("flatten", nn.Flatten()),
        ("F5", nn.Linear(400, 120)), ("act5", nn.Tanh()),
        ("F6", nn.Linear(120, 84)), ("act6", nn.Tanh()),
        ("output", nn.Linear(84, 10)),
    ]))


def counted_rows(s):
    return [r for r in s.rows if r.kind != "passthrough"]


def check_lecture_table(s):
    rows = counted_rows(s)
    got = [(r.units, r.connections, r.weights) for r in rows]
    assert got == [t[1:] for t in LECTURE_LENET]
    assert [r.biases for r in rows] == [6, 0, 16, 0, 120, 84, 10]
    assert s.total_units == sum(t[1] for t in LECTURE_LENET) == 8094
    assert s.total_connections == sum(t[2] for t in LECTURE_LENET) == 422_824
    assert s.total_weights == sum(t[3] for t in LECTURE_LENET) == 61_470
    assert s.total_biases == 236
    text = str(s)
    assert "3 x 422,824 = 1,268,472" in text  # the lecture's ~3 multiply-adds per connection
    assert "117,600" in text and "240,000" in text


def test_lenet_table_from_layers():
    s = summary(lenet_paper_layers(), (1, 32, 32))
    check_lecture_table(s)
    assert s.row("C1").output_shape == (6, 28, 28)
    assert s.row("S4").output_shape == (16, 5, 5)
    # no padding anywhere, so every multiply-add computed is a connection for the weighted layers
    assert s.row("C1").macs == 117_600 and s.row("C3").macs == 240_000


def test_lenet5_paper_model_reproduces_the_lecture_table():
    s = summary(lamina.models.lenet5(paper=True), (1, 32, 32))
    check_lecture_table(s)


def test_lenet5_mnist_variant_runs_on_28x28():
    s = summary(lamina.models.lenet5(), (1, 28, 28))
    assert s.total_params == sum(p.numel() for p in lamina.models.lenet5().parameters())
    assert counted_rows(s)[0].output_shape == (6, 28, 28)  # padding 2 keeps 28x28
    # padded zeros are not units: fewer connections than multiply-adds on C1
    c1 = counted_rows(s)[0]
    assert c1.connections < c1.macs == 4704 * 25


# ------------------------------------------------------------------------------------ AlexNet
def _axis_taps(L, K, s, p, d):
    """(output length, sum over outputs of in-bounds taps) along one axis, by explicit loops."""
    out = (L + 2 * p - d * (K - 1) - 1) // s + 1
    total = 0
    for o in range(out):
        for k in range(K):
            if 0 <= o * s - p + k * d < L:
                total += 1
    return out, total


def independent_alexnet_count(layers, in_shape):
    """Per layer (units, connections, weights, biases) by formula, for a list of layer specs."""
    C, H, W = in_shape
    rows = []
    for spec in layers:
        kind = spec[0]
        if kind == "conv":
            _, c_out, K, s, p, g = spec
            oh, th = _axis_taps(H, K, s, p, 1)
            ow, tw = _axis_taps(W, K, s, p, 1)
            rows.append((c_out * oh * ow, c_out * (C // g) * th * tw, c_out * (C // g) * K * K, c_out))
            C, H, W = c_out, oh, ow
        elif kind == "maxpool":
            _, K, s = spec
            oh, th = _axis_taps(H, K, s, 0, 1)
            ow, tw = _axis_taps(W, K, s, 0, 1)
            rows.append((C * oh * ow, C * th * tw, 0, 0))
            H, W = oh, ow
        elif kind == "adaptive":  # 6x6 -> 6x6: every window is one input
            _, out = spec
            assert (H, W) == (out, out)
            rows.append((C * out * out, C * out * out, 0, 0))
        elif kind == "fc":
            _, n_out = spec
            n_in = C * H * W
            rows.append((n_out, n_in * n_out, n_in * n_out, n_out))
            C, H, W = n_out, 1, 1
    return rows


ALEXNET_TORCHVISION = [("conv", 64, 11, 4, 2, 1), ("maxpool", 3, 2), ("conv", 192, 5, 1, 2, 1), ("maxpool", 3, 2),
                       ("conv", 384, 3, 1, 1, 1), ("conv", 256, 3, 1, 1, 1), ("conv", 256, 3, 1, 1, 1),
                       ("maxpool", 3, 2), ("adaptive", 6), ("fc", 4096), ("fc", 4096), ("fc", 1000)]
ALEXNET_PAPER = [("conv", 96, 11, 4, 2, 1), ("maxpool", 3, 2), ("conv", 256, 5, 1, 2, 2), ("maxpool", 3, 2),
                 ("conv", 384, 3, 1, 1, 1), ("conv", 384, 3, 1, 1, 2), ("conv", 256, 3, 1, 1, 2),
                 ("maxpool", 3, 2), ("fc", 4096), ("fc", 4096), ("fc", 1000)]


@pytest.mark.parametrize("variant, spec, n_params", [
    ("torchvision", ALEXNET_TORCHVISION, 61_100_840),   # torchvision's published count
    ("paper", ALEXNET_PAPER, 60_965_224),                # the paper's "60 million parameters"
])
def test_alexnet_totals_match_an_independent_count(variant, spec, n_params):
    net = lamina.models.alexnet(variant=variant)
    s = summary(net, (3, 224, 224))
    want = independent_alexnet_count(spec, (3, 224, 224))
    got = [(r.units, r.connections, r.weights, r.biases) for r in counted_rows(s)]
    assert got == want
    assert s.total_units == sum(w[0] for w in want)
    assert s.total_connections == sum(w[1] for w in want)
    assert s.total_weights + s.total_biases == n_params == sum(p.numel() for p in net.parameters())
    assert s.training_macs == 3 * s.total_connections
    assert counted_rows(s)[-1].output_shape == (1000,)


def test_alexnet_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        lamina.models.alexnet(variant="vgg")
    with pytest.raises(ValueError, match="num_classes"):
        lamina.models.alexnet(num_classes=0)


# ------------------------------------------------------------------------------------ brute force
def brute_force_conv2d(c_in, c_out, H, W, K, S, P, D, G):
    """Enumerate every output unit and its receptive field; count in-bounds input units."""
    KH, KW = K
    oh = (H + 2 * P[0] - D[0] * (KH - 1) - 1) // S[0] + 1
    ow = (W + 2 * P[1] - D[1] * (KW - 1) - 1) // S[1] + 1
    cpg, opg = c_in // G, c_out // G
    links = 0
    for co, y, x in itertools.product(range(c_out), range(oh), range(ow)):
        g = co // opg
        for ci in range(g * cpg, (g + 1) * cpg):
            for ky, kx in itertools.product(range(KH), range(KW)):
                iy, ix = y * S[0] - P[0] + ky * D[0], x * S[1] - P[1] + kx * D[1]
                if 0 <= iy < H and 0 <= ix < W:
                    links += 1
    return c_out * oh * ow, links, (c_out, oh, ow)


def brute_force_pool2d(C, H, W, K, S, P, D=(1, 1)):
    oh = (H + 2 * P[0] - D[0] * (K[0] - 1) - 1) // S[0] + 1
    ow = (W + 2 * P[1] - D[1] * (K[1] - 1) - 1) // S[1] + 1
    links = 0
    for c, y, x in itertools.product(range(C), range(oh), range(ow)):
        window = {(y * S[0] - P[0] + a * D[0], x * S[1] - P[1] + b * D[1])
                  for a in range(K[0]) for b in range(K[1])}
        links += sum(1 for iy, ix in window if 0 <= iy < H and 0 <= ix < W)
    return C * oh * ow, links, (C, oh, ow)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_conv2d_counts_match_brute_force(data):
    G = data.draw(st.sampled_from([1, 2, 3]))
    c_in = G * data.draw(st.integers(1, 2))
    c_out = G * data.draw(st.integers(1, 2))
    K = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    S = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    D = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    P = (data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3)))
    # smallest input with at least one output: the dilated kernel fits in the padded input
    h_min = max(1, D[0] * (K[0] - 1) + 1 - 2 * P[0])
    w_min = max(1, D[1] * (K[1] - 1) + 1 - 2 * P[1])
    H = data.draw(st.integers(h_min, h_min + 6))
    W = data.draw(st.integers(w_min, w_min + 6))
    conv = nn.Conv2d(c_in, c_out, K, stride=S, padding=P, dilation=D, groups=G)
    s = summary(conv, (c_in, H, W))
    (row,) = s.rows
    units, links, shape = brute_force_conv2d(c_in, c_out, H, W, K, S, P, D, G)
    assert row.output_shape == shape
    assert (row.units, row.connections) == (units, links)
    assert row.weights == c_out * (c_in // G) * K[0] * K[1] and row.biases == c_out
    assert row.macs == units * (c_in // G) * K[0] * K[1]  # padded taps are computed, not connected
    assert row.connections <= row.macs


@pytest.mark.parametrize("L, K, s, p, d, g", [(10, 3, 2, 1, 1, 1), (9, 3, 1, 2, 3, 2), (7, 4, 3, 3, 1, 4),
                                              (5, 5, 1, 0, 1, 1)])
def test_conv1d_counts_match_brute_force(L, K, s, p, d, g):
    c_in, c_out = 2 * g, g
    row, = summary(nn.Conv1d(c_in, c_out, K, stride=s, padding=p, dilation=d, groups=g), (c_in, L)).rows
    # a 1-D conv is a 2-D conv over a height-1 image
    units, links, shape = brute_force_conv2d(c_in, c_out, 1, L, (1, K), (1, s), (0, p), (1, d), g)
    assert (row.units, row.connections, row.output_shape) == (units, links, (shape[0], shape[2]))


@pytest.mark.parametrize("layer, C, H, W, K, S, P, D", [
    (nn.MaxPool2d(2), 3, 8, 8, (2, 2), (2, 2), (0, 0), (1, 1)),
    (nn.MaxPool2d(3, stride=2, padding=1), 2, 7, 6, (3, 3), (2, 2), (1, 1), (1, 1)),
    (nn.MaxPool2d((3, 2), stride=(1, 2), padding=(1, 1), dilation=(2, 1)), 2, 7, 5, (3, 2), (1, 2), (1, 1), (2, 1)),
    (nn.AvgPool2d(3, stride=2, padding=1), 1, 9, 9, (3, 3), (2, 2), (1, 1), (1, 1)),
    (nn.AvgPool2d((2, 3), stride=1), 2, 4, 5, (2, 3), (1, 1), (0, 0), (1, 1)),
])
def test_pool_counts_match_brute_force(layer, C, H, W, K, S, P, D):
    row, = summary(layer, (C, H, W)).rows
    units, links, shape = brute_force_pool2d(C, H, W, K, S, P, D)
    assert (row.units, row.connections, row.output_shape) == (units, links, shape)
    assert row.weights == row.biases == 0


@pytest.mark.parametrize("H, W, out", [(7, 5, (3, 2)), (6, 6, (6, 6)), (5, 4, (1, 1)), (4, 9, (4, 4))])
def test_adaptive_pool_counts_match_brute_force(H, W, out):
    row, = summary(nn.AdaptiveAvgPool2d(out), (2, H, W)).rows
    links = 0
    for y, x in itertools.product(range(out[0]), range(out[1])):
        # window: rows floor(y H / oh) .. ceil((y + 1) H / oh) - 1 (the rule PyTorch documents)
        y0, y1 = (y * H) // out[0], int(np.ceil((y + 1) * H / out[0]))
        x0, x1 = (x * W) // out[1], int(np.ceil((x + 1) * W / out[1]))
        links += sum(1 for _ in itertools.product(range(y0, y1), range(x0, x1)))
    assert (row.units, row.connections) == (2 * out[0] * out[1], 2 * links)


def test_conv_connections_equal_nonzeros_of_the_jacobian():
    """An independent definition: input i feeds unit j iff d y_j / d x_i != 0 (random weights)."""
    torch = requires_torch()
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2)
    row, = summary(conv, (4, 7, 6)).rows
    tconv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2).double()
    torch.nn.init.uniform_(tconv.weight, 0.5, 1.5)  # no weight is zero, so a link is a nonzero
    J = torch.autograd.functional.jacobian(tconv, torch.randn(1, 4, 7, 6, dtype=torch.float64))
    assert row.connections == int((J != 0).sum())
    assert row.units == J[0].numel() // (4 * 7 * 6)


# ------------------------------------------------------------------------------------ behaviour
def test_fused_linear_activation_records_both_layers():
    net = lamina.models.mlp((784, 300, 100, 10))
    s = summary(net, (1, 28, 28))
    assert [(r.name, r.type) for r in s.rows] == [
        ("flatten", "Flatten"), ("fc1", "Linear"), ("act1", "ReLU"), ("fc2", "Linear"),
        ("act2", "ReLU"), ("fc3", "Linear")]
    assert s.row("act1").output_shape == (300,) and s.row("act1").units == 0
    assert s.total_units == 410 and s.total_connections == 784 * 300 + 300 * 100 + 100 * 10
    assert s.total_params == sum(p.numel() for p in net.parameters())


def test_forwards_and_modes_restored_even_on_error():
    net = lamina.models.mlp((4, 3, 2))
    net.train()
    before = {id(m): dict(m.__dict__) for m in net.modules()}
    with pytest.raises(ValueError, match="fc1"):
        summary(net, (5,))  # wrong width: Linear raises inside the recorded forward
    for m in net.modules():
        assert "forward" not in m.__dict__ and "_forward_act" not in m.__dict__
        assert m.__dict__.keys() == before[id(m)].keys()
        assert m.training
    out = net(lamina.ones(2, 4))  # still a working model
    assert out.shape == (2, 2)
    summary(net, (4,))
    assert all(m.training for m in net.modules())


def test_shared_module_is_two_rows_and_one_set_of_weights():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.fc(self.fc(x)).relu())

    s = summary(Twice(), (8,))
    assert [r.name for r in s.rows] == ["fc", "fc", "head"]
    assert [r.units for r in s.rows] == [8, 8, 2]
    assert [r.connections for r in s.rows] == [64, 64, 16]
    assert [r.weights for r in s.rows] == [64, 0, 16]  # the second call reuses the same weights
    assert s.rows[1].note.startswith("call 2")
    assert s.total_params == 64 + 8 + 16 + 2


def test_unknown_layer_is_listed_with_unknown_connections():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(np.ones(5, dtype=np.float32))

        def forward(self, x):
            return x * self.weight

    s = summary(nn.Sequential(Scale(), nn.Linear(5, 3)), (5,))
    r = s.rows[0]
    assert (r.kind, r.units, r.connections, r.weights, r.macs) == ("unknown", 5, None, 5, None)
    assert s.total_connections == 15
    assert "?" in str(s) and "no counting rule" in str(s)


def test_residual_network_counts_every_parameter_once():
    net = lamina.models.resnet_mnist()
    s = summary(net, (1, 28, 28))
    assert s.total_params == sum(p.numel() for p in net.parameters())
    assert all(r.connections is not None for r in s.rows)
    assert s.rows[-1].output_shape == (10,)


def test_bad_arguments():
    net = lamina.models.mlp((4, 3, 2))
    with pytest.raises(TypeError, match="model"):
        summary("not a model", (4,))
    with pytest.raises(TypeError, match="input_shape"):
        summary(net, "4")
    with pytest.raises(ValueError, match="input_shape"):
        summary(net, (0,))
    with pytest.raises(ValueError, match="input_shape"):
        summary(net, (4.0,))
    with pytest.raises(TypeError, match="dtype"):
        summary(net, (4,), dtype=np.int64)
    s = summary(net, 4)  # an int is a 1-D shape
    assert s.input_shape == (4,)
    with pytest.raises(KeyError, match="fc9"):
        s.row("fc9")


def test_render_and_types():
    s = summary(lenet_paper_layers().double(), (1, 32, 32), dtype=np.float64)
    assert isinstance(s, Summary) and all(isinstance(r, LayerRow) for r in s.rows)
    assert s.itemsize == 8
    full, short = s.render(), s.render(show_passthrough=False)
    assert "act1" in full and "act1" not in short
    assert short.count("\n") == full.count("\n") - 5
    assert "Total" in full and "8,094" in full and "61,470" in full
    assert repr(s).startswith("Summary(Sequential")
    assert s.to_dicts()[0]["name"] == "C1"


def test_an_instance_level_forward_is_kept():
    net = lamina.models.mlp((4, 3, 2))
    calls = []
    original = net.fc2.forward

    def spy(x):
        calls.append(tuple(x.shape))
        return original(x)

    object.__setattr__(net.fc2, "forward", spy)
    s = summary(net, (4,))
    assert calls == [(1, 3)] and s.row("fc2").units == 2
    assert net.fc2.__dict__["forward"] is spy


def test_public_docstrings_run():
    import doctest
    import sys
    import lamina.viz
    for mod in (sys.modules["lamina.summary"], sys.modules["lamina.models.alexnet"], lamina.viz):
        result = doctest.testmod(mod)
        assert result.failed == 0 and result.attempted > 0, mod.__name__


@pytest.mark.parametrize("K, D", [(1, 1), (3, 1), (3, 2), (5, 3)])  # lamina: odd extents only
def test_same_padding_counts_match_brute_force(K, D):
    conv = nn.Conv2d(2, 4, K, padding="same", dilation=D, groups=2)
    row, = summary(conv, (2, 6, 7)).rows
    before = D * (K - 1) // 2  # "same" pads total // 2 before, the rest (one more if odd) after
    links = 0
    for co, y, x in itertools.product(range(4), range(6), range(7)):
        for ky, kx in itertools.product(range(K), range(K)):
            iy, ix = y - before + ky * D, x - before + kx * D
            links += 1 if (0 <= iy < 6 and 0 <= ix < 7) else 0  # one input channel per group
    assert row.output_shape == (4, 6, 7) and row.units == 4 * 6 * 7
    assert row.connections == links
