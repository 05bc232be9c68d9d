"""lamina.autograd: the Function extension point, backward, and finite-difference gradcheck."""
import numpy as np

from .tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad, run_backward  # noqa: F401


class GradcheckError(AssertionError):
    pass


def backward(tensors, grad_tensors=None, retain_graph=False):
    if isinstance(tensors, Tensor):
        tensors, grad_tensors = [tensors], [grad_tensors]
    grad_tensors = grad_tensors or [None] * len(tensors)
    for t, g in zip(tensors, grad_tensors):
        run_backward(t, g, retain_graph)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Compare autodiff gradients of `fn(*inputs)` with central finite differences (float64).

    The output is contracted with a fixed random cotangent v, so one backward gives v^T J,
    checked entry by entry against (f(x + eps e_i) - f(x - eps e_i)) . v / (2 eps).

    >>> import lamina
    >>> x = lamina.randn(3, dtype=lamina.float64, requires_grad=True)
    >>> lamina.autograd.gradcheck(lambda t: (t * t).exp().sum(), [x])
    True
    """
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    inputs = list(inputs)
    diff = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for t in diff:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for finite differences, got {t.dtype}")
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else [out]
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(o.shape) for o in outs]

    def scalar():
        with no_grad():
            o = fn(*inputs)
        os_ = o if isinstance(o, (tuple, list)) else [o]
        return sum(float((oo.data * v).sum()) for oo, v in zip(os_, vs))

    for t in diff:
        t.grad = None
    with enable_grad():
        total = None
        for o, v in zip(outs, vs):
            if o.requires_grad:
                term = (o * Tensor._wrap(v.astype(o.dtype))).sum()
                total = term if total is None else total + term
        if total is not None:
            total.backward()
    for k, t in enumerate(diff):
        analytic = np.zeros(t.shape) if t.grad is None else t.grad.data.astype(np.float64)
        numeric = np.zeros(t.shape)
        flat = t.data.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            fp = scalar()
            flat[i] = orig - eps
            fm = scalar()
            flat[i] = orig
            numeric.reshape(-1)[i] = (fp - fm) / (2 * eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            err = np.abs(analytic - numeric)
            i = int(err.argmax())
            msg = (f"gradcheck: input {k} (shape {t.shape}): analytic and numeric gradients differ; "
                   f"worst at flat index {i}: analytic {analytic.reshape(-1)[i]:.6g}, "
                   f"numeric {numeric.reshape(-1)[i]:.6g}")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
