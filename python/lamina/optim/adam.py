"""Adam and AdamW with PyTorch's exact update (bias correction, eps after the corrected sqrt)."""
import numpy as np

from .. import _C
from ..ops._params import AdamAttrs
from .optimizer import Optimizer, _refuse_differentiable


class Adam(Optimizer):
    """torch.optim.Adam. ``weight_decay`` is L2 added to the gradient (use AdamW for decoupled).

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.Adam([w], lr=0.1)
    >>> w.grad = lamina.tensor(np.array([3.0])); opt.step()
    >>> round(float(w.data[0]), 6)   # the first Adam step moves by lr * sign(grad)
    0.9
    """

    _numpy_state = True

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None):
        # foreach / fused / capturable pick torch's kernel strategy only; lamina has one kernel
        _refuse_differentiable(differentiable)
        if lr < 0:
            raise ValueError(f"lr: expected a value >= 0, got {lr}")
        if eps < 0:
            raise ValueError(f"eps: expected a value >= 0, got {eps}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"betas[{i}]: expected a value in [0, 1), got {b}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay: expected a value >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=bool(amsgrad), maximize=bool(maximize)))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = (float(b) for b in group["betas"])
            amsgrad = bool(group["amsgrad"])
            for p, arr, g in self._grads_for_update(group):
                state = self.state.setdefault(id(p), {})
                if "step" not in state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(arr)
                    state["exp_avg_sq"] = np.zeros_like(arr)
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = np.zeros_like(arr)
                state["step"] += 1
                _C.adam_step(arr, g, state["exp_avg"], state["exp_avg_sq"],
                             state.get("max_exp_avg_sq") if amsgrad else None, state["step"],
                             float(group["lr"]), beta1, beta2, float(group["eps"]),
                             float(group["weight_decay"]), self._decoupled, amsgrad)
        return loss

    _SCALARS = {"lr": lambda g: g["lr"], "beta1": lambda g: g["betas"][0], "beta2": lambda g: g["betas"][1],
                "eps": lambda g: g["eps"], "weight_decay": lambda g: g.get("weight_decay", 0.0)}

    def lower_update(self, b, items):
        """Compiled update (lamina.graph): one `adam` node per parameter over its exp_avg /
        exp_avg_sq (/ max_exp_avg_sq) state; the step counter advances once per step."""
        if any(self.param_groups[it.group].get("maximize", False) for it in items):
            return False        # no native maximize: the eager step() runs after the compiled backward
        for it in items:
            group = self.param_groups[it.group]
            sc = b.group_scalars(it.group, self._SCALARS)
            amsgrad = bool(group.get("amsgrad", False))
            keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if amsgrad else ("exp_avg", "exp_avg_sq")
            states = [b.state(it, k) for k in keys]
            if any(s is None for s in states) or "step" not in it.state:
                return False
            lr, beta1, beta2, eps, weight_decay = sc        # _SCALARS' order
            b.emit("adam", [it.grad], [it.value] + states,
                   AdamAttrs(n=it.value.size, decoupled=self._decoupled, amsgrad=amsgrad, lr=lr, beta1=beta1,
                             beta2=beta2, eps=eps, weight_decay=weight_decay, step=b.step_scalar(it.state)))
        return True


class AdamW(Adam):
    """torch.optim.AdamW: decoupled weight decay ``p *= 1 - lr*weight_decay`` before the Adam step.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = lamina.tensor(np.array([0.0])); opt.step()
    >>> round(float(w.data[0]), 6)   # zero gradient: only the decay acts
    0.95
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, differentiable=differentiable)
