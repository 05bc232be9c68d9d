"""ASGD and Rprop with PyTorch's exact update order (its single-tensor path), in NumPy, in
place on each parameter's array.

torch keeps ASGD's ``eta`` and ``mu`` in float32 scalar tensors whatever the parameter's dtype;
they are rounded to float32 here too, so float64 trajectories agree.
"""
import numpy as np

from .adam_variants import add_scaled
from .optimizer import Optimizer, _refuse_differentiable


def _float32(x):
    return float(np.float32(x))


class ASGD(Optimizer):
    """torch.optim.ASGD, averaged SGD: ``p = p*(1 - lambd*eta) - eta*g``; ``ax`` averages the
    iterates once ``step > t0``; ``eta = lr / (1 + lambd*lr*t)^alpha``.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.ASGD([w], lr=0.5, lambd=0.0)
    >>> w.grad = lamina.tensor(np.array([1.0])); opt.step()
    >>> float(w.data[0])
    0.5
    """

    _numpy_state = True
    _scalar_state = ("eta", "mu")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        _refuse_differentiable(differentiable)
        if not 0.0 <= lr:
            raise ValueError(f"lr: expected a value >= 0, got {lr}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay: expected a value >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                                      foreach=foreach, maximize=bool(maximize), differentiable=False,
                                      capturable=capturable))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, lambd, alpha = float(group["lr"]), float(group["lambd"]), float(group["alpha"])
            t0, wd = float(group["t0"]), float(group["weight_decay"])
            for p, arr, g in self._grads_for_update(group):
                state = self._counted_state(p, arr, ("ax",), eta=_float32(lr), mu=1.0)
                if wd != 0:
                    g = add_scaled(g, wd, arr)
                eta = float(state["eta"])
                arr *= 1 - lambd * eta
                arr[...] = add_scaled(arr, -eta, g)
                ax = state["ax"]
                if float(state["mu"]) != 1:
                    ax += (arr - ax) * float(state["mu"])
                else:
                    ax[...] = arr
                step = float(state["step"])
                state["eta"] = _float32(lr / ((1 + lambd * lr * step) ** alpha))
                state["mu"] = _float32(1 / max(1, step - t0))
        return loss


class Rprop(Optimizer):
    """torch.optim.Rprop: each weight's step size grows by ``etas[1]`` while its gradient keeps
    its sign and shrinks by ``etas[0]`` when it flips (that step is then skipped), clamped to
    ``step_sizes``; the weight moves by ``-sign(g) * step_size``.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.Rprop([w], lr=0.25)
    >>> w.grad = lamina.tensor(np.array([3.0])); opt.step()
    >>> float(w.data[0])
    0.75
    """

    _numpy_state = True

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False,
                 foreach=None, maximize=False, differentiable=False):
        _refuse_differentiable(differentiable)
        if not 0.0 <= lr:
            raise ValueError(f"lr: expected a value >= 0, got {lr}")
        etas, step_sizes = tuple(etas), tuple(step_sizes)
        if len(etas) != 2 or not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"etas: expected (etaminus, etaplus) with 0 < etaminus < 1 < etaplus, got {etas}")
        if len(step_sizes) != 2:
            raise ValueError(f"step_sizes: expected (min, max), got {step_sizes}")
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach,
                                      maximize=bool(maximize), differentiable=False, capturable=capturable))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            etaminus, etaplus = (float(e) for e in group["etas"])
            step_min, step_max = (float(s) for s in group["step_sizes"])
            for p, arr, g in self._grads_for_update(group):
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                    state["prev"] = np.zeros_like(arr)
                    state["step_size"] = np.full_like(arr, float(group["lr"]))
                state["step"] += 1
                prev, step_size = state["prev"], state["step_size"]
                product = g * prev
                factor = np.ones_like(arr)
                factor[product > 0] = etaplus
                factor[product < 0] = etaminus
                step_size *= factor
                np.clip(step_size, step_min, step_max, out=step_size)
                # a flipped sign skips this step and forgets the gradient (no flip test next time)
                g = np.where(factor == np.asarray(etaminus, dtype=arr.dtype), 0, g).astype(arr.dtype, copy=False)
                arr -= np.sign(g) * step_size
                prev[...] = g
        return loss
