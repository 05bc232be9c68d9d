"""Weight reparametrizations recomputed before each forward, with PyTorch's names and state:
weight_norm (w = g * v / ||v||, Salimans & Kingma 2016) and spectral_norm (w / sigma(w), sigma
by power iteration, Miyato et al. 2018), and their remove_* functions.

Both use a forward pre-hook, as PyTorch's torch.nn.utils versions do: the module's `weight`
becomes a plain attribute computed from the new parameters (weight_g and weight_v; or
weight_orig with the buffers weight_u and weight_v), so optimizers train the new parameters
and gradients flow through the recomputation.

>>> import lamina
>>> m = lamina.nn.utils.weight_norm(lamina.nn.Linear(3, 2))
>>> sorted(n for n, _ in m.named_parameters())
['bias', 'weight_g', 'weight_v']
"""
from __future__ import annotations

from ...tensor import Tensor, no_grad


def _norm_except_dim(v, dim):
    """||v||_2 over every dim but `dim`, kept as size-1 dims (dim None or -1: the whole norm)."""
    if dim is None or dim == -1:
        return v.norm()
    dims = [d for d in range(v.ndim) if d != dim]
    return v.norm(2, dims, keepdim=True) if dims else v.abs()


class WeightNorm:
    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / _norm_except_dim(v, self.dim))

    @staticmethod
    def apply(module, name, dim):
        from ..module import Parameter
        for hook, _ in (module.__dict__.get("_forward_pre_hooks") or {}).values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        if dim is None:
            dim = -1
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        if not isinstance(weight, Tensor):
            raise TypeError(f"weight_norm: module has no tensor parameter {name!r}")
        if dim < -1:
            dim += weight.ndim
        fn.dim = dim
        with no_grad():
            g = _norm_except_dim(weight, dim)
        delattr(module, name)
        module.register_parameter(name + "_g", Parameter(g.detach().numpy().copy()))
        module.register_parameter(name + "_v", Parameter(weight.detach().numpy().copy()))
        object.__setattr__(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module):
        from ..module import Parameter
        with no_grad():
            weight = self.compute_weight(module)
        module.__dict__.pop(self.name, None)
        delattr(module, self.name + "_g")
        delattr(module, self.name + "_v")
        module.register_parameter(self.name, Parameter(weight.detach().numpy().copy()))

    def __call__(self, module, inputs):
        object.__setattr__(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """w = g * v / ||v|| (norm over every dim but `dim`; None: the whole tensor), PyTorch's
    ``nn.utils.weight_norm``: parameters name_g and name_v replace name."""
    WeightNorm.apply(module, name, dim)
    return module


def _remove(module, kind, name, what):
    """Undo the reparametrization `kind` of parameter `name`: one plain parameter again."""
    hooks = module.__dict__.get("_forward_pre_hooks") or {}
    for k, (hook, _) in list(hooks.items()):
        if isinstance(hook, kind) and hook.name == name:
            hook.remove(module)
            del hooks[k]
            return module
    raise ValueError(f"{what} of '{name}' not found in {module}")


def remove_weight_norm(module, name="weight"):
    """Fold g and v back into one parameter `name`."""
    return _remove(module, WeightNorm, name, "weight_norm")


def _normalize(x, eps):
    """x / max(||x||, eps) (F.normalize over a vector)."""
    return x / x.norm().clamp_min(eps)


class SpectralNorm:
    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.n_power_iterations, self.eps = name, dim, n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight):
        w = weight
        if self.dim != 0:
            w = w.permute(self.dim, *[d for d in range(w.ndim) if d != self.dim])
        return w.reshape(w.shape[0], -1)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):
                    # in place, as PyTorch's normalize(..., out=v): the buffers carry over to the next call
                    v.copy_(_normalize(weight_mat.t() @ u, self.eps))
                    u.copy_(_normalize(weight_mat @ v, self.eps))
                u = u.clone()
                v = v.clone()
        sigma = (u * (weight_mat @ v)).sum()
        return weight / sigma

    def remove(self, module):
        from ..module import Parameter
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        module.__dict__.pop(self.name, None)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach().numpy().copy()))

    def __call__(self, module, inputs):
        object.__setattr__(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        for hook, _ in (module.__dict__.get("_forward_pre_hooks") or {}).values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]
        with no_grad():
            weight_mat = fn.reshape_weight_to_matrix(weight)
            h, w = weight_mat.shape
            # PyTorch's draws: u then v, each N(0, 1) from the global generator, normalized
            u = _normalize(weight.new_empty(h).normal_(0, 1), fn.eps)
            v = _normalize(weight.new_empty(w).normal_(0, 1), fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        object.__setattr__(module, fn.name, weight.detach().clone())
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """w / sigma(w), sigma the largest singular value estimated by power iteration (one step per
    training forward), PyTorch's ``nn.utils.spectral_norm``: parameter name_orig and buffers
    name_u, name_v replace name."""
    if dim is None:
        dim = 1 if type(module).__name__ in ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d") else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    """Replace weight_orig by the normalized weight as one parameter `name`."""
    return _remove(module, SpectralNorm, name, "spectral_norm")
