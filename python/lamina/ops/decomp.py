"""Dense linear algebra with gradients: inverse, determinant, slogdet, solve, Cholesky and the
symmetric eigendecomposition, PyTorch's torch.linalg functions (batched over leading dims).

Forward runs LAPACK through NumPy in the input's dtype; each backward is the textbook formula:
  inv:      dA = -Y^T dY Y^T                     (Y = A^-1)
  det:      dA = dy * adj(A)^T                   (adjugate from the SVD: right for singular A too)
  slogdet:  dA = dlogabs * A^-T
  solve:    dB = A^-T dX,  dA = -dB X^T
  cholesky: dA = sym(L^-T Phi(L^T dL) L^-1)      (Phi: lower triangle, diagonal halved)
  eigh:     dA = V (diag(dw) + skew(V^T dV) / (w_j - w_i)) V^T
Singular or non-positive-definite inputs raise RuntimeError naming the problem, as PyTorch's
LinAlgError (a RuntimeError) does.

>>> import lamina
>>> a = lamina.tensor([[4.0, 1.0], [1.0, 3.0]])
>>> round(lamina.linalg.det(a).item(), 4), lamina.linalg.inv(a).tolist()[0]
(11.0, [0.27272728085517883, -0.09090909361839294])
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..tensor import Function, Tensor, float32, float64
from .registry import BadSample, Sample, register

__all__ = ["inv", "det", "slogdet", "logdet", "solve", "cholesky", "eigh", "eigvalsh"]
_F = (float32, float64)


class LinAlgError(RuntimeError):
    """A matrix the decomposition cannot handle (singular, not positive-definite)."""


def _T(a):
    return np.swapaxes(a, -1, -2)


def _square(A, op):
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.{op}: A must be a lamina Tensor, got {type(A).__name__}")
    if A.dtype not in _F:
        raise TypeError(f"linalg.{op}: Expected a floating point tensor as input. Got {A.dtype}")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"linalg.{op}: A must be batches of square matrices, but they are "
                         f"{A.shape[-2] if A.ndim >= 2 else 1} by {A.shape[-1] if A.ndim else 1} matrices")
    return A


def _mats(dt, n=3, batch=(), seed=31, spd=False):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batch + (n, n))
    a = a @ _T(a) + n * np.eye(n) if spd else a + n * np.eye(n)
    return a.astype(dt)


# ---------------------------------------------------------------------------- inverse
@register("linalg_inv", dtypes=_F, call=lambda A: inv(A),
          samples=lambda dt: [Sample((_mats(dt),), name="3x3"), Sample((_mats(dt, 2, (2,)),), name="batched")],
          bad_samples=lambda: [BadSample((np.ones((2, 3), np.float32),), error=ValueError, match="square")],
          torch=lambda torch, A: torch.linalg.inv(A))
class Inv(Function):
    @staticmethod
    def forward(ctx, A):
        try:
            Y = np.linalg.inv(A)
        except np.linalg.LinAlgError:
            raise LinAlgError("linalg.inv: The diagonal element is zero, the inversion could not be completed "
                              "because the input matrix is singular.") from None
        ctx.save_for_backward(Y)
        return Y

    @staticmethod
    def backward(ctx, dY):
        (Y,) = ctx.saved_tensors
        return -(_T(Y) @ dY @ _T(Y))




def inv(A):
    """A^-1 of square (batches of) matrices."""
    return Inv.apply(_square(A, "inv"))


# ---------------------------------------------------------------------------- determinants
def _adjugate_T(A):
    """adj(A)^T, the gradient of det(A), from the SVD A = U S V^T (defined for singular A)."""
    U, S, Vt = np.linalg.svd(A)
    n = S.shape[-1]
    prods = np.stack([np.prod(np.delete(S, i, axis=-1), axis=-1) for i in range(n)], axis=-1) if n > 1 \
        else np.ones_like(S)
    sign = np.linalg.det(U) * np.linalg.det(Vt)
    adj = (_T(Vt) * prods[..., None, :]) @ _T(U)           # adj(A) = det(U V^T) V adj(S) U^T
    return _T(adj * sign[..., None, None])


@register("linalg_det", dtypes=_F, call=lambda A: det(A),
          samples=lambda dt: [Sample((_mats(dt),), name="3x3"), Sample((_mats(dt, 2, (3,)),), name="batched"),
                              # torch 2.13 gives a zero gradient here; the adjugate (what finite
                              # differences give) is tested in tests/test_linalg_decomp.py
                              Sample((np.array([[1.0, 2.0], [2.0, 4.0]], dt),), name="singular", grad=False)],
          torch=lambda torch, A: torch.linalg.det(A))
class Det(Function):
    @staticmethod
    def forward(ctx, A):
        ctx.save_for_backward(A)
        return np.asarray(np.linalg.det(A), dtype=A.dtype)

    @staticmethod
    def backward(ctx, dy):
        (A,) = ctx.saved_tensors
        return (np.asarray(dy)[..., None, None] * _adjugate_T(A.astype(np.float64))).astype(A.dtype)




def det(A):
    """det(A) of square (batches of) matrices."""
    return Det.apply(_square(A, "det"))


@register("linalg_slogdet", dtypes=_F, call=lambda A: slogdet(A)[1],
          samples=lambda dt: [Sample((_mats(dt),), name="3x3"), Sample((-_mats(dt, 2, (2,)),), name="batched")],
          torch=lambda torch, A: torch.linalg.slogdet(A)[1])
class Slogdet(Function):
    """(sign, log|det|) packed as one (2, ...) array; only log|det| carries a gradient."""

    @staticmethod
    def forward(ctx, A):
        sign, logabs = np.linalg.slogdet(A)
        ctx.save_for_backward(A)
        return np.stack([np.asarray(sign, A.dtype), np.asarray(logabs, A.dtype)])

    @staticmethod
    def backward(ctx, dy):
        (A,) = ctx.saved_tensors
        with np.errstate(all="ignore"):
            invT = _T(np.linalg.pinv(A)) if np.any(np.linalg.det(A) == 0) else _T(np.linalg.inv(A))
        return np.asarray(dy[1])[..., None, None] * invT




def slogdet(A):
    """(sign, logabsdet) of square (batches of) matrices."""
    packed = Slogdet.apply(_square(A, "slogdet"))
    return _SlogdetResult(packed[0].detach(), packed[1])


_SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])


def logdet(A):
    """log det(A): nan for a negative determinant, -inf for a singular matrix (PyTorch's logdet)."""
    sign, logabs = slogdet(A)
    return logabs + Tensor._wrap(np.where(sign._data < 0, np.nan, 0.0).astype(A.dtype))


# ---------------------------------------------------------------------------- solve
@register("linalg_solve", dtypes=_F, call=lambda A, B: solve(A, B),
          samples=lambda dt: [Sample((_mats(dt), _mats(dt, 3, seed=5)[:, :2].copy()), name="matrix"),
                              Sample((_mats(dt, 3, (2,)), np.arange(6.0).reshape(2, 3).astype(dt)), name="vector")],
          torch=lambda torch, A, B: torch.linalg.solve(A, B))
class Solve(Function):
    @staticmethod
    def forward(ctx, A, B, vector):
        try:
            X = np.linalg.solve(A, B[..., None] if vector else B)
        except np.linalg.LinAlgError:
            raise LinAlgError("linalg.solve: The solver failed because the input matrix is singular.") from None
        X = X[..., 0] if vector else X
        ctx.save_for_backward(A, X)
        ctx.vector = vector
        return X

    @staticmethod
    def backward(ctx, dX):
        A, X = ctx.saved_tensors
        v = ctx.vector
        dB = np.linalg.solve(_T(A), dX[..., None] if v else dX)
        dA = -(dB @ _T(X[..., None] if v else X))
        dB = dB[..., 0] if v else dB
        return dA, dB, None




def solve(A, B, *, left=True):
    """X with A X = B (B a matrix (.., n, k) or a vector (.., n) batch), PyTorch's linalg.solve."""
    _square(A, "solve")
    if not isinstance(B, Tensor) or B.dtype != A.dtype:
        raise TypeError(f"linalg.solve: Expected A and B to be float tensors of the same dtype, got "
                        f"{A.dtype} and {getattr(B, 'dtype', type(B).__name__)}")
    if not left:
        return solve(A.transpose(-1, -2), B.transpose(-1, -2)).transpose(-1, -2)
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    n = A.shape[-1]
    if (B.shape[-1] if vector else B.shape[-2]) != n:
        raise ValueError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
                         f"({'x'.join(map(str, A.shape[-2:]))} and {'x'.join(map(str, B.shape))})")
    return Solve.apply(A, B, vector)


