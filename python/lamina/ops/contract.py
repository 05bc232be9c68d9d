"""Tensor contractions as PyTorch names them: mm (2-D only), bmm (3-D only) and einsum.

mm and bmm check their operands and then run lamina's matmul (the native GEMM, lowered by the
compiler); einsum runs NumPy's einsum forward, and its gradient for each operand is another
einsum of dy with the other operands.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor, float32, float64
from .registry import BadSample, Sample, register

_F = (float32, float64)


def mm(input, mat2):
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got {input.ndim}-D and {mat2.ndim}-D")
    if input.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mm: mat1 and mat2 shapes cannot be multiplied ({input.shape[0]}x{input.shape[1]} "
                           f"and {mat2.shape[0]}x{mat2.shape[1]})")
    return input @ mat2


def bmm(input, mat2):
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got {input.ndim}-D and {mat2.ndim}-D")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: {input.shape[0]} and {mat2.shape[0]}")
    if input.shape[2] != mat2.shape[1]:
        raise RuntimeError(f"bmm: expected mat2.size(1) == {input.shape[2]}, got {mat2.shape[1]}")
    return input @ mat2


def _parse(equation, n):
    eq = equation.replace(" ", "")
    if "..." in eq:
        raise NotImplementedError("einsum: '...' (ellipsis) subscripts are not supported yet; "
                                  "write the dims out explicitly")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs = eq
        letters = lhs.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != n:
        raise ValueError(f"einsum: the equation has {len(ins)} operands, got {n} tensors")
    return ins, out


def _einsum_samples(dt):
    r = np.random.default_rng(90)
    a, b = r.standard_normal((2, 3)).astype(dt), r.standard_normal((3, 4)).astype(dt)
    c = r.standard_normal((2, 3, 5)).astype(dt)
    return [Sample((a, b), {"equation": "ij,jk->ik"}, name="matmul"),
            Sample((a, a), {"equation": "ij,ij->i"}, name="rowdot"),
            Sample((c, a), {"equation": "bjk,bj->k"}, name="contract"),
            Sample((a, b), {"equation": "ij,jk"}, name="implicit")]


@register("einsum", kernels=("numpy einsum",), dtypes=_F,
          call=lambda *ops, equation="ij,jk->ik": einsum(equation, *ops), samples=_einsum_samples,
          bad_samples=lambda: [BadSample((np.ones((2, 3)), np.ones((4, 5))), {"equation": "ij,jk->ik"}, ValueError)],
          reference=lambda *ops, equation="ij,jk->ik": np.einsum(equation, *ops),
          torch=lambda torch, *ops, equation="ij,jk->ik": torch.einsum(equation, *ops))
class Einsum(Function):
    @staticmethod
    def forward(ctx, spec, *ops):
        ins, out = spec
        ctx.spec, ctx.ops = spec, ops
        return np.einsum(",".join(ins) + "->" + out, *ops)

    @staticmethod
    def backward(ctx, dy):
        ins, out = ctx.spec
        grads = [None]
        for i, (sub, x) in enumerate(zip(ins, ctx.ops)):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            others = [(s, o) for j, (s, o) in enumerate(zip(ins, ctx.ops)) if j != i]
            have = set(out) | set("".join(s for s, _ in others))
            # dims of x that appear nowhere else were summed over x alone: their gradient is
            # the same for every index, so compute without them and broadcast back.
            keep = "".join(c for c in dict.fromkeys(sub) if c in have)
            eq = ",".join([out] + [s for s, _ in others]) + "->" + keep
            g = np.einsum(eq, dy, *[o for _, o in others])
            if len(set(sub)) != len(sub):
                raise NotImplementedError("einsum: gradient of a repeated subscript (a diagonal) is not supported")
            shape = [x.shape[sub.index(c)] if c in keep else 1 for c in sub]
            order = [keep.index(c) for c in sub if c in keep]
            g = np.transpose(g, order).reshape(shape)
            grads.append(np.broadcast_to(g, x.shape).astype(x.dtype, copy=True))
        return tuple(grads)


def einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for i, o in enumerate(operands):
        if not isinstance(o, Tensor):
            raise TypeError(f"einsum: operand {i} must be a Tensor, got {type(o).__name__}")
    ins, out = _parse(equation, len(operands))
    sizes = {}
    for sub, o in zip(ins, operands):
        if len(sub) != o.ndim:
            raise ValueError(f"einsum: subscripts {sub!r} name {len(sub)} dims, the operand has {o.ndim}")
        for c, s in zip(sub, o.shape):
            if sizes.setdefault(c, s) != s:
                raise ValueError(f"einsum: dim {c!r} has size {sizes[c]} in one operand and {s} in another")
    dtypes = {o.dtype for o in operands}
    if len(dtypes) != 1:
        raise TypeError(f"einsum: operands must share a dtype, got {sorted(str(d) for d in dtypes)}")
    return Einsum.apply((tuple(ins), out), *operands)
