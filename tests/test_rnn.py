"""nn.RNN / LSTM / GRU and their Cells against PyTorch: same seed -> same parameters, and the
same outputs, final states and gradients, as compositions of lamina's differentiable ops."""
import itertools

import numpy as np
import pytest

import lamina
import lamina.nn as nn
from conftest import requires_torch

CLASSES = ("RNN", "LSTM", "GRU")
CELLS = ("RNNCell", "LSTMCell", "GRUCell")
I, H, L, N = 3, 4, 5, 2


def _pair(name, *args, seed=0, dtype="float64", **kwargs):
    """The same layer built by torch and by lamina after the same manual_seed."""
    torch = requires_torch()
    torch.manual_seed(seed)
    t = getattr(torch.nn, name)(*args, dtype=getattr(torch, dtype), **kwargs)
    lamina.manual_seed(seed)
    m = getattr(nn, name)(*args, dtype=getattr(lamina, dtype), **kwargs)
    return t, m


def _leaf(a):
    """A float tensor of a's values for each framework, requiring grad."""
    torch = requires_torch()
    return (torch.tensor(a, requires_grad=True), lamina.tensor(a, requires_grad=True))


def _np(t):
    return t.detach().numpy()


def _states(out, lstm):
    """The final state(s) of a forward's second result, as a tuple."""
    return tuple(out) if lstm else (out,)


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("name,args,kwargs", [
    ("RNN", (I, H), {}), ("RNN", (I, H, 2, "relu"), {"bidirectional": True}),
    ("LSTM", (I, H), {}), ("LSTM", (7, 5, 3), {"bidirectional": True, "bias": False}),
    ("GRU", (I, H, 2), {}), ("GRU", (I, H), {"bidirectional": True}),
    ("RNNCell", (I, H), {}), ("LSTMCell", (I, H), {}), ("GRUCell", (I, H), {"bias": False}),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_torchs_parameters_bit_for_bit(name, args, kwargs, dtype):
    t, m = _pair(name, *args, dtype=dtype, **kwargs)
    tp, mp = list(t.named_parameters()), list(m.named_parameters())
    assert [n for n, _ in mp] == [n for n, _ in tp]
    for (n, a), (_, b) in zip(tp, mp):
        assert tuple(b.shape) == tuple(a.shape), n
        assert b.dtype == getattr(lamina, dtype), n
        assert np.array_equal(_np(b), _np(a)), n
    assert list(m.state_dict()) == list(t.state_dict())


@pytest.mark.parametrize("name,args,kwargs", [
    ("LSTM", (10, 20), {"num_layers": 2, "batch_first": True}),
    ("GRU", (3, 4), {"bias": False, "dropout": 0.5, "num_layers": 3, "bidirectional": True}),
    ("RNN", (3, 4), {"nonlinearity": "relu"}), ("RNN", (3, 4), {}),
    ("RNNCell", (3, 4), {"nonlinearity": "relu", "bias": False}), ("LSTMCell", (3, 4), {}),
])
def test_repr_is_torchs(name, args, kwargs):
    t, m = _pair(name, *args, **kwargs)
    assert repr(m) == repr(t)


# --------------------------------------------------------------------------- forward and gradients
GRID = list(itertools.product(CLASSES, (1, 2), (False, True), (False, True), (False, True), (False, True)))


@pytest.mark.parametrize("name,num_layers,bidirectional,batch_first,unbatched,given_hx", GRID)
def test_forward_and_gradients_match_torch_float64(name, num_layers, bidirectional, batch_first, unbatched,
                                                   given_hx):
    torch = requires_torch()
    t, m = _pair(name, I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    rng = np.random.default_rng(7)
    shape = (L, I) if unbatched else ((N, L, I) if batch_first else (L, N, I))
    tx, mx = _leaf(rng.standard_normal(shape))
    lstm = name == "LSTM"
    state_shape = (num_layers * (2 if bidirectional else 1),) + (() if unbatched else (N,)) + (H,)
    if given_hx:
        leaves = [_leaf(rng.standard_normal(state_shape)) for _ in range(2 if lstm else 1)]
        th = tuple(a for a, _ in leaves) if lstm else leaves[0][0]
        mh = tuple(b for _, b in leaves) if lstm else leaves[0][1]
    else:
        leaves, th, mh = [], None, None
    tout, tstate = t(tx, th)
    mout, mstate = m(mx, mh)
    assert tuple(mout.shape) == tuple(tout.shape)
    np.testing.assert_allclose(_np(mout), _np(tout), rtol=1e-10, atol=1e-10)
    for a, b in zip(_states(tstate, lstm), _states(mstate, lstm), strict=True):
        assert tuple(b.shape) == tuple(a.shape)
        np.testing.assert_allclose(_np(b), _np(a), rtol=1e-10, atol=1e-10)

    # A loss reading the output and every final state, weighted so no gradient is symmetric.
    w = rng.standard_normal(tuple(tout.shape))
    (tout * torch.tensor(w)).sum().backward(retain_graph=True)
    sum((s * s).sum() for s in _states(tstate, lstm)).backward()
    ((mout * lamina.tensor(w)).sum() + sum((s * s).sum() for s in _states(mstate, lstm))).backward()
    pairs = [(tx, mx)] + leaves + list(zip(t.parameters(), m.parameters()))
    for a, b in pairs:
        np.testing.assert_allclose(_np(b.grad), _np(a.grad), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name,kwargs", [
    ("RNN", {"nonlinearity": "relu"}), ("RNN", {"nonlinearity": "relu", "num_layers": 2, "bias": False}),
    ("LSTM", {"bias": False}), ("GRU", {"bias": False, "bidirectional": True}),
])
def test_relu_and_no_bias_match_torch(name, kwargs):
    t, m = _pair(name, I, H, **kwargs)
    tx, mx = _leaf(np.random.default_rng(3).standard_normal((L, N, I)))
    tout, _ = t(tx)
    mout, _ = m(mx)
    np.testing.assert_allclose(_np(mout), _np(tout), rtol=1e-10, atol=1e-10)
    (tout * tout).sum().backward()
    (mout * mout).sum().backward()
    for a, b in [(tx, mx)] + list(zip(t.parameters(), m.parameters())):
        np.testing.assert_allclose(_np(b.grad), _np(a.grad), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_float32_forward_matches_torch(name, bidirectional):
    torch = requires_torch()
    t, m = _pair(name, 6, 8, num_layers=2, bidirectional=bidirectional, dtype="float32")
    x = np.random.default_rng(5).standard_normal((12, 3, 6)).astype(np.float32)
    tout, tstate = t(torch.tensor(x))
    mout, mstate = m(lamina.tensor(x))
    assert mout.dtype == lamina.float32
    np.testing.assert_allclose(_np(mout), _np(tout), rtol=1e-5, atol=1e-5)
    for a, b in zip(_states(tstate, name == "LSTM"), _states(mstate, name == "LSTM"), strict=True):
        np.testing.assert_allclose(_np(b), _np(a), rtol=1e-5, atol=1e-5)


def test_long_sequence_gradients_match_torch():
    """Past the blocked time slicing's threshold: 23 steps in uneven blocks of 5."""
    t, m = _pair("LSTM", I, H, bidirectional=True)
    tx, mx = _leaf(np.random.default_rng(11).standard_normal((23, N, I)))
    tout, _ = t(tx)
    mout, _ = m(mx)
    (tout * tout).sum().backward()
    (mout * mout).sum().backward()
    np.testing.assert_allclose(_np(mout), _np(tout), rtol=1e-10, atol=1e-10)
    for a, b in [(tx, mx)] + list(zip(t.parameters(), m.parameters())):
        np.testing.assert_allclose(_np(b.grad), _np(a.grad), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name,kwargs", [
    ("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu", "bias": False}),
    ("LSTMCell", {}), ("LSTMCell", {"bias": False}), ("GRUCell", {}), ("GRUCell", {"bias": False}),
])
@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("given_hx", [False, True])
def test_cells_match_torch(name, kwargs, unbatched, given_hx):
    t, m = _pair(name, I, H, **kwargs)
    rng = np.random.default_rng(2)
    tx, mx = _leaf(rng.standard_normal((I,) if unbatched else (N, I)))
    lstm = name == "LSTMCell"
    leaves = [_leaf(rng.standard_normal((H,) if unbatched else (N, H))) for _ in range(2 if lstm else 1)]
    if given_hx:
        th = tuple(a for a, _ in leaves) if lstm else leaves[0][0]
        mh = tuple(b for _, b in leaves) if lstm else leaves[0][1]
    else:
        leaves, th, mh = [], None, None
    tout, mout = _states(t(tx, th), lstm), _states(m(mx, mh), lstm)
    for a, b in zip(tout, mout, strict=True):
        assert tuple(b.shape) == tuple(a.shape)
        np.testing.assert_allclose(_np(b), _np(a), rtol=1e-12, atol=1e-12)
    sum((s * s * (k + 1)).sum() for k, s in enumerate(tout)).backward()
    sum((s * s * (k + 1)).sum() for k, s in enumerate(mout)).backward()
    for a, b in [(tx, mx)] + leaves + list(zip(t.parameters(), m.parameters())):
        np.testing.assert_allclose(_np(b.grad), _np(a.grad), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_finite_difference_gradcheck(name):
    lamina.manual_seed(0)
    m = getattr(nn, name)(2, 2, num_layers=2, bidirectional=True, dtype=lamina.float64)
    x = lamina.randn(3, 2, 2, dtype=lamina.float64, requires_grad=True)
    h0 = lamina.randn(4, 2, 2, dtype=lamina.float64, requires_grad=True)
    hx = (h0, lamina.randn(4, 2, 2, dtype=lamina.float64, requires_grad=True)) if name == "LSTM" else h0
    states = list(hx) if name == "LSTM" else [hx]

    def run(*_):
        out, final = m(x, hx)
        return (out,) + _states(final, name == "LSTM")
    assert lamina.autograd.gradcheck(run, [x] + states + list(m.parameters()), atol=1e-7, rtol=1e-6)


# --------------------------------------------------------------------------- dropout between layers
def test_dropout_eval_is_torchs_and_train_drops():
    t, m = _pair("LSTM", I, H, num_layers=3, dropout=0.5)
    x = np.random.default_rng(4).standard_normal((L, N, I))
    t.eval()
    m.eval()
    np.testing.assert_allclose(_np(m(lamina.tensor(x))[0]), _np(t(requires_torch().tensor(x))[0]),
                               rtol=1e-10, atol=1e-10)
    m.train()
    lamina.manual_seed(1)
    a, (h, c) = m(lamina.tensor(x))
    b, _ = m(lamina.tensor(x))
    assert tuple(a.shape) == (L, N, H) and tuple(h.shape) == tuple(c.shape) == (3, N, H)
    evald = _np(m.eval()(lamina.tensor(x))[0])
    assert not np.allclose(_np(a), evald) and not np.allclose(_np(a), _np(b))


def test_dropout_one_zeroes_the_input_of_each_later_layer():
    """dropout=1 while training: layer 2 sees zeros, so its output is that of a zero input."""
    lamina.manual_seed(0)
    m = nn.GRU(I, H, num_layers=2, dropout=1.0, dtype=lamina.float64)
    out, h = m(lamina.randn(L, N, I, dtype=lamina.float64))
    top = nn.GRU(H, H, dtype=lamina.float64)
    top.load_state_dict({k.replace("l1", "l0"): v for k, v in m.state_dict().items() if "_l1" in k})
    ref, _ = top(lamina.zeros(L, N, H, dtype=lamina.float64))
    np.testing.assert_allclose(_np(out), _np(ref), rtol=0, atol=0)


def test_one_layer_dropout_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(I, H, dropout=0.2)


# --------------------------------------------------------------------------- training
def _regressor(lib, seed):
    lib.manual_seed(seed)

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lib.nn.LSTM(2, 6, num_layers=2, batch_first=True, dtype=lib.float64)
            self.head = lib.nn.Linear(6, 1, dtype=lib.float64)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])
    return Net()


