from collections import OrderedDict

from ..module import Module, Parameter
from .activation import ReLU, Sigmoid, Tanh
from .linear import Linear

_FUSABLE_ACTS = (ReLU, Sigmoid, Tanh)


def _hooked(m):
    d = m.__dict__
    return bool(d.get("_forward_pre_hooks") or d.get("_forward_hooks") or d.get("_backward_hooks")
                or d.get("_backward_pre_hooks"))


class Sequential(Module):
    """Modules applied in order; accepts modules or one OrderedDict of named modules.

    A Linear directly followed by ReLU/Sigmoid/Tanh runs as one GEMM with the activation in
    its epilogue (same values and gradients, one pass less over memory).
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, m in args[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return mods[idx]

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        mods = list(self._modules.values())
        i, n = 0, len(mods)
        while i < n:
            m = mods[i]
            if (type(m) is Linear and i + 1 < n and type(mods[i + 1]) in _FUSABLE_ACTS
                    and not _hooked(m) and not _hooked(mods[i + 1])):   # a hook sees each layer's own call
                x = m._forward_act(x, mods[i + 1]._fused)
                i += 2
                continue
            x = m(x)
            i += 1
        return x


class ModuleList(Module):
    """A list of modules, registered as children "0", "1", ... (PyTorch's ModuleList).

    >>> import lamina
    >>> layers = lamina.nn.ModuleList([lamina.nn.Linear(2, 2) for _ in range(3)])
    >>> len(layers), len(list(layers.parameters()))
    (3, 6)
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, i):
        n = len(self._modules)
        if not -n <= i < n:
            raise IndexError(f"index: {i} out of range for a ModuleList of length {n}")
        return str(i % n)

    def _renumber(self, mods):
        self._modules.clear()
        for i, m in enumerate(mods):
            self.add_module(str(i), m)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ModuleList(list(self._modules.values())[i])
        return self._modules[self._index(i)]

    def __setitem__(self, i, module):
        self.add_module(self._index(i), module)

    def __delitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            del mods[i]
        else:
            del mods[int(self._index(i))]
        self._renumber(mods)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError(f"modules: ModuleList.extend expected an iterable of modules, got a {type(modules).__name__}")
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._renumber(mods)

    def pop(self, index=-1):
        m = self[index]
        del self[index]
        return m


class ModuleDict(Module):
    """An ordered dict of named child modules (PyTorch's ModuleDict).

    >>> import lamina
    >>> heads = lamina.nn.ModuleDict({"a": lamina.nn.Linear(2, 1), "b": lamina.nn.Identity()})
    >>> list(heads), "a" in heads
    (['a', 'b'], True)
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        if key not in self._modules:
            raise KeyError(f"key: no module named {key!r} in this ModuleDict (has {list(self._modules)})")
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def clear(self):
        self._modules.clear()

    def pop(self, key):
        m = self[key]
        del self._modules[key]
        return m

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for i, kv in enumerate(items):
            if len(kv) != 2:
                raise ValueError(f"modules: element {i} of an update sequence must be a (name, module) pair, "
                                 f"got length {len(kv)}")
            self.add_module(kv[0], kv[1])


class ParameterList(Module):
    """A list of parameters registered as "0", "1", ... (PyTorch's ParameterList); tensors given
    to it become Parameters.

    >>> import lamina
    >>> ps = lamina.nn.ParameterList([lamina.nn.Parameter(lamina.ones(2)) for _ in range(3)])
    >>> len(ps), len(list(ps.parameters()))
    (3, 3)
    """

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    @staticmethod
    def _as_param(v):
        from ...tensor import Tensor
        if isinstance(v, Parameter) or not isinstance(v, Tensor):
            return v
        return Parameter(v)

    def _index(self, i):
        n = len(self._parameters)
        if not -n <= i < n:
            raise IndexError(f"index: {i} out of range for a ParameterList of length {n}")
        return str(i % n)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ParameterList(list(self._parameters.values())[i])
        return self._parameters[self._index(i)]

    def __setitem__(self, i, value):
        self.register_parameter(self._index(i), self._as_param(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        self.register_parameter(str(len(self)), self._as_param(value))
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        return "\n".join(f"({k}): Parameter containing: [{type(p).__name__} of size {'x'.join(map(str, p.shape))}]"
                         for k, p in self._parameters.items())


class ParameterDict(Module):
    """Parameters by name, in insertion order (PyTorch's ParameterDict)."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return self._parameters[key]

    def __setitem__(self, key, value):
        self.register_parameter(key, ParameterList._as_param(value))

    def __delitem__(self, key):
        del self._parameters[key]

    def __contains__(self, key):
        return key in self._parameters

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def keys(self):
        return self._parameters.keys()

    def values(self):
        return self._parameters.values()

    def items(self):
        return self._parameters.items()

    def get(self, key, default=None):
        return self._parameters.get(key, default)

    def pop(self, key):
        return self._parameters.pop(key)

    def update(self, parameters):
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for k, v in items:
            self[k] = v
