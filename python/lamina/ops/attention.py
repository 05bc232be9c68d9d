"""Attention, PyTorch's F.scaled_dot_product_attention and F.multi_head_attention_forward, as
compositions of ops that already carry their backward (batched matmul, softmax, masked_fill,
dropout, linear), so eager autodiff and the compiler read them from those definitions.

Masks follow PyTorch's two conventions, which are opposite for booleans:
- scaled_dot_product_attention: a bool attn_mask is True where attention is ALLOWED;
- multi_head_attention_forward / nn.MultiheadAttention: a bool attn_mask or key_padding_mask
  is True where attention is NOT allowed.
A float mask is added to the scores in both.

>>> import lamina, lamina.nn.functional as F
>>> q = k = v = lamina.ones(1, 2, 3, 4)
>>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
lamina.Size([1, 2, 3, 4])
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from .activation import softmax
from .linalg import linear
from .norm import DropoutFn

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _check_tensor(t, name, ndim_min=2):
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a lamina Tensor, got {type(t).__name__}")
    if t.ndim < ndim_min:
        raise ValueError(f"{name}: expected at least {ndim_min} dims (..., L, E), got shape {tuple(t.shape)}")
    return t


def _dropout(x, p):
    return DropoutFn.apply(x, float(p), 1)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(q k^T * scale + mask) v over (..., L, E) queries and (..., S, E) keys/values.
    scale defaults to 1/sqrt(E); is_causal masks keys after each query's position; dropout_p drops
    attention weights (always, as PyTorch's function does: pass 0.0 when evaluating)."""
    q, k, v = _check_tensor(query, "query"), _check_tensor(key, "key"), _check_tensor(value, "value")
    if enable_gqa:
        raise NotImplementedError("scaled_dot_product_attention: enable_gqa is not supported by lamina")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"key: expected the query's embedding size {q.shape[-1]} as its last dim, "
                         f"got shape {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"value: expected as many positions as key ({k.shape[-2]}), got shape {tuple(v.shape)}")
    L, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = (q @ k.transpose(-2, -1)) * scale
    if is_causal:
        if attn_mask is not None:
            raise ValueError("attn_mask: expected None when is_causal=True (PyTorch refuses both)")
        allowed = np.tril(np.ones((L, S), dtype=bool))
        scores = scores.masked_fill(Tensor._wrap(~allowed), float("-inf"))
    elif attn_mask is not None:
        if attn_mask.dtype == np.bool_:
            scores = scores.masked_fill(Tensor._wrap(~attn_mask.numpy()), float("-inf"))
        else:
            scores = scores + attn_mask
    weights = softmax(scores, -1)
    if dropout_p > 0.0:
        weights = _dropout(weights, dropout_p)
    return weights @ v


def _as_additive_mask(mask, dtype, name):
    """A bool mask (True = not allowed) or a float mask -> a float mask to add to the scores."""
    if mask is None:
        return None
    if mask.dtype == np.bool_:
        return Tensor._wrap(np.where(mask.numpy(), -np.inf, 0.0).astype(dtype))
    if mask.dtype.kind != "f":
        raise TypeError(f"{name}: expected a bool or float mask, got dtype {mask.dtype}")
    return mask.to(dtype) if mask.dtype != dtype else mask


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """PyTorch's F.multi_head_attention_forward on (L, N, E) query and (S, N, E) key/value (or
    unbatched (L, E)); returns (output (L, N, E), weights (N, L, S) averaged over heads, or per
    head (N, H, L, S), or None when need_weights is False)."""
    if bias_k is not None or bias_v is not None or add_zero_attn or static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: bias_k/bias_v, add_zero_attn and static k/v "
                                  "are not supported by lamina")
    q_in, k_in, v_in = (_check_tensor(t, n) for t, n in ((query, "query"), (key, "key"), (value, "value")))
    unbatched = q_in.ndim == 2
    if unbatched:
        q_in, k_in, v_in = q_in.unsqueeze(1), k_in.unsqueeze(1), v_in.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = q_in.shape
    S = k_in.shape[0]
    if E != embed_dim_to_check:
        raise ValueError(f"query: expected embedding size {embed_dim_to_check}, got shape {tuple(query.shape)}")
    if E % num_heads:
        raise ValueError(f"num_heads: embed_dim ({E}) must be divisible by num_heads ({num_heads})")
    hd = E // num_heads
    if use_separate_proj_weight:
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias.chunk(3)
        q, k, v = linear(q_in, q_proj_weight, bq), linear(k_in, k_proj_weight, bk), linear(v_in, v_proj_weight, bv)
    elif q_in is k_in and k_in is v_in:  # self-attention: one projection, split in three (PyTorch's order)
        q, k, v = linear(q_in, in_proj_weight, in_proj_bias).chunk(3, -1)
    else:
        wq, wk, wv = in_proj_weight.chunk(3)
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias.chunk(3)
        q, k, v = linear(q_in, wq, bq), linear(k_in, wk, bk), linear(v_in, wv, bv)
    # (L, N, E) -> (N*H, L, hd)
    q = q.reshape(L, N * num_heads, hd).transpose(0, 1)
    k = k.reshape(S, N * num_heads, hd).transpose(0, 1)
    v = v.reshape(S, N * num_heads, hd).transpose(0, 1)
    mask = _as_additive_mask(attn_mask, q.dtype, "attn_mask")
    if is_causal and mask is None:
        mask = Tensor._wrap(np.triu(np.full((L, S), -np.inf, dtype=q.dtype), 1))
    if mask is not None:
        if mask.ndim == 2:
            if tuple(mask.shape) != (L, S):
                raise ValueError(f"attn_mask: expected shape {(L, S)}, got {tuple(mask.shape)}")
            mask = mask.unsqueeze(0)
        elif tuple(mask.shape) != (N * num_heads, L, S):
            raise ValueError(f"attn_mask: expected shape {(N * num_heads, L, S)}, got {tuple(mask.shape)}")
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (N, S):
            raise ValueError(f"key_padding_mask: expected shape {(N, S)}, got {tuple(key_padding_mask.shape)}")
        kpm = _as_additive_mask(key_padding_mask, q.dtype, "key_padding_mask")
        kpm = kpm.reshape(N, 1, 1, S).expand(N, num_heads, 1, S).reshape(N * num_heads, 1, S)
        mask = kpm if mask is None else mask + kpm
    if not training:
        dropout_p = 0.0
    if need_weights:
        scores = (q * math.sqrt(1.0 / float(hd))) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        weights = softmax(scores, -1)
        if dropout_p > 0.0:
            weights = _dropout(weights, dropout_p)
        out = weights @ v
    else:
        if mask is not None and mask.shape[0] == 1:
            mask = mask.expand(N * num_heads, L, S)
        out = scaled_dot_product_attention(q, k, v, mask, dropout_p)
        weights = None
    out = out.transpose(0, 1).reshape(L * N, E)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(L, N, E)
    if weights is not None:
        weights = weights.reshape(N, num_heads, L, S)
        if average_attn_weights:
            weights = weights.mean(1)
        if unbatched:
            weights = weights[0]
    if unbatched:
        out = out[:, 0]
    return out, weights