# ---------------------------------------------------------------------------- Cholesky
def _phi(X):
    """Lower triangle of X with its diagonal halved."""
    L = np.tril(X)
    d = np.einsum("...ii->...i", L)
    d *= 0.5
    return L


@register("linalg_cholesky", dtypes=_F, call=lambda A: cholesky(A),
          samples=lambda dt: [Sample((_mats(dt, spd=True),), name="spd", grad=False),
                              Sample((_mats(dt, 2, (2,), spd=True),), name="batched", grad=False)],
          torch=lambda torch, A: torch.linalg.cholesky(A))
class Cholesky(Function):
    @staticmethod
    def forward(ctx, A):
        try:
            L = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            raise LinAlgError("linalg.cholesky: The factorization could not be completed because the input is "
                              "not positive-definite.") from None
        ctx.save_for_backward(L)
        return L

    @staticmethod
    def backward(ctx, dL):
        (L,) = ctx.saved_tensors
        Linv = np.linalg.inv(L)
        S = _T(Linv) @ _phi(_T(L) @ np.tril(dL)) @ Linv
        return 0.5 * (S + _T(S))




def cholesky(A, *, upper=False):
    """The lower Cholesky factor L (A = L L^T) of symmetric positive-definite matrices (its
    transpose with upper=True). Only A's lower triangle is read, as PyTorch's."""
    L = Cholesky.apply(_square(A, "cholesky"))
    return L.transpose(-1, -2) if upper else L


