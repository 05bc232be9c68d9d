"""Stochastic gradient descent with PyTorch's momentum / dampening / Nesterov / weight decay."""
import numpy as np

from .. import _C
from ..ops._params import SgdAttrs
from .optimizer import Optimizer, _refuse_differentiable


class SGD(Optimizer):
    """torch.optim.SGD: ``buf = momentum*buf + (1-dampening)*g`` (buf = g on the first step),
    ``p -= lr * (g + momentum*buf if nesterov else buf)``, with ``g = grad + weight_decay*p``
    (``grad`` negated first under ``maximize``).

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     w.grad = lamina.tensor(np.array([1.0])); opt.step()
    >>> round(float(w.data[0]), 6)   # 1 - 0.1*1 - 0.1*(0.9 + 1)
    0.71
    """

    _numpy_state = True

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        # foreach / fused pick torch's kernel strategy only; lamina has one kernel, so they are accepted
        _refuse_differentiable(differentiable)
        if lr < 0:
            raise ValueError(f"lr: expected a value >= 0, got {lr}")
        if momentum < 0:
            raise ValueError(f"momentum: expected a value >= 0, got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay: expected a value >= 0, got {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: requires momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=bool(maximize)))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            momentum = float(group["momentum"])
            for p, arr, g in self._grads_for_update(group):
                state = self.state.setdefault(id(p), {})
                buf = state.get("momentum_buffer")
                first = buf is None
                if momentum != 0 and first:
                    buf = state["momentum_buffer"] = np.empty_like(arr)
                _C.sgd_step(arr, g, buf if momentum != 0 else None, float(group["lr"]), momentum,
                            float(group["dampening"]), float(group["weight_decay"]), bool(group["nesterov"]),
                            first)
        return loss

    _SCALARS = {"lr": lambda g: g["lr"], "momentum": lambda g: g.get("momentum", 0.0),
                "dampening": lambda g: g.get("dampening", 0.0), "weight_decay": lambda g: g.get("weight_decay", 0.0),
                "nesterov": lambda g: g.get("nesterov", False)}

    def lower_update(self, b, items):
        """Compiled update (lamina.graph): one `sgd` node per parameter over its momentum buffer.
        Hyper-parameters are re-read from param_groups before every step (schedules work)."""
        if any(self.param_groups[it.group].get("maximize", False) for it in items):
            return False        # no native maximize: the eager step() runs after the compiled backward
        for it in items:
            group = self.param_groups[it.group]
            sc = b.group_scalars(it.group, self._SCALARS, extra=1)   # + first_step = 0: the buffer exists
            outs = [it.value]
            if group.get("momentum", 0):
                buf = b.state(it, "momentum_buffer")
                if buf is None:
                    return False
                outs.append(buf)
            lr, momentum, dampening, weight_decay, nesterov, first_step = sc     # _SCALARS' order, then extra
            b.emit("sgd", [it.grad], outs, SgdAttrs(n=it.value.size, lr=lr, momentum=momentum, dampening=dampening,
                                                    weight_decay=weight_decay, nesterov=nesterov,
                                                    first_step=first_step))
        return True

