"""Recurrent layers: RNN, LSTM, GRU and their one-step Cells, with PyTorch's signatures,
parameter names, gate order and initialisation.

They are compositions of lamina's differentiable ops (linear, sigmoid, tanh, relu, indexing,
cat), so autograd needs no rule of its own. Per layer and direction the input projection
x W_ih^T + b_ih of the whole sequence is one GEMM; only h W_hh^T + b_hh runs per time step.

>>> import lamina
>>> _ = lamina.manual_seed(0)
>>> lstm = lamina.nn.LSTM(10, 20, num_layers=2, batch_first=True)
>>> out, (h, c) = lstm(lamina.randn(3, 5, 10))
>>> out.shape, h.shape, c.shape
(lamina.Size([3, 5, 20]), lamina.Size([2, 3, 20]), lamina.Size([2, 3, 20]))
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .. import functional as F
from .. import init
from ..module import Module, Parameter
from ..._device import check_device
from ...ops.shape import cat, stack
from ...tensor import Tensor, get_default_dtype
from ..utils.rnn import PackedSequence, _padded_from_packed

# Rows of weight_ih / weight_hh per hidden unit: LSTM gates i, f, g, o; GRU r, z, n.
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# --------------------------------------------------------------------------- one time step
# Each takes the input projection of this step, xw = x W_ih^T + b_ih (N, gates*H), and the
# previous state, and returns the new state; PyTorch's formulas, in its gate order.
def _rnn_tanh_step(xw, h, w_hh, b_hh):
    return F.tanh(F.linear(h, w_hh, b_hh) + xw)


def _rnn_relu_step(xw, h, w_hh, b_hh):
    return F.relu(F.linear(h, w_hh, b_hh) + xw)


def _lstm_step(xw, state, w_hh, b_hh):
    h, c = state
    H = h.shape[-1]
    gates = F.linear(h, w_hh, b_hh) + xw
    sig = F.sigmoid(gates)              # one pass for i, f and o; the g quarter goes unused
    i, f, o = sig[:, :H], sig[:, H:2 * H], sig[:, 3 * H:]
    g = F.tanh(gates[:, 2 * H:3 * H])
    c = f * c + i * g
    return o * F.tanh(c), c


def _gru_step(xw, h, w_hh, b_hh):
    H = h.shape[-1]
    hw = F.linear(h, w_hh, b_hh)
    rz = F.sigmoid(xw[:, :2 * H] + hw[:, :2 * H])
    r, z = rz[:, :H], rz[:, H:]
    n = F.tanh(xw[:, 2 * H:] + r * hw[:, 2 * H:])    # b_hn stays inside r * (...), as PyTorch
    return (h - n) * z + n


_STEPS = {"RNN_TANH": _rnn_tanh_step, "RNN_RELU": _rnn_relu_step, "LSTM": _lstm_step, "GRU": _gru_step}


def _time_steps(xw):
    """The L steps xw[t] of an (L, N, G) tensor. The gradient of one slice is a zero-filled
    array of its whole source (lamina's indexing backward), so L slices of xw itself cost
    O(L^2 N G) in backward; slicing blocks of ~sqrt(L) steps first, and the steps out of the
    blocks, costs O(L^1.5 N G)."""
    L = xw.shape[0]
    if L <= 4 or not xw.requires_grad:
        return [xw[t] for t in range(L)]
    size = math.isqrt(L - 1) + 1
    steps = []
    for start in range(0, L, size):
        block = xw[start:start + size]
        steps.extend(block[t] for t in range(block.shape[0]))
    return steps


def _packed_steps(x, batch_sizes):
    """The packed data of a time-major (T, B, F) batch: step t's first batch_sizes[t] rows."""
    return cat([x[t, :int(b)] for t, b in enumerate(batch_sizes)], 0)


# --------------------------------------------------------------------------- checks
def _need_tensor(x, name, owner):
    if isinstance(x, Tensor):
        return
    raise TypeError(f"{name}: {owner} expected a lamina Tensor, got {type(x).__name__}")


def _check_size_arg(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} should be of type int, got: {type(v).__name__}")
    if v <= 0:
        raise ValueError(f"{name} must be greater than zero, got {v}")
    return int(v)


def _check_bool_arg(name, v):
    if not isinstance(v, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(v).__name__}")
    return v


def _param_dtype(dtype):
    dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype: recurrent layers hold float32 or float64 parameters, got {dt}")
    return dt


# --------------------------------------------------------------------------- sequence layers
class RNNBase(Module):
    """The layers, directions and parameters shared by RNN, LSTM and GRU (PyTorch's RNNBase)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        check_device(device)
        if mode not in _GATES:
            raise ValueError(f"mode: unrecognized RNN mode {mode!r}, expected one of {list(_GATES)}")
        if (isinstance(dropout, bool) or not isinstance(dropout, numbers.Number)
                or not 0 <= dropout <= 1):
            raise ValueError(f"dropout should be a number in range [0, 1] representing the probability "
                             f"of an element being zeroed, got {dropout!r}")
        input_size = _check_size_arg("input_size", input_size)
        hidden_size = _check_size_arg("hidden_size", hidden_size)
        num_layers = _check_size_arg("num_layers", num_layers)
        _check_bool_arg("bias", bias)
        _check_bool_arg("batch_first", batch_first)
        if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral) or proj_size < 0:
            raise ValueError(f"proj_size should be a positive integer or zero to disable projections, "
                             f"got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} "
                             f"and hidden_size={hidden_size}")
        if proj_size > 0:
            raise NotImplementedError(f"proj_size: LSTM with projections (proj_size={proj_size}) is not "
                                      "supported by lamina; use proj_size=0")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero "
                          f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", stacklevel=3)
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = int(proj_size)
        dt = _param_dtype(dtype)
        gate_size = _GATES[mode] * hidden_size
        directions = 2 if self.bidirectional else 1
        self._flat_weights_names, self._all_weights = [], []
        # Registration order is PyTorch's: reset_parameters draws in it, so seeds give equal weights.
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                names = []
                for stem, shape in shapes:
                    setattr(self, stem + suffix, Parameter(np.empty(shape, dtype=dt)))
                    names.append(stem + suffix)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self):
        """A no-op, as PyTorch's on the CPU (it packs weights for cuDNN)."""

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ---- forward
    def _check_input(self, input):
        name = type(self).__name__
        _need_tensor(input, "input", name)
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D instead "
                             f"(input shape {tuple(input.shape)})")

    def _check_forward_args(self, x, states):
        """x is (L, N, input_size) here; states the (num_layers * directions, N, H) tensors."""
        w = self.weight_ih_l0
        if x.dtype != w.dtype:
            raise ValueError(f"RNN input dtype ({x.dtype}) does not match weight dtype ({w.dtype}). "
                             f"Convert input: input.to({w.dtype}), or convert model: model.to({x.dtype})")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {x.shape[-1]}")
        if x.shape[0] == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        want = (self.num_layers * (2 if self.bidirectional else 1), x.shape[1], self.hidden_size)
        for k, s in enumerate(states):
            what = "hidden size" if len(states) == 1 else f"hidden[{k}] size"
            if tuple(s.shape) != want:
                raise RuntimeError(f"Expected {what} {want}, got {list(s.shape)}")
            if s.dtype != x.dtype:
                raise RuntimeError(f"hx: expected dtype {x.dtype} (the input's), got {s.dtype}")

    def _split_hx(self, hx, batched):
        """hx as a list of state tensors (one for RNN/GRU, two for LSTM), batched (3-D)."""
        name = type(self).__name__
        lstm = self.mode == "LSTM"
        if lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                got = f"a {type(hx).__name__} of {len(hx)}" if isinstance(hx, (tuple, list)) else type(hx).__name__
                raise RuntimeError(f"hx: {name} expected a tuple (h_0, c_0) of two tensors, got {got}")
            states = list(hx)
        else:
            states = [hx]
        for k, s in enumerate(states):
            _need_tensor(s, f"hx[{k}]" if lstm else "hx", name)
        want = 3 if batched else 2
        if any(s.ndim != want for s in states):
            kind = "batched 3-D" if batched else "unbatched 2-D"
            dims = ", ".join(f"{s.ndim}-D" for s in states)
            which = "hx and cx" if lstm else "hx"
            got = f"({dims}) tensors" if lstm else f"{dims} tensor"
            raise RuntimeError(f"For {kind} input, {which} should also be {want}-D but got {got}")
        return states if batched else [s.unsqueeze(1) for s in states]

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        self._check_input(input)
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(0 if self.batch_first else 1)
        x = input.transpose(0, 1) if self.batch_first else input      # time-major (L, N, I)
        output, h_n = self._run_layers(x, self._initial_states(x, hx, batched))
        output = output.transpose(0, 1) if self.batch_first else output
        if not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n = [h.squeeze(1) for h in h_n]
        return output, (tuple(h_n) if len(h_n) == 2 else h_n[0])

    def _forward_packed(self, input, hx):
        """forward on a PackedSequence: the batch is run in its sorted order, where the
        sequences still running at step t are the first batch_sizes[t] rows; the others keep
        their state. hx and the final states are in the caller's order, as PyTorch's."""
        data, batch_sizes, sorted_indices, unsorted_indices = input
        _need_tensor(data, "input.data", type(self).__name__)
        bs = batch_sizes._data if isinstance(batch_sizes, Tensor) else np.asarray(batch_sizes)
        x = _padded_from_packed(data, bs, 0.0, None)                  # (T, B, I), sorted order
        states = self._initial_states(x, hx, True)
        if hx is not None and sorted_indices is not None:
            states = [s.index_select(1, sorted_indices) for s in states]
        x, h_n = self._run_layers(x, states, bs)
        if unsorted_indices is not None:
            h_n = [h.index_select(1, unsorted_indices) for h in h_n]
        output = PackedSequence(_packed_steps(x, bs), batch_sizes, sorted_indices, unsorted_indices)
        return output, (tuple(h_n) if len(h_n) == 2 else h_n[0])

    def _initial_states(self, x, hx, batched):
        """The (layers * directions, N, H) state tensors: hx's, or zeros."""
        if hx is None:
            zeros = Tensor._wrap(np.zeros((self.num_layers * (2 if self.bidirectional else 1), x.shape[1],
                                           self.hidden_size), dtype=x.dtype))
            return [zeros] * (2 if self.mode == "LSTM" else 1)
        return self._split_hx(hx, batched)

    def _run_layers(self, x, states, batch_sizes=None):
        """Every layer and direction over time-major x (L, N, I): the last layer's (L, N, H *
        directions) output and the final states stacked per kind. With batch_sizes (a packed
        batch), rows past each step's count keep their state and dropout sees the packed steps."""
        self._check_forward_args(x, states)
        n_states = len(states)
        directions = 2 if self.bidirectional else 1
        step = _STEPS[self.mode]
        finals = [[] for _ in range(n_states)]     # per state kind: one (N, H) per layer and direction
        for layer in range(self.num_layers):
            outs = []
            for direction in range(directions):
                k = layer * directions + direction
                names = self._all_weights[k]
                w_ih, w_hh = getattr(self, names[0]), getattr(self, names[1])
                b_ih, b_hh = (getattr(self, names[2]), getattr(self, names[3])) if self.bias else (None, None)
                state = tuple(s[k] for s in states) if n_states == 2 else states[0][k]
                out, state = self._run_direction(step, x, state, w_ih, w_hh, b_ih, b_hh, direction == 1, batch_sizes)
                outs.append(out)
                for kind, st in enumerate(state if n_states == 2 else (state,)):
                    finals[kind].append(st)
            x = outs[0] if directions == 1 else cat(outs, 2)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                if batch_sizes is None:
                    x = F.dropout(x, self.dropout, True)
                else:   # on the packed steps only, as PyTorch (the same number of random draws)
                    x = _padded_from_packed(F.dropout(_packed_steps(x, batch_sizes), self.dropout, True),
                                            batch_sizes, 0.0, None)
        return x, [stack(f, 0) for f in finals]

    @staticmethod
    def _run_direction(step, x, state, w_ih, w_hh, b_ih, b_hh, reverse, batch_sizes=None):
        """One layer in one direction over time-major x (L, N, I): the (L, N, H) outputs in time
        order and the final state."""
        L = x.shape[0]
        xws = _time_steps(F.linear(x, w_ih, b_ih))    # every step's input projection in one GEMM
        hs = []
        N = x.shape[1]
        for t in (range(L - 1, -1, -1) if reverse else range(L)):
            b = N if batch_sizes is None else int(batch_sizes[t])
            if b == N:
                state = step(xws[t], state, w_hh, b_hh)
            else:  # a packed batch: rows past b have ended (or, in reverse, not yet begun)
                pair = isinstance(state, tuple)
                new = step(xws[t][:b], tuple(s[:b] for s in state) if pair else state[:b], w_hh, b_hh)
                state = (tuple(cat([n, s[b:]], 0) for n, s in zip(new, state)) if pair
                         else cat([new, state[b:]], 0))
            hs.append(state[0] if isinstance(state, tuple) else state)
        if reverse:
            hs.reverse()
        # One cat of the (N, H) steps, seen as (L, N, H): cheaper than stacking L unsqueezed steps.
        out = cat(hs, 0).reshape(L, hs[0].shape[0], hs[0].shape[1])
        return out, state


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if kwargs:
            raise TypeError(f"RNN.__init__() got an unexpected keyword argument {next(iter(kwargs))!r}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, 0, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory: gates i, f, g, o; c_t = f c_(t-1) + i g, h_t = o tanh(c_t).
    forward returns (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit: gates r, z, n with n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    h_t = (1 - z) n + z h_(t-1)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if kwargs:
            raise TypeError(f"GRU.__init__() got an unexpected keyword argument {next(iter(kwargs))!r}")
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)


# --------------------------------------------------------------------------- cells
class RNNCellBase(Module):
    """weight_ih (chunks*H, I), weight_hh (chunks*H, H), bias_ih and bias_hh (chunks*H)."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        check_device(device)
        self.input_size = _check_size_arg("input_size", input_size)
        self.hidden_size = _check_size_arg("hidden_size", hidden_size)
        self.bias = _check_bool_arg("bias", bias)
        dt = _param_dtype(dtype)
        rows = num_chunks * self.hidden_size
        self.weight_ih = Parameter(np.empty((rows, self.input_size), dtype=dt))
        self.weight_hh = Parameter(np.empty((rows, self.hidden_size), dtype=dt))
        if bias:
            self.bias_ih = Parameter(np.empty((rows,), dtype=dt))
            self.bias_hh = Parameter(np.empty((rows,), dtype=dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _check_input(self, input):
        name = type(self).__name__
        _need_tensor(input, "input", name)
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead "
                             f"(input shape {tuple(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[-1]} expected "
                               f"{self.input_size}")
        if input.dtype != self.weight_ih.dtype:
            raise RuntimeError(f"input: expected dtype {self.weight_ih.dtype} (the weights'), got {input.dtype}")

    def _check_hidden(self, input, h, name):
        """input is batched (N, I) here, h as given by the caller."""
        owner = type(self).__name__
        _need_tensor(h, name, owner)
        if h.ndim not in (1, 2):
            raise ValueError(f"{owner}: Expected {name} to be 1D or 2D, got {h.ndim}D instead")
        if h.ndim != input.ndim:
            raise RuntimeError(f"{name}: expected a {input.ndim}-D tensor like the input, got a {h.ndim}-D "
                               f"tensor of shape {tuple(h.shape)}")
        if h.ndim == 2 and h.shape[0] != input.shape[0]:
            raise RuntimeError(f"Input batch size {input.shape[0]} doesn't match {name} batch size {h.shape[0]}")
        if h.shape[-1] != self.hidden_size:
            raise RuntimeError(f"{name} has inconsistent hidden_size: got {h.shape[-1]}, expected "
                               f"{self.hidden_size}")
        if h.dtype != input.dtype:
            raise RuntimeError(f"{name}: expected dtype {input.dtype} (the input's), got {h.dtype}")

    def _zeros(self, input):
        return Tensor._wrap(np.zeros((input.shape[0], self.hidden_size), dtype=input.dtype))


class RNNCell(RNNCellBase):
    """One Elman RNN step: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: unknown {nonlinearity!r}, select from 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        self._check_input(input)
        if hx is not None:
            self._check_hidden(input, hx, "hx")
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
            hx = hx.unsqueeze(0) if hx is not None else None
        h = self._zeros(input) if hx is None else hx
        step = _rnn_tanh_step if self.nonlinearity == "tanh" else _rnn_relu_step
        h = step(F.linear(input, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step: forward(input, (h, c)) returns (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        self._check_input(input)
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx: LSTMCell expected a tuple (h, c) of tensors, got {type(hx).__name__}")
            for k, s in enumerate(hx):
                self._check_hidden(input, s, f"hx[{k}]")
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
            hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0)) if hx is not None else None
        if hx is None:
            zeros = self._zeros(input)
            hx = (zeros, zeros)
        h, c = _lstm_step(F.linear(input, self.weight_ih, self.bias_ih), tuple(hx), self.weight_hh,
                          self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step: h' = (1 - z) n + z h with PyTorch's r, z, n gates."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        self._check_input(input)
        if hx is not None:
            self._check_hidden(input, hx, "hx")
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
            hx = hx.unsqueeze(0) if hx is not None else None
        h = self._zeros(input) if hx is None else hx
        h = _gru_step(F.linear(input, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)
