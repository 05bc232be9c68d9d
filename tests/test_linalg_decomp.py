"""lamina.linalg inv / det / slogdet / solve / cholesky / eigh against PyTorch (values and
gradients in float64), the singular-matrix determinant gradient against finite differences,
and the errors for singular / non-positive-definite inputs."""
import numpy as np
import pytest

import lamina
from conftest import assert_same_results, run_in_both

rng = np.random.default_rng(0)
A = rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
S = A @ A.transpose(0, 2, 1) + np.eye(3)
B = rng.standard_normal((2, 3, 2))
b = rng.standard_normal((2, 3))


def _program(fw):
    a, s = fw.tensor(A, requires_grad=True), fw.tensor(S, requires_grad=True)
    bb, bv = fw.tensor(B, requires_grad=True), fw.tensor(b, requires_grad=True)
    out = {"inv": fw.linalg.inv(a), "det": fw.linalg.det(a), "slog": fw.linalg.slogdet(a)[1],
           "solve": fw.linalg.solve(a, bb), "solvev": fw.linalg.solve(a, bv), "chol": fw.linalg.cholesky(s),
           "cholU": fw.linalg.cholesky(s, upper=True), "w": fw.linalg.eigh(s)[0], "wU": fw.linalg.eigvalsh(s, "U"),
           "logdet": fw.logdet(s), "inverse": a.inverse()}
    V = fw.linalg.eigh(s)[1]
    out["V"] = V * V[..., :1, :].sign()          # eigenvectors are unique up to sign
    sum((v * v).sum() for v in out.values()).backward()
    out.update({"sign": fw.linalg.slogdet(a)[0], "da": a.grad, "ds": s.grad, "dB": bb.grad, "db": bv.grad})
    return out


def test_decompositions_and_their_gradients_match_torch():
    assert_same_results(*run_in_both(_program), tol=1e-9)


def test_det_gradient_of_a_singular_matrix_is_the_adjugate():
    a = lamina.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=lamina.float64, requires_grad=True)
    lamina.linalg.det(a).backward()
    eps, fd = 1e-6, np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            p = a.detach().numpy().copy()
            p[i, j] += eps
            m = a.detach().numpy().copy()
            m[i, j] -= eps
            fd[i, j] = (np.linalg.det(p) - np.linalg.det(m)) / (2 * eps)
    np.testing.assert_allclose(a.grad.numpy(), fd, atol=1e-8)
    np.testing.assert_allclose(fd, [[4.0, -2.0], [-2.0, 1.0]], atol=1e-8)


def test_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="singular"):
        lamina.linalg.inv(lamina.tensor([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(RuntimeError, match="not positive-definite"):
        lamina.linalg.cholesky(lamina.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        lamina.linalg.det(lamina.zeros(2, 3))
    with pytest.raises(ValueError, match="Incompatible shapes"):
        lamina.linalg.solve(lamina.eye(3), lamina.zeros(2))
