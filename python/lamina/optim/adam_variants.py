"""Adamax, NAdam and RAdam with PyTorch's exact update order (its single-tensor path).

They run eagerly in NumPy, in place on each parameter's array. Scalars stay Python floats so
NumPy applies them in the parameter's dtype, as torch does with a Python scalar operand.
Where torch keeps a per-parameter scalar in a float32 tensor (NAdam's ``mu_product``) the value
is rounded to float32 the same way, so float64 trajectories agree too.
"""
import numpy as np

from .optimizer import Optimizer, _refuse_differentiable


def _check_adam_family(lr, betas, eps, weight_decay):
    """PyTorch's checks, in its order, with the argument named."""
    if not 0.0 <= lr:
        raise ValueError(f"lr: expected a value >= 0, got {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"eps: expected a value >= 0, got {eps}")
    betas = tuple(betas)
    if len(betas) != 2:
        raise ValueError(f"betas: expected 2 values, got {len(betas)}")
    for i, b in enumerate(betas):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"betas[{i}]: expected a value in [0, 1), got {b}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"weight_decay: expected a value >= 0, got {weight_decay}")
    return betas


def lerp_(start, end, weight):
    """torch's ``start.lerp_(end, weight)``: the formula switches at weight 0.5 to stay exact at
    both ends, and its multiply-add is fused (one rounding), emulated through float64 for float32."""
    diff = end - start
    if abs(weight) < 0.5:
        coeff, base = weight, start
    else:
        coeff, base = float(np.float32(weight) - np.float32(1)) if start.dtype == np.float32 else weight - 1.0, end
    if start.dtype == np.float32:
        coeff = float(np.float32(coeff))
        start[...] = (base.astype(np.float64) + coeff * diff.astype(np.float64)).astype(np.float32)
    else:
        start[...] = base + coeff * diff
    return start


def add_scaled(y, alpha, x):
    """torch's ``y.add(x, alpha=alpha)`` as a new array: y + alpha*x with one rounding (torch
    fuses the multiply-add), emulated through float64 for float32."""
    if y.dtype == np.float32:
        return (y.astype(np.float64) + float(np.float32(alpha)) * x.astype(np.float64)).astype(np.float32)
    return y + alpha * x


def add_product_(y, value, a, b):
    """torch's ``y.addcmul_(a, b, value=value)``: y + (value*a)*b, the last multiply-add fused
    as torch's vector kernel compiles it (emulated through float64 for float32)."""
    if y.dtype == np.float32:
        scaled = float(np.float32(value)) * a
        y[...] = (y.astype(np.float64) + scaled.astype(np.float64) * b.astype(np.float64)).astype(np.float32)
    else:
        y += value * a * b
    return y


def _float32(x):
    return float(np.float32(x))


class Adamax(Optimizer):
    """torch.optim.Adamax: Adam with the infinity norm, ``u = max(beta2*u, |g| + eps)``,
    ``p -= lr / (1 - beta1^t) * m / u``.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.Adamax([w], lr=0.1, eps=0.0)
    >>> w.grad = lamina.tensor(np.array([3.0])); opt.step()
    >>> round(float(w.data[0]), 6)   # the first step moves by lr * sign(grad)
    0.9
    """

    _numpy_state = True

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _refuse_differentiable(differentiable)
        betas = _check_adam_family(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
                                      maximize=bool(maximize), differentiable=False, capturable=capturable))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = (float(b) for b in group["betas"])
            lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            for p, arr, g in self._grads_for_update(group):
                state = self._counted_state(p, arr, ("exp_avg", "exp_inf"))
                if wd != 0:
                    g = add_scaled(g, wd, arr)
                exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
                lerp_(exp_avg, g, 1 - beta1)
                exp_inf *= beta2
                np.maximum(exp_inf, np.abs(g) + eps, out=exp_inf)
                clr = lr / (1 - beta1 ** state["step"])
                arr += (-clr * exp_avg) / exp_inf
        return loss


class NAdam(Optimizer):
    """torch.optim.NAdam: Adam with Nesterov momentum whose coefficient ``mu_t`` warms up by
    ``momentum_decay``; ``decoupled_weight_decay=True`` decays the weights as AdamW does.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.NAdam([w], lr=0.1)
    >>> w.grad = lamina.tensor(np.array([3.0])); opt.step()
    >>> float(w.data[0]) < 1.0
    True
    """

    _numpy_state = True
    _scalar_state = ("mu_product",)

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _refuse_differentiable(differentiable)
        betas = _check_adam_family(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"momentum_decay: expected a value >= 0, got {momentum_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=bool(decoupled_weight_decay),
                                      maximize=bool(maximize), foreach=foreach, capturable=capturable,
                                      differentiable=False))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = (float(b) for b in group["betas"])
            lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            momentum_decay = float(group["momentum_decay"])
            for p, arr, g in self._grads_for_update(group):
                state = self._counted_state(p, arr, ("exp_avg", "exp_avg_sq"), mu_product=1.0)
                step = float(state["step"])
                bias_correction2 = 1 - beta2 ** step
                if wd != 0:
                    if group["decoupled_weight_decay"]:
                        arr *= 1 - lr * wd
                    else:
                        g = add_scaled(g, wd, arr)
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
                # torch keeps mu_product in a float32 scalar tensor whatever the parameter's dtype
                mu_product = _float32(np.float32(state["mu_product"]) * np.float32(mu))
                state["mu_product"] = mu_product
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                lerp_(exp_avg, g, 1 - beta1)
                exp_avg_sq *= beta2
                add_product_(exp_avg_sq, 1 - beta2, g, g)
                denom = np.sqrt(exp_avg_sq / bias_correction2)
                denom += eps
                mu_product_next = mu_product * mu_next
                arr += (-lr * (1.0 - mu) / (1.0 - mu_product)) * g / denom
                arr += ((-lr * mu_next) / (1.0 - mu_product_next)) * exp_avg / denom
        return loss


class RAdam(Optimizer):
    """torch.optim.RAdam: Adam whose adaptive step is switched on (and rectified) only once the
    variance of the adaptive lr is tractable (``rho_t > 5``); plain momentum SGD before that.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.array([1.0]))
    >>> opt = lamina.optim.RAdam([w], lr=0.1)
    >>> w.grad = lamina.tensor(np.array([3.0])); opt.step()
    >>> round(float(w.data[0]), 6)   # step 1 is un-rectified: 1 - lr * grad
    0.7
    """

    _numpy_state = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _refuse_differentiable(differentiable)
        betas = _check_adam_family(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      maximize=bool(maximize), foreach=foreach, capturable=capturable,
                                      decoupled_weight_decay=bool(decoupled_weight_decay),
                                      differentiable=False))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = (float(b) for b in group["betas"])
            lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            for p, arr, g in self._grads_for_update(group):
                state = self._counted_state(p, arr, ("exp_avg", "exp_avg_sq"))
                step = float(state["step"])
                if wd != 0:
                    if group["decoupled_weight_decay"]:
                        arr *= 1 - lr * wd
                    else:
                        g = add_scaled(g, wd, arr)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                lerp_(exp_avg, g, 1 - beta1)
                exp_avg_sq *= beta2
                add_product_(exp_avg_sq, 1 - beta2, g, g)
                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                corrected = exp_avg / bias_correction1
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
                if rho_t > 5.0:
                    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                    # torch computes scalar / tensor as reciprocal(tensor) * scalar
                    adaptive = np.reciprocal(np.sqrt(exp_avg_sq) + eps) * bias_correction2 ** 0.5
                    arr -= corrected * lr * adaptive * rect
                else:
                    arr -= corrected * lr
        return loss
