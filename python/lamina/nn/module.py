"""Module and Parameter, PyTorch-shaped: attributes register parameters and children."""
from __future__ import annotations

import threading
from collections import OrderedDict, namedtuple

import numpy as np

from ..tensor import Function, Tensor, _FLOATS, _version_counter, is_grad_enabled


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns, as PyTorch's: unpacks as (missing, unexpected)."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


class StateDictError(RuntimeError, KeyError, ValueError):
    """What load_state_dict raises: PyTorch's RuntimeError, worded as PyTorch's ("Error(s) in
    loading state_dict for ..."), listing every problem found. Also a KeyError and a
    ValueError, which lamina raised for key and shape problems before."""

    def __init__(self, module_name, errors, missing=(), unexpected=()):
        super().__init__(f"Error(s) in loading state_dict for {module_name}:\n\t" + "\n\t".join(errors))
        self.missing_keys, self.unexpected_keys = list(missing), list(unexpected)

    __str__ = RuntimeError.__str__   # not KeyError's repr-quoting


StateDictKeysError = StateDictError   # the earlier name


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (requires_grad=True by default)."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        # Kernels read C-contiguous buffers: a strided view (x[:, :2]) is copied, others shared.
        arr = np.ascontiguousarray(data._data if isinstance(data, Tensor) else data)
        if arr.dtype not in _FLOATS:
            arr = arr.astype(np.float32)
        self._data = arr
        self.grad = None
        self._node = None
        self.requires_grad = bool(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Buffer:
    """``self.name = nn.Buffer(tensor, persistent=True)`` registers a buffer, as PyTorch's
    nn.Buffer (the module keeps the tensor itself, not this wrapper)."""

    def __init__(self, data=None, *, persistent=True):
        if data is None:
            data = Tensor._wrap(np.empty(0, dtype=np.float32))
        if not isinstance(data, Tensor):
            from ..factory import tensor
            data = tensor(data)
        self.data, self.persistent = data, bool(persistent)


def new_weight_and_bias(module, weight_shape, bias_size, bias, dtype):
    """Set module.weight (weight_shape) and module.bias ((bias_size,), or None without bias),
    uninitialized, in `dtype` or the default dtype: the layer's reset_parameters draws them."""
    from ..tensor import get_default_dtype
    dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
    module.weight = Parameter(np.empty(tuple(weight_shape), dtype=dt))
    if bias:
        module.bias = Parameter(np.empty((bias_size,), dtype=dt))
    else:
        module.register_parameter("bias", None)


class ModuleShapeError(ValueError):
    """A shape mismatch inside a module; the outermost module call adds the dotted name."""

    def __init__(self, module, message):
        super().__init__(message)
        self.module = module
        self.message = message
        self.named = False


class _CallState(threading.local):
    depth = 0


_call_state = _CallState()


class RemovableHandle:
    """What register_*_hook returns, as PyTorch's: ``handle.remove()`` (or leaving a ``with``
    block) takes the hook out again."""

    _next_id = 0

    def __init__(self, hooks_dict):
        self._hooks = hooks_dict
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _add_hook(module, attr, hook, prepend, **flags):
    hooks = module.__dict__.get(attr)
    if hooks is None:
        hooks = OrderedDict()
        object.__setattr__(module, attr, hooks)
    handle = RemovableHandle(hooks)
    hooks[handle.id] = (hook, flags)
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


class _BackwardHookIdentity(Function):
    """Where a module's backward hooks watch its inputs and outputs: the value itself, the
    gradient passed through (PyTorch's BackwardHookFunction)."""

    @staticmethod
    def forward(ctx, x):
        return x.view()

    @staticmethod
    def backward(ctx, dy):
        return dy


class _BackwardHookCall:
    """One forward's bookkeeping for register_full_backward_(pre_)hook: the gradients of the
    outputs are collected (pre-hooks may replace them), then, once every input that needs a
    gradient has received it, the hooks see (grad_input, grad_output) and may replace
    grad_input."""

    def __init__(self, module, args):
        self.module = module
        self.positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.waiting = [i for i in self.positions if args[i].requires_grad]
        self.grad_input = {}
        self.grad_output = None

    def wrap_inputs(self, args):
        args = list(args)
        for i in self.waiting:
            args[i] = _BackwardHookIdentity.apply(args[i])
            args[i].register_hook(lambda g, i=i: self._input_grad(i, g))
        return tuple(args)

    def wrap_output(self, out):
        single = isinstance(out, Tensor)
        outs = [out] if single else list(out) if isinstance(out, (tuple, list)) else None
        if outs is None:
            return out
        live = [k for k, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        if not live:
            return out
        self.grad_output = [None] * len(outs)
        self.n_outputs_left = len(live)
        for k in live:
            outs[k] = _BackwardHookIdentity.apply(outs[k])
            outs[k].register_hook(lambda g, k=k: self._output_grad(k, g))
        return outs[0] if single else type(out)(outs)

    def _output_grad(self, k, g):
        self.grad_output[k] = g
        self.n_outputs_left -= 1
        pre = self.module.__dict__.get("_backward_pre_hooks") or {}
        replaced = None
        if self.n_outputs_left == 0:
            grad_output = tuple(self.grad_output)
            for hook, _ in list(pre.values()):
                res = hook(self.module, grad_output)
                if res is not None:
                    res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                    if len(res) != len(grad_output):
                        raise RuntimeError(f"backward pre-hook returned {len(res)} gradients for "
                                           f"{len(grad_output)} outputs")
                    if sum(x is not None for x in self.grad_output) > 1 and res != grad_output:
                        raise NotImplementedError("lamina: a backward pre-hook replacing the gradients of "
                                                  "a module with several outputs is not supported")
                    grad_output = res
            self.grad_output = list(grad_output)
            replaced = grad_output[k]
            if not self.waiting:   # no input needs a gradient: the hooks run now, grad_input all None
                self._run_hooks()
        return replaced

    def _input_grad(self, i, g):
        self.grad_input[i] = g
        if len(self.grad_input) < len(self.waiting):
            return None
        return self._run_hooks().get(i)

    def _run_hooks(self):
        grad_output = tuple(self.grad_output or ())
        grad_input = tuple(self.grad_input.get(i) for i in self.positions)
        for hook, _ in list((self.module.__dict__.get("_backward_hooks") or {}).values()):
            res = hook(self.module, grad_input, grad_output)
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grad_input):
                    raise RuntimeError(f"backward hook returned {len(res)} gradients for {len(grad_input)} inputs")
                if len(self.waiting) > 1 and res != grad_input:
                    raise NotImplementedError("lamina: a backward hook replacing the input gradients of a "
                                              "module with several inputs that need gradients is not supported")
                grad_input = res
        return {i: g for i, g in zip(self.positions, grad_input)}


class Module:
    """Base class of all layers and models.

    >>> import lamina
    >>> class Net(lamina.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = lamina.nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> [n for n, _ in Net().named_parameters()]
    ['fc.weight', 'fc.bias']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign attributes before Module.__init__() is called")
        if isinstance(value, Buffer):
            for d in (self._parameters, self._modules):
                d.pop(name, None)
            self.__dict__.pop(name, None)
            self._buffers.pop(name, None)
            self.register_buffer(name, value.data, persistent=value.persistent)
            return
        params, modules, buffers = self._parameters, self._modules, self._buffers
        for d in (params, modules, buffers):
            d.pop(name, None)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()):
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_modules", "_buffers"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for key in ("_parameters", "_modules", "_buffers"):
            if name in self.__dict__[key]:
                del self.__dict__[key][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """A named tensor that is state but not a parameter (running statistics, masks):
        moved by ``to()``, listed by ``buffers()``, and saved in ``state_dict`` unless
        ``persistent=False``.

        >>> import lamina
        >>> m = lamina.nn.Module()
        >>> m.register_buffer("steps", lamina.zeros(1))
        >>> list(m.state_dict())
        ['steps']
        """
        if not isinstance(name, str):
            raise TypeError(f"name: expected a str, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"name: a buffer name must be non-empty and contain no '.', got {name!r}")
        if name in self.__dict__ or name in self._parameters or name in self._modules:
            raise KeyError(f"name: attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"tensor: expected a lamina Tensor or None for buffer {name!r}, "
                            f"got {type(tensor).__name__}")
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        transient = self.__dict__.setdefault("_non_persistent_buffers", set())
        if persistent:
            transient.discard(name)
        else:
            transient.add(name)
        self._buffers[name] = tensor

    def register_module(self, name, module):
        self.add_module(name, module)

    def get_submodule(self, target):
        """The submodule at dotted path ``target`` ('' is this module).

        >>> import lamina
        >>> net = lamina.nn.Sequential(lamina.nn.Linear(2, 2), lamina.nn.Sequential(lamina.nn.ReLU()))
        >>> type(net.get_submodule("1.0")).__name__
        'ReLU'
        """
        if target == "":
            return self
        mod = self
        walked = []
        for item in target.split("."):
            if item not in mod._modules or mod._modules[item] is None:
                where = ".".join(walked) or "the root module"
                raise AttributeError(f"target: {type(mod).__name__} ({where}) has no submodule {item!r} "
                                     f"(looking up {target!r})")
            mod = mod._modules[item]
            walked.append(item)
        return mod

    def get_parameter(self, target):
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if name not in mod._parameters or mod._parameters[name] is None:
            raise AttributeError(f"target: {type(mod).__name__} has no parameter {name!r} (looking up {target!r})")
        return mod._parameters[name]

    def get_buffer(self, target):
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if name not in mod._buffers:
            raise AttributeError(f"target: {type(mod).__name__} has no buffer {name!r} (looking up {target!r})")
        return mod._buffers[name]

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name}: expected a Module, got {type(module).__name__}")
        self._modules[name] = module

    # ---- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    # ---- hooks (PyTorch's forward hooks; run by __call__, not by forward)
    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) before each forward; a non-None result replaces args (a single
        value is wrapped in a tuple). with_kwargs: hook(module, args, kwargs) -> None or
        (args, kwargs)."""
        return _add_hook(self, "_forward_pre_hooks", hook, prepend, with_kwargs=with_kwargs)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """hook(module, args, output) after each forward; a non-None result replaces the
        output. with_kwargs: hook(module, args, kwargs, output). always_call: also when forward
        raises (then with output None... as PyTorch, the exception still propagates)."""
        return _add_hook(self, "_forward_hooks", hook, prepend, with_kwargs=with_kwargs, always_call=always_call)

    def register_full_backward_hook(self, hook, prepend=False):
        """hook(module, grad_input, grad_output) once the gradients of this call's tensor
        inputs are known (None for inputs that need none); a non-None result replaces
        grad_input. As PyTorch's, it runs in backward, for each forward call made while it
        was registered."""
        return _add_hook(self, "_backward_hooks", hook, prepend)

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """hook(module, grad_output) when the gradients of this call's outputs are known; a
        non-None result replaces grad_output."""
        return _add_hook(self, "_backward_pre_hooks", hook, prepend)

    def register_backward_hook(self, hook):
        raise NotImplementedError("register_backward_hook is deprecated in PyTorch and not provided by "
                                  "lamina; use register_full_backward_hook")

    def _call_with_hooks(self, args, kwargs):
        bw = None
        if (self.__dict__.get("_backward_hooks") or self.__dict__.get("_backward_pre_hooks")) and is_grad_enabled():
            bw = _BackwardHookCall(self, args)
            args = bw.wrap_inputs(args)
        pre = self.__dict__.get("_forward_pre_hooks")
        if pre:
            for hook, flags in list(pre.values()):
                if flags["with_kwargs"]:
                    res = hook(self, args, kwargs)
                    if res is not None:
                        if not (isinstance(res, tuple) and len(res) == 2):
                            raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, "
                                               f"new_kwargs), but got {res}.")
                        args, kwargs = res
                else:
                    res = hook(self, args)
                    if res is not None:
                        args = res if isinstance(res, tuple) else (res,)
        post = self.__dict__.get("_forward_hooks")
        try:
            out = self.forward(*args, **kwargs)
        except Exception:
            for hook, flags in list((post or {}).values()):
                if flags["always_call"]:
                    try:
                        hook(self, args, kwargs, None) if flags["with_kwargs"] else hook(self, args, None)
                    except Exception:
                        pass
            raise
        if post:
            for hook, flags in list(post.values()):
                res = hook(self, args, kwargs, out) if flags["with_kwargs"] else hook(self, args, out)
                if res is not None:
                    out = res
        return out if bw is None else bw.wrap_output(out)

    def __call__(self, *args, **kwargs):
        depth = _call_state.depth
        _call_state.depth = depth + 1
        try:
            d = self.__dict__
            if (d.get("_forward_pre_hooks") or d.get("_forward_hooks") or d.get("_backward_hooks")
                    or d.get("_backward_pre_hooks")):
                return self._call_with_hooks(args, kwargs)
            return self.forward(*args, **kwargs)
        except ModuleShapeError as e:
            if depth == 0 and not e.named:
                name = next((n for n, m in self.named_modules() if m is e.module), None)
                where = f"{type(e.module).__name__} '{name}'" if name else type(e.module).__name__
                e.named = True
                err = ModuleShapeError(e.module, f"{where}: {e.message}")
                err.named = True
                raise err from None
            raise
        finally:
            _call_state.depth = depth

    # ---- traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            p, m = stack.pop()
            if remove_duplicate:
                if id(m) in memo:
                    continue
                memo.add(id(m))
            yield p, m
            children = [(f"{p}.{n}" if p else n, c) for n, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()   # a child registered under two names is listed once, as in PyTorch
        for n, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield n, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mp, m in mods:
            for n, p in m._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue  # a weight shared by two layers is listed once
                seen.add(id(p))
                yield (f"{mp}.{n}" if mp else n), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mp, m in mods:
            for n, b in m._buffers.items():
                if b is None or (remove_duplicate and id(b) in seen):
                    continue
                seen.add(id(b))
                yield (f"{mp}.{n}" if mp else n), b

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- state
    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name, as PyTorch's Module.state_dict.

        destination: a dict to fill and return (a new OrderedDict by default); prefix: put before
        every key; keep_vars: the Parameters themselves instead of detached tensors sharing
        their storage. Positional arguments work but warn (FutureWarning), as in PyTorch.

        >>> from lamina import nn
        >>> list(nn.Linear(2, 1).state_dict(prefix="fc."))
        ['fc.weight', 'fc.bias']
        """
        if args:
            import warnings
            warnings.warn("Positional args are being deprecated, use kwargs instead. Refer to "
                          "https://pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module.state_dict"
                          " for details.", FutureWarning, stacklevel=2)
            if len(args) > 3:
                raise TypeError(f"state_dict() takes at most 3 positional arguments (destination, prefix, "
                                f"keep_vars), got {len(args)}")
            if destination is None:
                destination = args[0]
            if len(args) > 1 and prefix == "":
                prefix = args[1]
            if len(args) > 2 and keep_vars is False:
                keep_vars = args[2]
        if not isinstance(prefix, str):
            raise TypeError(f"prefix: expected a str, got {type(prefix).__name__}")
        sd = OrderedDict() if destination is None else destination
        if not hasattr(sd, "__setitem__"):
            raise TypeError(f"destination: expected a dict to fill, got {type(sd).__name__}")

        def value(t):
            return t if keep_vars or not isinstance(t, Tensor) else t.detach()
        # a module reachable under two names is saved under both, as in PyTorch
        for mp, m in self.named_modules(remove_duplicate=False):
            for n, p in m._parameters.items():
                if p is not None:
                    sd[prefix + (f"{mp}.{n}" if mp else n)] = value(p)
            transient = m.__dict__.get("_non_persistent_buffers", ())
            for n, b in m._buffers.items():
                if b is not None and n not in transient:
                    sd[prefix + (f"{mp}.{n}" if mp else n)] = value(b)
        return sd

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy `state_dict`'s values into this module's parameters and buffers, as PyTorch's
        `param.copy_(value)`: values of another dtype (a float16 checkpoint, say) are cast to
        the parameter's dtype. Tensors and NumPy arrays are accepted. Every problem (missing or
        unexpected keys when strict, size mismatches, values that are not arrays) is reported
        together in one RuntimeError worded as PyTorch's, and then nothing has been copied.

        assign=True (PyTorch's): instead of copying, the module takes the state dict's tensors
        themselves (their dtype and storage); a parameter becomes a Parameter over the given
        tensor's storage and keeps its own requires_grad. Build the optimizer afterwards.

        >>> from lamina import nn
        >>> a, b = nn.Linear(2, 1), nn.Linear(2, 1)
        >>> b.load_state_dict({k: v.double() for k, v in a.state_dict().items()})
        <All keys matched successfully>
        """
        own = self.state_dict()
        targets, slots = {}, {}
        for mp, m in self.named_modules(remove_duplicate=False):
            transient = m.__dict__.get("_non_persistent_buffers", ())
            for kind in ("_parameters", "_buffers"):
                for n, p in m.__dict__[kind].items():
                    if p is not None and n not in transient:
                        key = f"{mp}.{n}" if mp else n
                        targets[key] = p
                        slots.setdefault(key, []).append((m, kind, n))   # a shared module: every owner
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors, copies = [], []
        for k, v in state_dict.items():
            if k not in targets:
                continue
            dst = targets[k]
            dst_arr = dst._data if isinstance(dst, Tensor) else dst
            try:
                src = v._data if isinstance(v, Tensor) else np.asarray(v)
            except (TypeError, ValueError):
                src = np.empty(0, object)
            if src.dtype.kind not in "biuf":
                got = type(v) if src.dtype == object else f"an array of dtype {src.dtype}"
                errors.append(f'While copying the parameter named "{k}", expected Tensor or '
                              f"Tensor-like object from checkpoint but received {got}")
                continue
            if dst_arr.ndim == 0 and src.shape == (1,):
                src = src.reshape(())   # PyTorch's allowance for scalars saved as 1-element vectors
            if tuple(src.shape) != tuple(dst_arr.shape):
                errors.append(f"size mismatch for {k}: copying a param with shape {tuple(src.shape)} from "
                              f"checkpoint, the shape in current model is {tuple(dst_arr.shape)}.")
                continue
            copies.append((k, dst, dst_arr, src, v))
        if strict and unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        if strict and missing:
            errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise StateDictError(type(self).__name__, errors, missing, unexpected)
        for k, dst, dst_arr, src, v in copies:
            if assign:
                self._assign_loaded(slots[k], dst, src, v)
                continue
            np.copyto(dst_arr, src, casting="unsafe")   # param.copy_(value): cast to the param's dtype
            if isinstance(dst, Tensor):
                _version_counter(dst).value += 1    # an in-place write, as copy_ is
        return IncompatibleKeys(missing, unexpected)

    @staticmethod
    def _assign_loaded(slots, dst, src, value):
        """load_state_dict(assign=True): put the loaded tensor itself where `dst` was."""
        if isinstance(dst, Parameter):
            if isinstance(value, Parameter) and value.shape == tuple(src.shape):
                new = value
            else:
                new = Parameter(src)                   # over the loaded tensor's storage
            new.requires_grad = dst.requires_grad      # the one property the module keeps
        elif isinstance(value, Tensor) and value.shape == tuple(src.shape):
            new = value
        else:
            new = Tensor._wrap(src)
        for m, kind, n in slots:
            m.__dict__[kind][n] = new

    # ---- modes, grads, dtype
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad._data[...] = 0

    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype): parameters and float buffers, in place.

        Only the CPU exists: any other device raises an error naming it (see lamina._device).
        """
        from .._device import parse_to_args
        _, dtype, _ = parse_to_args(args, kwargs)
        if dtype is None:
            return self
        if dtype not in _FLOATS:
            raise TypeError(f"dtype: modules hold float32 or float64 parameters, got {dtype}")
        for m in self.modules():
            for n, p in m._parameters.items():
                if p is not None and p.dtype != dtype:
                    p._data = p._data.astype(dtype)
                    p.grad = None
            for n, b in m._buffers.items():
                if isinstance(b, Tensor) and b.dtype in _FLOATS and b.dtype != dtype:
                    b._data = b._data.astype(dtype)
        return self

    def cpu(self):
        return self

    def cuda(self, device=None):
        from .._device import check_device
        check_device("cuda" if device is None else device, "cuda()")
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def apply(self, fn):
        """Call ``fn`` on every submodule, children before their parent (post-order, as
        PyTorch), then on this module; returns self.

        >>> import lamina
        >>> seen = []
        >>> net = lamina.nn.Sequential(lamina.nn.Sequential(lamina.nn.ReLU()), lamina.nn.Tanh())
        >>> _ = net.apply(lambda m: seen.append(type(m).__name__))
        >>> seen
        ['ReLU', 'Sequential', 'Tanh', 'Sequential']
        """
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- printing
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for n, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({n}): {body}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        return head + "\n" + "\n".join(lines) + "\n)"
