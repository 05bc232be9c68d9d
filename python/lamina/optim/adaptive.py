"""RMSprop, Adagrad and Adadelta with PyTorch's exact update order.

These run eagerly in NumPy, in place on each parameter's array (``out=``), so the compiled
path treats them as an ``optimizer.step()`` callback. The order of operations follows
torch.optim so float64 trajectories agree to rounding: e.g. RMSprop adds ``eps`` AFTER the
square root, Adadelta adds it INSIDE both square roots.
"""
import numpy as np

from .optimizer import Optimizer, _refuse_differentiable


def _check_at_least(name, value, low=0.0):
    if not value >= low:  # also rejects NaN
        raise ValueError(f"{name}: expected a value >= {low}, got {value}")


def _decayed(g, arr, weight_decay):
    """L2 weight decay folded into the gradient: g + weight_decay * p (a new array)."""
    return g + weight_decay * arr if weight_decay != 0 else g


class RMSprop(Optimizer):
    """torch.optim.RMSprop: ``v = alpha*v + (1-alpha)*g^2``; ``p -= lr * g / (sqrt(v) + eps)``.

    ``centered`` divides by ``sqrt(v - mean(g)^2) + eps``; ``momentum`` keeps a buffer
    ``b = momentum*b + g / denom`` and steps by ``lr * b``.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.RMSprop([w], lr=0.01, alpha=0.75, eps=0.0)
    >>> w.grad = lamina.tensor(np.array([2.0])); opt.step()
    >>> round(float(w.data[0]), 6)   # 1 - 0.01 * 2 / sqrt(0.25 * 4)
    0.98
    """

    _numpy_state = True

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False, differentiable=False):
        _refuse_differentiable(differentiable)
        _check_at_least("lr", lr)
        _check_at_least("eps", eps)
        _check_at_least("momentum", momentum)
        _check_at_least("weight_decay", weight_decay)
        _check_at_least("alpha", alpha)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=bool(centered), capturable=False,
                                      foreach=foreach, maximize=bool(maximize), differentiable=False))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
            momentum, centered = float(group["momentum"]), bool(group["centered"])
            for p, arr, g in self._grads_for_update(group):
                state = self.state.setdefault(id(p), {})
                if "step" not in state:
                    state["step"] = 0
                    state["square_avg"] = np.zeros_like(arr)
                    if momentum > 0:
                        state["momentum_buffer"] = np.zeros_like(arr)
                    if centered:
                        state["grad_avg"] = np.zeros_like(arr)
                state["step"] += 1
                g = _decayed(g, arr, float(group["weight_decay"]))
                square_avg = state["square_avg"]
                square_avg *= alpha
                square_avg += (1 - alpha) * (g * g)
                if centered:
                    grad_avg = state["grad_avg"]
                    grad_avg += (1 - alpha) * (g - grad_avg)   # lerp towards g
                    denom = np.sqrt(square_avg - grad_avg * grad_avg) + eps
                else:
                    denom = np.sqrt(square_avg) + eps
                if momentum > 0:
                    buf = state.setdefault("momentum_buffer", np.zeros_like(arr))
                    buf *= momentum
                    buf += g / denom
                    arr -= lr * buf
                else:
                    arr -= lr * (g / denom)
        return loss


class Adagrad(Optimizer):
    """torch.optim.Adagrad: ``s += g^2``; ``p -= lr / (1 + (t-1)*lr_decay) * g / (sqrt(s) + eps)``.

    Its state (``step``, ``sum``) exists from construction, as in PyTorch.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.Adagrad([w], lr=0.5, eps=0.0)
    >>> w.grad = lamina.tensor(np.array([3.0])); opt.step()
    >>> round(float(w.data[0]), 6)   # the first step moves by lr * sign(grad)
    0.5
    """

    _numpy_state = True

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        _refuse_differentiable(differentiable)
        _check_at_least("lr", lr)
        _check_at_least("lr_decay", lr_decay)
        _check_at_least("weight_decay", weight_decay)
        _check_at_least("initial_accumulator_value", initial_accumulator_value)
        _check_at_least("eps", eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      foreach=foreach, maximize=bool(maximize), differentiable=False,
                                      fused=None))

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self._init_state(p, group)

    def _init_state(self, p, group):
        state = self.state[id(p)] = {"step": 0, "sum": np.full_like(
            p._data, group["initial_accumulator_value"])}
        return state

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, eps = float(group["lr"]), float(group["eps"])
            for p, arr, g in self._grads_for_update(group):
                state = self.state.get(id(p)) or self._init_state(p, group)
                state["step"] += 1
                g = _decayed(g, arr, float(group["weight_decay"]))
                clr = lr / (1 + (state["step"] - 1) * float(group["lr_decay"]))
                acc = state["sum"]
                acc += g * g
                arr -= clr * (g / (np.sqrt(acc) + eps))
        return loss


class Adadelta(Optimizer):
    """torch.optim.Adadelta: ``v = rho*v + (1-rho)*g^2``,
    ``d = sqrt(u + eps) / sqrt(v + eps) * g``, ``u = rho*u + (1-rho)*d^2``, ``p -= lr * d``.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.Adadelta([w], lr=1.0, rho=0.0, eps=1.0)
    >>> w.grad = lamina.tensor(np.array([0.0])); opt.step()
    >>> float(w.data[0])   # zero gradient: no move
    1.0
    """

    _numpy_state = True

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        _refuse_differentiable(differentiable)
        _check_at_least("lr", lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho: expected a value in [0, 1], got {rho}")
        _check_at_least("eps", eps)
        _check_at_least("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      foreach=foreach, capturable=False, maximize=bool(maximize),
                                      differentiable=False))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, rho, eps = float(group["lr"]), float(group["rho"]), float(group["eps"])
            for p, arr, g in self._grads_for_update(group):
                state = self.state.setdefault(id(p), {})
                if "step" not in state:
                    state["step"] = 0
                    state["square_avg"] = np.zeros_like(arr)
                    state["acc_delta"] = np.zeros_like(arr)
                state["step"] += 1
                g = _decayed(g, arr, float(group["weight_decay"]))
                square_avg, acc_delta = state["square_avg"], state["acc_delta"]
                square_avg *= rho
                square_avg += (1 - rho) * (g * g)
                delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
                acc_delta *= rho
                acc_delta += (1 - rho) * (delta * delta)
                arr -= lr * delta
        return loss