# ---------------------------------------------------------------------------- symmetric eigendecomposition
def _eigh_samples(dt):
    return [Sample((_mats(dt, spd=True),), {"UPLO": "L"}, name="spd", grad=False),
            Sample((_mats(dt, 3, (2,)) + _T(_mats(dt, 3, (2,))),), {"UPLO": "U"}, name="batched", grad=False)]


@register("linalg_eigh", dtypes=_F, call=lambda A, UPLO="L": eigh(A, UPLO)[0], samples=_eigh_samples,
          torch=lambda torch, A, UPLO="L": torch.linalg.eigh(A, UPLO)[0])
class Eigh(Function):
    """(w, V) packed as one (.., n + 1, n) array: row 0 the ascending eigenvalues, then V."""

    @staticmethod
    def forward(ctx, A, uplo):
        w, V = np.linalg.eigh(A, UPLO=uplo)
        ctx.save_for_backward(w, V)
        return np.concatenate([w[..., None, :], V], axis=-2)

    @staticmethod
    def backward(ctx, dy):
        w, V = ctx.saved_tensors
        dw, dV = dy[..., 0, :], dy[..., 1:, :]
        VtdV = _T(V) @ dV
        VtdV = 0.5 * (VtdV - _T(VtdV))                       # skew part (the tangent space of O(n))
        E = w[..., None, :] - w[..., :, None]                # E_ij = w_j - w_i
        n = w.shape[-1]
        E[..., np.arange(n), np.arange(n)] = 1.0
        M = VtdV / E
        M[..., np.arange(n), np.arange(n)] = dw
        return V @ M @ _T(V), None




_EighResult = namedtuple("eigh", ["eigenvalues", "eigenvectors"])


def eigh(A, UPLO="L"):
    """Eigenvalues (ascending) and orthonormal eigenvectors of symmetric matrices, reading the
    lower (UPLO='L') or upper triangle. Eigenvectors are unique up to sign, as PyTorch's."""
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    packed = Eigh.apply(_square(A, "eigh"), UPLO)
    return _EighResult(packed[..., 0, :], packed[..., 1:, :])


def eigvalsh(A, UPLO="L"):
    return eigh(A, UPLO)[0]
