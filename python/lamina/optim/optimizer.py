"""Optimizer base class: parameter groups, zero_grad, state_dict, with PyTorch's names.

Each concrete optimizer updates ``p``'s storage (a C-contiguous numpy array) IN PLACE through a
``lamina._C`` kernel, so views of the parameter elsewhere (modules, checkpoints) stay valid.
"""
import copy

import numpy as np

from ..tensor import Tensor

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _array(x, name):
    """The numpy array behind a lamina Tensor (its storage) or an array itself."""
    arr = x if isinstance(x, np.ndarray) else getattr(x, "_data", None)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name}: expected a lamina Tensor or numpy array, got {type(x).__name__}")
    return arr


def _refuse_differentiable(differentiable):
    """torch's differentiable=True backpropagates through the update itself; lamina's updates
    run in place outside autograd, so say so instead of silently ignoring it."""
    if differentiable:
        raise NotImplementedError("differentiable: lamina's optimizer steps run outside autograd; "
                                  "differentiable=True is not supported")


class _ParamState(dict):
    """``optimizer.state``: each parameter's state dict, indexed by the parameter itself (as in
    torch, e.g. ``self.state[p]`` in a user-written step()) or by ``id(p)``. Like torch's
    defaultdict(dict), reading a parameter with no state yet gives a new empty dict."""

    @staticmethod
    def _key(k):
        return k if type(k) is int else id(k)

    def __getitem__(self, k):
        return dict.setdefault(self, self._key(k), {})

    def __setitem__(self, k, v):
        dict.__setitem__(self, self._key(k), v)

    def __delitem__(self, k):
        dict.__delitem__(self, self._key(k))

    def __contains__(self, k):
        return dict.__contains__(self, self._key(k))

    def get(self, k, default=None):
        return dict.get(self, self._key(k), default)

    def setdefault(self, k, default=None):
        return dict.setdefault(self, self._key(k), default)

    def pop(self, k, *default):
        return dict.pop(self, self._key(k), *default)


class Optimizer:
    """Base class: ``params`` is an iterable of Tensors or of dicts (parameter groups).

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.ones(2))
    >>> opt = lamina.optim.SGD([w], lr=0.5)
    >>> w.grad = lamina.tensor(np.ones(2)); opt.step(); w.data.tolist()
    [0.5, 0.5]
    """

    _numpy_state = False   # True for lamina's own optimizers, whose state buffers are ndarrays
    _scalar_state = ()     # state keys that hold one number (torch keeps them in 0-dim tensors)

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = _ParamState()  # param (or id(param)) -> dict of buffers / scalars
        self.param_groups = []
        if isinstance(params, (np.ndarray,)) or hasattr(params, "data") and not isinstance(params, (list, tuple, dict)):
            raise TypeError("params: expected an iterable of Tensors or dicts, got a single "
                            f"{type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError("params: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group: expected a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        params = [params] if hasattr(params, "data") and not isinstance(params, (list, tuple)) else list(params)
        for p in params:
            arr = _array(p, "params")
            if arr.dtype not in _FLOATS:
                raise TypeError(f"params: expected float32 or float64 parameters, got {arr.dtype}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("params: some parameters appear in more than one parameter group")
        group["params"] = params
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient (``None`` by default, else fill with zeros in place)."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    _array(p.grad, "grad")[...] = 0

    def _params_with_grad(self, group):
        """(param, param array, contiguous grad array) for the parameters that have a gradient."""
        out = []
        for p in group["params"]:
            if p.grad is None:
                continue
            arr = _array(p, "param")
            if not arr.flags.c_contiguous or not arr.flags.writeable:
                raise ValueError("param: expected a writeable C-contiguous array to update in place, "
                                 f"got shape {arr.shape} strides {arr.strides}")
            g = _array(p.grad, "grad")
            if g.shape != arr.shape:
                raise ValueError(f"grad: expected shape {arr.shape} (the parameter's), got {g.shape}")
            if g.dtype != arr.dtype or not g.flags.c_contiguous:
                g = np.ascontiguousarray(g, dtype=arr.dtype)
            out.append((p, arr, g))
        return out

    def _grads_for_update(self, group):
        """_params_with_grad, with the gradient negated under ``maximize`` (PyTorch's order:
        negate first, then weight decay and the rest of the update)."""
        items = self._params_with_grad(group)
        if group.get("maximize", False):
            items = [(p, arr, np.negative(g)) for p, arr, g in items]
        return items

    def _counted_state(self, p, arr, zeros=(), **values):
        """p's state for this step: made on its first step (step 0, then `values`, then a zero
        buffer like arr per name in `zeros`, in PyTorch's key order), step counted up."""
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            state.update(values)
            for name in zeros:
                state[name] = np.zeros_like(arr)
        state["step"] += 1
        return state

    def step(self, closure=None):
        raise NotImplementedError

    # ---- state dict in PyTorch's layout: params replaced by their index in group order ----
    def state_dict(self):
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if id(p) in self.state:
                    # buffers as Tensors (copies), like torch's, so lamina.save takes them as they are
                    state[index[id(p)]] = {k: (Tensor._wrap(np.array(_array(v, k), copy=True))
                                               if isinstance(v, (np.ndarray, Tensor)) else v)
                                           for k, v in self.state[id(p)].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict: expected {len(self.param_groups)} parameter groups, got {len(groups)}")
        params = [p for g in self.param_groups for p in g["params"]]
        for mine, saved in zip(self.param_groups, groups):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError("state_dict: a parameter group has a different number of parameters "
                                 f"({len(saved['params'])} saved, {len(mine['params'])} here)")
        self.state = _ParamState()
        for idx, entry in state_dict["state"].items():
            p = params[int(idx)]
            arr = _array(p, "param")
            loaded = {}
            for k, v in entry.items():
                if k == "step":
                    loaded[k] = int(np.asarray(_array(v, k) if not np.isscalar(v) else v))
                elif k in self._scalar_state:
                    loaded[k] = float(np.asarray(_array(v, k) if not np.isscalar(v) else v))
                elif isinstance(v, np.ndarray) or hasattr(v, "data"):
                    a = _array(v, k)
                    if a.shape != arr.shape:
                        raise ValueError(f"state_dict: {k} of parameter {idx}: expected shape {arr.shape}, got {a.shape}")
                    a = np.array(a, dtype=arr.dtype, order="C", copy=True)
                    # lamina's optimizers keep NumPy buffers; a user-written one gets Tensors back
                    loaded[k] = a if self._numpy_state else Tensor._wrap(a)
                else:
                    loaded[k] = v
            self.state[id(p)] = loaded
        for mine, saved in zip(self.param_groups, groups):
            for k, v in saved.items():
                if k != "params":
                    mine[k] = copy.deepcopy(v)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"