def test_training_loop_losses_equal_torchs():
    torch = requires_torch()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 7, 2))
    y = x.sum(axis=(1, 2))[:, None] * 0.1
    losses = {}
    for lib in (torch, lamina):
        net = _regressor(lib, 3)
        opt = lib.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        xs, ys, got = lib.tensor(x), lib.tensor(y), []
        for _ in range(20):
            opt.zero_grad()
            loss = lib.nn.functional.mse_loss(net(xs), ys)
            loss.backward()
            opt.step()
            got.append(float(loss.item()))
        losses[lib.__name__] = got
    assert losses["lamina"][-1] < 0.9 * losses["lamina"][0]     # it learns
    np.testing.assert_allclose(losses["lamina"], losses["torch"], rtol=1e-8, atol=1e-10)


def test_lstm_cell_sequence_loop_like_time_sequence_prediction():
    """The pytorch/examples time_sequence_prediction pattern: two LSTMCells over input.chunk()."""
    torch = requires_torch()
    data = np.sin(np.arange(24.0).reshape(3, 8) / 3.0)
    outs = {}
    for lib in (torch, lamina):
        lib.manual_seed(0)
        c1, c2 = lib.nn.LSTMCell(1, 5, dtype=lib.float64), lib.nn.LSTMCell(5, 5, dtype=lib.float64)
        head = lib.nn.Linear(5, 1, dtype=lib.float64)
        x = lib.tensor(data)
        h1 = lib.zeros(3, 5, dtype=lib.float64)
        c_1, h2, c_2 = h1, h1, h1
        seq = []
        for x_t in x.chunk(x.size(1), dim=1):
            h1, c_1 = c1(x_t, (h1, c_1))
            h2, c_2 = c2(h1, (h2, c_2))
            seq.append(head(h2))
        out = lib.cat(seq, dim=1)
        out.sum().backward()
        outs[lib.__name__] = (_np(out), _np(c1.weight_hh.grad))
    for a, b in zip(outs["lamina"], outs["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- errors
ERRORS = [
    ("wrong input_size", lambda M: M.nn.LSTM(3, 4)(M.zeros(5, 2, 7)), "input_size"),
    ("4-D input", lambda M: M.nn.GRU(3, 4)(M.zeros(1, 5, 2, 3)), "2D or 3D"),
    ("empty sequence", lambda M: M.nn.RNN(3, 4)(M.zeros(0, 2, 3)), "sequence length"),
    ("hx shape", lambda M: M.nn.GRU(3, 4)(M.zeros(5, 2, 3), M.zeros(1, 3, 4)), "(1, 2, 4)"),
    ("c0 shape", lambda M: M.nn.LSTM(3, 4)(M.zeros(5, 2, 3), (M.zeros(1, 2, 4), M.zeros(1, 2, 5))), "hidden[1]"),
    ("2-D input, 3-D hx", lambda M: M.nn.RNN(3, 4)(M.zeros(5, 3), M.zeros(1, 2, 4)), "2-D"),
    ("3-D input, 2-D hx", lambda M: M.nn.LSTM(3, 4)(M.zeros(5, 2, 3), (M.zeros(2, 4), M.zeros(2, 4))), "3-D"),
    ("LSTM hx not a pair", lambda M: M.nn.LSTM(3, 4)(M.zeros(5, 2, 3), M.zeros(2, 2, 4)), "hx"),
    ("input dtype", lambda M: M.nn.GRU(3, 4)(M.zeros(5, 2, 3, dtype=M.float64)), "dtype"),
    ("hx dtype", lambda M: M.nn.GRU(3, 4)(M.zeros(5, 2, 3), M.zeros(1, 2, 4, dtype=M.float64)), "float"),
    ("cell input_size", lambda M: M.nn.LSTMCell(3, 4)(M.zeros(2, 5)), "input_size"),
    ("cell batch", lambda M: M.nn.GRUCell(3, 4)(M.zeros(2, 3), M.zeros(3, 4)), "batch size"),
    ("cell hidden_size", lambda M: M.nn.LSTMCell(3, 4)(M.zeros(2, 3), (M.zeros(2, 5), M.zeros(2, 4))),
     "hidden_size"),
    ("cell 3-D input", lambda M: M.nn.RNNCell(3, 4)(M.zeros(1, 2, 3)), "1D or 2D"),
    ("nonlinearity", lambda M: M.nn.RNN(3, 4, nonlinearity="sigmoid"), "nonlinearity"),
    ("dropout range", lambda M: M.nn.LSTM(3, 4, 2, dropout=1.5), "dropout"),
    ("hidden_size 0", lambda M: M.nn.GRU(3, 0), "hidden_size"),
    ("float input_size", lambda M: M.nn.LSTM(3.0, 4), "input_size"),
    ("bias not bool", lambda M: M.nn.RNN(3, 4, bias=1), "bias"),
    ("proj_size on GRU", lambda M: M.nn.GRU(3, 4, proj_size=2), "proj_size"),
    ("proj_size too big", lambda M: M.nn.LSTM(3, 4, proj_size=4), "proj_size"),
]


@pytest.mark.parametrize("what,call,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_torchs_type_and_name_the_problem(what, call, match):
    torch = requires_torch()
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(want.type) as got:
        call(lamina)
    assert match in str(got.value)


def test_proj_size_is_refused_clearly():
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)


def test_a_torch_packed_sequence_is_a_clear_type_error():
    torch = requires_torch()
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.zeros(5, 2, 3), [5, 3])
    with pytest.raises(TypeError, match="PackedSequence"):
        nn.LSTM(3, 4)(packed)
    with pytest.raises(TypeError, match="input"):
        nn.GRU(3, 4)(np.zeros((5, 2, 3), np.float32))


# --------------------------------------------------------------------------- packed sequences
PACKED = list(itertools.product(CLASSES, (1, 2), (False, True), (False, True), (True, False)))


@pytest.mark.parametrize("name,num_layers,bidirectional,batch_first,enforce_sorted", PACKED)
def test_packed_sequence_forward_and_gradients_match_torch_float64(name, num_layers, bidirectional,
                                                                   batch_first, enforce_sorted):
    torch = requires_torch()
    tr, lr = torch.nn.utils.rnn, nn.utils.rnn
    t, m = _pair(name, I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    rng = np.random.default_rng(11)
    lengths = [5, 3, 3, 1] if enforce_sorted else [2, 5, 1, 3]
    B, T = len(lengths), max(lengths)
    tx, mx = _leaf(rng.standard_normal((B, T, I) if batch_first else (T, B, I)))
    lstm = name == "LSTM"
    state_shape = (num_layers * (2 if bidirectional else 1), B, H)
    leaves = [_leaf(rng.standard_normal(state_shape)) for _ in range(2 if lstm else 1)]
    th = tuple(a for a, _ in leaves) if lstm else leaves[0][0]
    mh = tuple(b for _, b in leaves) if lstm else leaves[0][1]
    tp = tr.pack_padded_sequence(tx, torch.tensor(lengths), batch_first, enforce_sorted)
    mp = lr.pack_padded_sequence(mx, lamina.tensor(lengths), batch_first, enforce_sorted)
    for a, b in zip(tp[1:], mp[1:]):  # batch_sizes, sorted_indices, unsorted_indices
        assert (a is None) == (b is None) and (a is None or a.tolist() == b.tolist())
    tout, tstate = t(tp, th)
    mout, mstate = m(mp, mh)
    assert isinstance(mout, lr.PackedSequence) and mout.batch_sizes.tolist() == tout.batch_sizes.tolist()
    np.testing.assert_allclose(_np(mout.data), _np(tout.data), rtol=1e-10, atol=1e-10)
    for a, b in zip(_states(tstate, lstm), _states(mstate, lstm), strict=True):
        np.testing.assert_allclose(_np(b), _np(a), rtol=1e-10, atol=1e-10)
    tpad, tlen = tr.pad_packed_sequence(tout, batch_first=batch_first, padding_value=-1.0, total_length=T + 1)
    mpad, mlen = lr.pad_packed_sequence(mout, batch_first=batch_first, padding_value=-1.0, total_length=T + 1)
    assert mlen.tolist() == tlen.tolist() == lengths
    np.testing.assert_allclose(_np(mpad), _np(tpad), rtol=1e-10, atol=1e-10)

    w = rng.standard_normal(tuple(tpad.shape))
    ((tpad * torch.tensor(w)).sum() + sum((s * s).sum() for s in _states(tstate, lstm))).backward()
    ((mpad * lamina.tensor(w)).sum() + sum((s * s).sum() for s in _states(mstate, lstm))).backward()
    for a, b in [(tx, mx)] + leaves + list(zip(t.parameters(), m.parameters())):
        np.testing.assert_allclose(_np(b.grad), _np(a.grad), rtol=1e-9, atol=1e-9)


def test_pad_pack_helpers_match_torch():
    torch = requires_torch()
    tr, lr = torch.nn.utils.rnn, nn.utils.rnn
    seqs = [np.arange(6.0).reshape(3, 2), np.arange(2.0).reshape(1, 2) + 10, np.arange(10.0).reshape(5, 2)]
    tseq, mseq = [torch.tensor(a) for a in seqs], [lamina.tensor(a) for a in seqs]
    for kw in ({}, {"batch_first": True, "padding_value": -2.0}, {"padding_side": "left"}):
        np.testing.assert_array_equal(lr.pad_sequence(mseq, **kw).numpy(), tr.pad_sequence(tseq, **kw).numpy())
    tp, mp = tr.pack_sequence(tseq, enforce_sorted=False), lr.pack_sequence(mseq, enforce_sorted=False)
    np.testing.assert_array_equal(mp.data.numpy(), tp.data.numpy())
    assert mp.sorted_indices.tolist() == tp.sorted_indices.tolist()
    assert mp.unsorted_indices.tolist() == tp.unsorted_indices.tolist()
    for a, b in zip(tr.unpack_sequence(tp), lr.unpack_sequence(mp), strict=True):
        np.testing.assert_array_equal(b.numpy(), a.numpy())
    padded = lr.pad_sequence(mseq, batch_first=True)
    for a, b in zip(seqs, lr.unpad_sequence(padded, lamina.tensor([3, 1, 5]), batch_first=True), strict=True):
        np.testing.assert_array_equal(b.numpy(), a)
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        lr.pack_sequence(mseq)
    with pytest.raises(ValueError, match="total_length"):
        lr.pad_packed_sequence(mp, total_length=2)


def test_module_docstring_runs():
    import doctest
    import lamina.nn.modules.rnn as rnn
    result = doctest.testmod(rnn)
    assert result.failed == 0 and result.attempted > 0
