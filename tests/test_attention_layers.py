"""Attention and the Transformer layers against PyTorch, in float64 from the same seed: the
initial weights are PyTorch's draw for draw, so outputs, attention weights and gradients must
agree to rounding. Masks in both of PyTorch's conventions (SDPA's bool = allowed, MHA's bool =
masked out), key padding, causal, batch_first, kdim/vdim, norm_first, gelu."""
import numpy as np
import pytest

import lamina
from conftest import assert_same_results, run_in_both


def _x(fw, shape, seed):
    return fw.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_sdpa_matches_torch():
    def run(fw):
        F = fw.nn.functional
        q, k, v = _x(fw, (2, 3, 4, 8), 1), _x(fw, (2, 3, 6, 8), 2), _x(fw, (2, 3, 6, 8), 3)
        allowed = fw.tensor(np.random.default_rng(4).random((4, 6)) > 0.3)
        outs = [F.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, q, q, is_causal=True),
                F.scaled_dot_product_attention(q, k, v, attn_mask=allowed),
                F.scaled_dot_product_attention(q, k, v, attn_mask=fw.tensor(np.linspace(-1, 1, 24).reshape(4, 6))),
                F.scaled_dot_product_attention(q, k, v, scale=0.5)]
        sum(((o * o).sum() for o in outs[1:]), outs[0].sum()).backward()
        return {**{f"out{i}": o for i, o in enumerate(outs)}, "dq": q.grad, "dk": k.grad, "dv": v.grad}
    assert_same_results(*run_in_both(run))


@pytest.mark.parametrize("case", ["padding", "causal-float", "bool-mask-per-head", "no-weights", "kdim-vdim",
                                  "unbatched"])
def test_multihead_attention_matches_torch(case):
    def run(fw):
        nn = fw.nn
        if case == "kdim-vdim":
            mha = nn.MultiheadAttention(8, 4, kdim=6, vdim=5)
            q, k, v = _x(fw, (4, 2, 8), 1), _x(fw, (7, 2, 6), 2), _x(fw, (7, 2, 5), 3)
            out, w = mha(q, k, v)
            x = q
        elif case == "unbatched":
            mha = nn.MultiheadAttention(8, 2)
            x = _x(fw, (5, 8), 1)
            out, w = mha(x, x, x)
        else:
            mha = nn.MultiheadAttention(8, 2, batch_first=True)
            x = _x(fw, (3, 5, 8), 1)
            kw = {}
            if case == "padding":
                kw["key_padding_mask"] = fw.tensor(np.array([[0] * 5, [0] * 3 + [1] * 2, [0] * 4 + [1]], dtype=bool))
            elif case == "causal-float":
                kw["attn_mask"] = nn.Transformer.generate_square_subsequent_mask(5)
            elif case == "bool-mask-per-head":
                kw["attn_mask"] = fw.tensor(np.random.default_rng(9).random((6, 5, 5)) > 0.7)
                kw["average_attn_weights"] = False
            elif case == "no-weights":
                kw["need_weights"] = False
                kw["attn_mask"] = fw.tensor(np.triu(np.ones((5, 5), dtype=bool), 1))
            out, w = mha(x, x, x, **kw)
        (out * out).sum().backward()
        res = {"out": out, "dx": x.grad, "repr": repr(mha)}
        res.update({n: p.grad for n, p in mha.named_parameters()})
        res.update({"init_" + n: p for n, p in mha.named_parameters()})
        if w is not None:
            res["w"] = w
        return res
    assert_same_results(*run_in_both(run))


@pytest.mark.parametrize("kw", [dict(), dict(activation="gelu", norm_first=True)])
def test_transformer_encoder_matches_torch(kw):
    def run(fw):
        nn = fw.nn
        layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True, **kw)
        enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        x = _x(fw, (3, 5, 8), 1)
        kpm = fw.tensor(np.array([[0] * 5, [0] * 3 + [1] * 2, [0] * 4 + [1]], dtype=bool))
        y = enc(x, mask=nn.Transformer.generate_square_subsequent_mask(5) == float("-inf"), src_key_padding_mask=kpm)
        (y * fw.tensor(np.arange(120.0).reshape(3, 5, 8))).sum().backward()
        return {"y": y, "dx": x.grad, **{n: p.grad for n, p in enc.named_parameters()}}
    assert_same_results(*run_in_both(run), tol=1e-9)


def test_transformer_matches_torch():
    def run(fw):
        t = fw.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=16,
                              dropout=0.0)
        src, tgt = _x(fw, (6, 2, 8), 1), _x(fw, (4, 2, 8), 2)
        out = t(src, tgt, tgt_mask=t.generate_square_subsequent_mask(4))
        out.sum().backward()
        return {"out": out, "dsrc": src.grad, "dtgt": tgt.grad, **{n: p for n, p in t.named_parameters()},
                **{"d" + n: p.grad for n, p in t.named_parameters()}}
    assert_same_results(*run_in_both(run), tol=1e-9)


def test_attention_errors():
    with pytest.raises(ValueError, match="divisible"):
        lamina.nn.MultiheadAttention(6, 4)
    mha = lamina.nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match="key_padding_mask"):
        mha(lamina.zeros(5, 2, 8), lamina.zeros(5, 2, 8), lamina.zeros(5, 2, 8),
            key_padding_mask=lamina.zeros(3, 5, dtype=lamina.bool))
    with pytest.raises(ValueError, match="attn_mask"):
        mha(lamina.zeros(5, 2, 8), lamina.zeros(5, 2, 8), lamina.zeros(5, 2, 8), attn_mask=lamina.zeros(4, 4))
    with pytest.raises(RuntimeError, match="relu/gelu"):
        lamina.nn.TransformerEncoderLayer(8, 2, activation="swish")
