"""ptcourse.attention agrees with PyTorch's own attention and Transformer modules.

Tolerance: every equivalence check uses float32 and ``atol=1e-5, rtol=1e-5`` (ATOL/RTOL).
The torch reference modules run in eval mode with dropout 0 after the weights are copied.
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from ptcourse.attention import (
    FeedForward,
    LearnedPositionalEncoding,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    TransformerEncoder,
    TransformerEncoderBlock,
    causal_mask,
    fully_masked_rows,
    scaled_dot_product_attention,
    sinusoidal_encoding,
)

ATOL = RTOL = 1e-5
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, atol=ATOL, rtol=RTOL)


def random_padding(batch: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """Bool (batch, length), True = padding; every row keeps at least one real token."""
    lengths = torch.randint(1, length + 1, (batch,), generator=gen)
    return torch.arange(length).unsqueeze(0) >= lengths.unsqueeze(1)


# ---------------------------------------------------------------- scaled dot-product attention
SHAPES = [  # (batch, heads, L, S, d_k, d_v)
    (1, 1, 1, 1, 1, 1),
    (2, 1, 5, 5, 8, 8),
    (3, 4, 7, 7, 16, 4),
    (2, 2, 3, 9, 6, 5),
    (4, 3, 10, 6, 32, 32),
]
MASKS = ["none", "padding", "causal", "bool", "float", "padding+causal"]


@pytest.mark.parametrize("shape,mask", list(itertools.product(SHAPES, MASKS)))
def test_sdpa_matches_torch(shape, mask):
    B, H, L, S, dk, dv = shape
    gen = torch.Generator().manual_seed(zlib.crc32(repr((shape, mask)).encode()))
    q, k = torch.randn(B, H, L, dk, generator=gen), torch.randn(B, H, S, dk, generator=gen)
    v = torch.randn(B, H, S, dv, generator=gen)
    kwargs, ref_kwargs = {}, {}
    if "padding" in mask:
        pad = random_padding(B, S, gen)
        pad[:, 0] = False  # keep key 0 so that no causal row is empty
        kwargs["key_padding_mask"] = pad
        ref_kwargs["attn_mask"] = ~pad[:, None, None, :]  # torch: True = may attend
    if "causal" in mask:
        kwargs["causal"] = True
        allowed = ~causal_mask(L, S)
        ref_kwargs["attn_mask"] = allowed if "attn_mask" not in ref_kwargs else ref_kwargs["attn_mask"] & allowed
    if mask == "bool":
        blocked = torch.rand(L, S, generator=gen) < 0.3
        blocked[:, 0] = False
        kwargs["attn_mask"], ref_kwargs["attn_mask"] = blocked, ~blocked
    if mask == "float":
        bias = torch.randn(B, 1, L, S, generator=gen)
        kwargs["attn_mask"] = ref_kwargs["attn_mask"] = bias
    out = scaled_dot_product_attention(q, k, v, **kwargs)
    ref = F.scaled_dot_product_attention(q, k, v, **ref_kwargs)
    assert out.shape == (B, H, L, dv)
    assert close(out, ref), (out - ref).abs().max()


def test_sdpa_three_dim_inputs_and_weights():
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 3)
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    expected_w = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(8), dim=-1)
    assert close(w, expected_w) and close(out, expected_w @ v)
    assert close(out, F.scaled_dot_product_attention(q, k, v))


def test_fully_masked_rows_give_zeros_not_nan():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    pad = torch.tensor([[True, True, True], [False, True, True]])  # sequence 0 is all padding
    out, w = scaled_dot_product_attention(q, k, v, key_padding_mask=pad, return_weights=True)
    assert not torch.isnan(out).any() and not torch.isnan(w).any()
    assert (out[0] == 0).all() and (w[0] == 0).all()
    assert close(w[1].sum(-1), torch.ones(3))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=~pad[:, None, :])
    assert close(out, ref)  # torch's fused attention also returns zeros here
    q.requires_grad_(True)
    scaled_dot_product_attention(q, k, v, key_padding_mask=pad).sum().backward()
    assert torch.isfinite(q.grad).all(), "fully masked rows must not give NaN gradients either"
    rows = fully_masked_rows(3, key_padding_mask=pad)
    assert rows.tolist() == [[True] * 3, [False] * 3]
    assert not fully_masked_rows(3, causal=True, attn_mask=torch.zeros(3, 3)).any()


def test_sdpa_gradients_match_torch():
    q, k, v = (torch.randn(2, 2, 5, 8, requires_grad=True) for _ in range(3))
    scaled_dot_product_attention(q, k, v, causal=True).square().sum().backward()
    mine = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v, is_causal=True).square().sum().backward()
    assert all(close(a, t.grad) for a, t in zip(mine, (q, k, v)))


def test_dropout_only_in_training_and_weights_before_dropout():
    torch.manual_seed(0)
    q = k = v = torch.randn(1, 6, 8)
    out_a, w = scaled_dot_product_attention(q, k, v, dropout_p=0.5, return_weights=True)
    out_b = scaled_dot_product_attention(q, k, v)
    assert not close(out_a, out_b)
    assert close(w.sum(-1), torch.ones(1, 6))
    mha = MultiHeadAttention(8, 2, dropout=0.5).eval()
    x = torch.randn(2, 5, 8)
    assert close(mha(x)[0], mha(x)[0])


@SETTINGS
@given(
    B=st.integers(1, 3), H=st.integers(1, 3), L=st.integers(1, 8), S=st.integers(1, 8),
    d=st.integers(1, 8), causal=st.booleans(), seed=st.integers(0, 2**16),
)
def test_masked_keys_get_zero_weight_and_rows_sum_to_one(B, H, L, S, d, causal, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(B, H, L, d, generator=gen), torch.randn(B, H, S, d, generator=gen), torch.randn(B, H, S, d, generator=gen)
    pad = random_padding(B, S, gen)
    blocked = pad[:, None, None, :] | (causal_mask(L, S) if causal else torch.zeros(L, S, dtype=torch.bool))
    _, w = scaled_dot_product_attention(q, k, v, key_padding_mask=pad, causal=causal, return_weights=True)
    assert (w[blocked.expand_as(w)] == 0).all()
    empty = blocked.all(-1).expand(B, H, L)
    sums = w.sum(-1)
    assert torch.allclose(sums[~empty], torch.ones_like(sums[~empty]), atol=1e-5)
    assert (sums[empty] == 0).all()
    assert (w >= 0).all()


# ---------------------------------------------------------------- multi-head attention
MHA_CASES = [  # (d_model, n_heads, batch, L, S, bias)
    (8, 1, 1, 4, 4, True),
    (16, 4, 3, 7, 7, True),
    (12, 3, 2, 5, 9, False),
    (32, 8, 2, 6, 3, True),
]


@pytest.mark.parametrize("case,mask", list(itertools.product(MHA_CASES, ["none", "padding", "causal"])))
def test_mha_matches_torch(case, mask):
    D, H, B, L, S, bias = case
    torch.manual_seed(D + H + B + L + S)
    ref = nn.MultiheadAttention(D, H, bias=bias, batch_first=True).eval()
    mine = MultiHeadAttention(D, H, bias=bias).load_from_torch(ref).eval()
    q, kv = torch.randn(B, L, D), torch.randn(B, S, D)
    kwargs, ref_kwargs = {}, {}
    if mask == "padding":
        pad = random_padding(B, S, torch.Generator().manual_seed(1))
        kwargs["key_padding_mask"] = ref_kwargs["key_padding_mask"] = pad
    if mask == "causal":
        kwargs["causal"] = True
        ref_kwargs["attn_mask"] = causal_mask(L, S)  # nn.MultiheadAttention: True = not allowed
    with torch.no_grad():
        for average in (True, False):
            out, w = mine(q, kv, kv, average_weights=average, **kwargs)
            ref_out, ref_w = ref(q, kv, kv, average_attn_weights=average, **ref_kwargs)
            assert close(out, ref_out), (out - ref_out).abs().max()
            assert close(w, ref_w)
        back = mine.to_torch().eval()  # and the other direction
        assert close(back(q, kv, kv, **ref_kwargs)[0], out)


def test_mha_self_attention_default_and_need_weights():
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 5, 16)
    out, w = mha(x)
    assert out.shape == (2, 5, 16) and w.shape == (2, 5, 5)
    out2, none = mha(x, need_weights=False)
    assert none is None and close(out, out2)
    assert mha(x, average_weights=False)[1].shape == (2, 4, 5, 5)


def test_mha_gradients_match_torch():
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(16, 4, batch_first=True)
    mine = MultiHeadAttention(16, 4).load_from_torch(ref)
    x = torch.randn(3, 6, 16)
    mine(x)[0].square().sum().backward()
    ref(x, x, x)[0].square().sum().backward()
    assert close(torch.cat([mine.q_proj.weight.grad, mine.k_proj.weight.grad, mine.v_proj.weight.grad]), ref.in_proj_weight.grad)
    assert close(mine.out_proj.weight.grad, ref.out_proj.weight.grad)


@SETTINGS
@given(B=st.integers(1, 3), L=st.integers(1, 8), heads=st.sampled_from([1, 2, 4]), seed=st.integers(0, 2**16))
def test_self_attention_is_permutation_equivariant(B, L, heads, seed):
    """Without positional encodings, permuting the tokens permutes the outputs the same way."""
    torch.manual_seed(seed)
    block = TransformerEncoderBlock(8, heads, 16, norm_first=bool(seed % 2)).eval()
    x = torch.randn(B, L, 8)
    pad = random_padding(B, L, torch.Generator().manual_seed(seed))
    perm = torch.randperm(L)
    with torch.no_grad():
        y = block(x, key_padding_mask=pad)
        y_perm = block(x[:, perm], key_padding_mask=pad[:, perm])
        o, w = block.self_attn(x, key_padding_mask=pad)
        o_perm, w_perm = block.self_attn(x[:, perm], key_padding_mask=pad[:, perm])
    assert torch.allclose(y[:, perm], y_perm, atol=1e-5)
    assert torch.allclose(o[:, perm], o_perm, atol=1e-5)
    assert torch.allclose(w[:, perm][:, :, perm], w_perm, atol=1e-6)


# ---------------------------------------------------------------- encoder block
@pytest.mark.parametrize(
    "norm_first,activation,mask", list(itertools.product([False, True], ["relu", "gelu"], ["none", "padding", "causal"]))
)
def test_encoder_block_matches_torch(norm_first, activation, mask):
    torch.manual_seed(int(norm_first) * 7 + len(activation) + len(mask))
    D, H, FF, B, L = 16, 4, 32, 3, 7
    ref = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first).eval()
    block = TransformerEncoderBlock(D, H, FF, norm_first=norm_first, activation=activation).load_from_torch(ref).eval()
    x = torch.randn(B, L, D)
    kwargs, ref_kwargs = {}, {}
    if mask == "padding":
        pad = random_padding(B, L, torch.Generator().manual_seed(3))
        kwargs["key_padding_mask"] = ref_kwargs["src_key_padding_mask"] = pad
    if mask == "causal":
        kwargs["causal"] = True
        ref_kwargs.update(src_mask=nn.Transformer.generate_square_subsequent_mask(L), is_causal=True)
    with torch.no_grad():
        out, ref_out = block(x, **kwargs), ref(x, **ref_kwargs)
        if mask == "padding":  # torch's fast path may leave padded *query* rows undefined
            keep = ~kwargs["key_padding_mask"]
            out, ref_out = out[keep], ref_out[keep]
        assert close(out, ref_out), (out - ref_out).abs().max()
        back = block.to_torch().eval()
        assert close(back(x, **ref_kwargs)[~kwargs["key_padding_mask"]] if mask == "padding" else back(x, **ref_kwargs), out)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_training_mode_gradients_match_torch(norm_first):
    torch.manual_seed(1)
    ref = nn.TransformerEncoderLayer(16, 2, 24, dropout=0.0, batch_first=True, norm_first=norm_first)
    block = TransformerEncoderBlock(16, 2, 24, norm_first=norm_first).load_from_torch(ref)
    x = torch.randn(2, 5, 16)
    (y1, y2) = block(x), ref(x)
    assert close(y1, y2)
    y1.square().sum().backward()
    y2.square().sum().backward()
    assert close(block.ff.linear1.weight.grad, ref.linear1.weight.grad)
    assert close(block.norm1.weight.grad, ref.norm1.weight.grad)


def test_post_ln_and_pre_ln_differ_and_block_returns_weights():
    torch.manual_seed(0)
    post = TransformerEncoderBlock(16, 4, 32, norm_first=False).eval()
    pre = TransformerEncoderBlock(16, 4, 32, norm_first=True).eval()
    pre.load_state_dict(post.state_dict())
    x = torch.randn(2, 5, 16) * 3 + 1
    y_post, w = post(x, return_weights=True)
    assert not close(y_post, pre(x))
    assert w.shape == (2, 4, 5, 5)
    # post-LN output is normalised (per position mean 0, std 1 before the affine, which is identity at init)
    assert torch.allclose(y_post.mean(-1), torch.zeros(2, 5), atol=1e-5)


def test_feedforward_is_position_wise():
    ff = FeedForward(8, 32)
    x = torch.randn(2, 5, 8)
    y = ff(x)
    assert close(y[:, 2], ff(x[:, 2:3])[:, 0])
    assert close(y, ff.linear2(torch.relu(ff.linear1(x))))


# ---------------------------------------------------------------- positional encodings and the stack
def test_sinusoidal_table_values_and_relative_property():
    pe = sinusoidal_encoding(50, 16)
    pos, i = 7, 3
    assert math.isclose(pe[pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    gram = pe @ pe.T  # dot products depend only on the offset between positions
    assert torch.allclose(gram[3, 8], gram[20, 25], atol=1e-4)
    assert sinusoidal_encoding(5, 7).shape == (5, 7)  # odd d_model works
    enc = SinusoidalPositionalEncoding(16, max_len=50)
    x = torch.zeros(2, 10, 16)
    assert close(enc(x)[1], pe[:10])
    assert sum(p.numel() for p in enc.parameters()) == 0


def test_learned_encoding_is_trainable():
    enc = LearnedPositionalEncoding(8, max_len=12)
    x = torch.zeros(1, 5, 8)
    enc(x).sum().backward()
    assert enc.pe.grad is not None and (enc.pe.grad[:5] == 1).all() and (enc.pe.grad[5:] == 0).all()


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "none"])
def test_encoder_stack_shapes_padding_and_causality(positional):
    torch.manual_seed(0)
    model = TransformerEncoder(11, 16, 2, 32, 2, max_len=20, positional=positional, n_outputs=11).eval()
    tokens = torch.randint(1, 11, (3, 9))
    logits, weights = model(tokens, return_weights=True)
    assert logits.shape == (3, 9, 11) and len(weights) == 2 and weights[0].shape == (3, 2, 9, 9)
    pad = torch.zeros(3, 9, dtype=torch.bool)
    pad[:, 6:] = True
    changed = tokens.clone()
    changed[:, 6:] = 0  # what sits under the padding must not matter
    with torch.no_grad():
        assert close(model(tokens, pad)[:, :6], model(changed, pad)[:, :6])
        future = tokens.clone()
        future[:, 5:] = 1
        assert close(model(tokens, causal=True)[:, :5], model(future, causal=True)[:, :5])
    hidden = TransformerEncoder(11, 16, 2, 32, 1)(tokens)
    assert hidden.shape == (3, 9, 16)


# ---------------------------------------------------------------- fully masked rows (issue 7)
def _left_padded_causal(kind: str):
    """Two sequences of 5, the first left-padded by 2: with a causal mask its first two queries see nothing.

    Returns (our mask kwargs, torch SDPA's attn_mask) for the bool or the float path.
    """
    pad = torch.tensor([[True, True, False, False, False], [False] * 5])
    blocked = pad[:, None, None, :] | causal_mask(5)  # (2, 1, 5, 5), True = not allowed
    if kind == "bool":
        return {"key_padding_mask": pad, "causal": True}, ~blocked
    additive = torch.zeros(2, 1, 5, 5).masked_fill(blocked, float("-inf"))
    return {"attn_mask": additive}, additive


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows_have_finite_gradients_equal_to_sdpa(kind):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, requires_grad=True) for _ in range(3))
    ours_kwargs, ref_mask = _left_padded_causal(kind)
    upstream = torch.randn(2, 3, 5, 4)

    def grads(fn):
        for t in (q, k, v):
            t.grad = None
        out = fn()
        (out * upstream).sum().backward()
        return out.detach(), [t.grad.clone() for t in (q, k, v)]

    out, mine = grads(lambda: scaled_dot_product_attention(q, k, v, **ours_kwargs))
    ref_out, ref = grads(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=ref_mask))
    assert (out[0, :, :2] == 0).all() and close(out, ref_out)
    for name, a, b in zip("qkv", mine, ref):
        assert torch.isfinite(a).all(), f"d{name} has NaN/inf with a {kind} mask"
        assert close(a, b), f"d{name} differs from F.scaled_dot_product_attention's"


@pytest.mark.parametrize("kind", ["bool", "float", "mixed"])
def test_encoder_block_left_padding_and_causal_mask_gradients_match_torch(kind):
    """Left padding + a causal mask, in training mode: the same parameter gradients as torch (which uses SDPA)."""
    torch.manual_seed(2)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    block = TransformerEncoderBlock(8, 2, 16).load_from_torch(layer)
    x = torch.randn(2, 5, 8)
    pad = torch.tensor([[True, True, False, False, False], [False] * 5])
    float_causal = torch.zeros(5, 5).masked_fill(causal_mask(5), float("-inf"))
    float_pad = torch.zeros(2, 5).masked_fill(pad, float("-inf"))
    ref_kwargs = {"src_mask": float_causal, "src_key_padding_mask": float_pad}
    if kind == "bool":
        ours = {"key_padding_mask": pad, "causal": True}
        ref_kwargs = {"src_mask": causal_mask(5), "src_key_padding_mask": pad}
    elif kind == "float":  # everything in one additive mask, (batch, 1, L, S)
        ours = {"attn_mask": float_causal + float_pad[:, None, None, :]}
    else:
        ours = {"key_padding_mask": pad, "attn_mask": float_causal}
    y, y_ref = block(x, **ours), layer(x, **ref_kwargs)
    assert close(y, y_ref)
    upstream = torch.randn_like(y)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    for name, p in block.named_parameters():
        assert torch.isfinite(p.grad).all(), f"NaN/inf gradient in {name}"
    attn = block.self_attn
    mine_in = torch.cat([attn.q_proj.weight.grad, attn.k_proj.weight.grad, attn.v_proj.weight.grad])
    assert close(mine_in, layer.self_attn.in_proj_weight.grad)
    assert close(attn.out_proj.weight.grad, layer.self_attn.out_proj.weight.grad)
    assert close(block.ff.linear1.weight.grad, layer.linear1.weight.grad)
    assert close(block.norm2.weight.grad, layer.norm2.weight.grad)


def test_masks_must_fit_the_scores_shape_exactly():
    q3 = torch.randn(2, 4, 8)  # (batch, L, d): scores (2, 4, 4)
    for mask in (torch.zeros(3, 1, 4, 4), torch.zeros(3, 1, 4, 4, dtype=torch.bool), torch.zeros(3, 4, 4)):
        with pytest.raises(ValueError, match=r"does not fit the scores' shape \(2, 4, 4\)"):
            scaled_dot_product_attention(q3, q3, q3, attn_mask=mask)  # used to return a batch of 3
    q4 = torch.randn(2, 2, 4, 8)  # batch 2 = heads 2
    per_example = torch.zeros(2, 4, 4, dtype=torch.bool)
    per_example[0, :, 1] = True  # example 0 may not attend to key 1
    with pytest.raises(ValueError, match=r"mask.unsqueeze\(1\)"):
        scaled_dot_product_attention(q4, q4, q4, attn_mask=per_example)  # used to land on the heads
    _, w = scaled_dot_product_attention(q4, q4, q4, attn_mask=per_example.unsqueeze(1), return_weights=True)
    assert (w[0, :, :, 1] == 0).all() and (w[1, :, :, 1] > 0).all()
    for ok in (torch.zeros(4, 4), torch.zeros(1, 1, 4, 4), torch.zeros(2, 1, 1, 4), torch.zeros(1, 2, 4, 4)):
        assert scaled_dot_product_attention(q4, q4, q4, attn_mask=ok).shape == (2, 2, 4, 8)
    with pytest.raises(ValueError, match="does not fit"):
        MultiHeadAttention(8, 2)(q3, attn_mask=torch.zeros(2, 4, 4))


def test_fully_masked_rows_shape_is_always_batch_by_queries():
    pad = torch.tensor([[True, True, False], [False, False, False]])
    per_head = torch.zeros(2, 3, 4, 3, dtype=torch.bool)
    per_head[1, 2, 0] = True  # example 1, head 2, query 0 sees nothing
    cases = [  # (kwargs, expected (batch, 4) rows)
        ({}, [[False] * 4]),
        ({"causal": True}, [[False] * 4]),
        ({"attn_mask": torch.zeros(4, 3)}, [[False] * 4]),
        ({"attn_mask": torch.tensor([[True] * 3] + [[False] * 3] * 3)}, [[True, False, False, False]]),
        ({"key_padding_mask": pad}, [[False] * 4, [False] * 4]),
        ({"key_padding_mask": pad, "causal": True}, [[True, True, False, False], [False] * 4]),
        ({"attn_mask": per_head}, [[False] * 4, [True, False, False, False]]),
        ({"attn_mask": torch.full((2, 4, 3), float("-inf"))}, [[True] * 4, [True] * 4]),
    ]
    for kwargs, expected in cases:
        rows = fully_masked_rows(4, **kwargs)
        assert rows.dtype == torch.bool and rows.tolist() == expected, kwargs
        # the attention itself agrees: those rows, and only those, get all-zero weights
        if kwargs:
            q = torch.randn(len(expected), 3, 4, 5)
            k = torch.randn(len(expected), 3, 3, 5)
            _, w = scaled_dot_product_attention(q, k, k, return_weights=True, **{
                n: (m.unsqueeze(1) if n == "attn_mask" and m.dim() == 3 else m) for n, m in kwargs.items()})
            assert ((w.sum(-1) == 0).any(1) == rows).all(), kwargs
    assert fully_masked_rows(np.int64(2)).shape == (1, 2)


def test_fully_masked_rows_stays_on_the_masks_device():
    pad = torch.zeros(2, 3, dtype=torch.bool, device="meta")  # a device other than the CPU
    assert fully_masked_rows(3, key_padding_mask=pad, causal=True).device.type == "meta"
    assert fully_masked_rows(3, attn_mask=torch.zeros(3, 3, dtype=torch.bool, device="meta")).shape == (1, 3)


def test_load_from_torch_checks_layer_norm_eps():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, layer_norm_eps=1e-2).eval()
    with pytest.raises(ValueError, match="layer_norm_eps=0.01"):
        TransformerEncoderBlock(8, 2, 16).load_from_torch(layer)
    block = TransformerEncoderBlock(8, 2, 16, layer_norm_eps=1e-2).load_from_torch(layer).eval()
    x = torch.randn(2, 5, 8) * 0.05  # small activations: here eps matters
    with torch.no_grad():
        assert close(block(x), layer(x))
        assert close(block.to_torch().eval()(x), layer(x))
