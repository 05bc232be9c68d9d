"""lamina.linalg: PyTorch's torch.linalg norms (matrix norms other than Frobenius are not
provided), and inv, det, slogdet, solve, cholesky, eigh, eigvalsh with gradients (ops/decomp.py)."""
from .ops.decomp import LinAlgError, cholesky, det, eigh, eigvalsh, inv, slogdet, solve  # noqa: F401
from .ops.stats import vector_norm  # noqa: F401


def norm(input, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm for vectors (any ord) and the Frobenius norm of matrices (ord None or
    'fro', the 2-norm of the entries)."""
    if ord is None or ord == "fro":
        if ord == "fro" and dim is None and input.ndim != 2:
            raise ValueError(f"ord: 'fro' expects a matrix (2 dims) or dim, got {input.ndim} dims")
        return vector_norm(input, 2, dim, keepdim, dtype=dtype)
    if isinstance(ord, str):
        raise NotImplementedError(f"ord: the {ord!r} matrix norm is not supported")
    if dim is None and input.ndim != 1:
        raise NotImplementedError("ord: matrix norms other than 'fro' are not supported; pass dim for vector norms")
    return vector_norm(input, ord, dim, keepdim, dtype=dtype)
