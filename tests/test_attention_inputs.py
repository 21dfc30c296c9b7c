"""Bad input to ``ptcourse.attention`` gets a clear error; edge cases that make sense just work.

Each row of BAD is (what, call, exception type, words the message must contain). The
goal (issue 7, section 3): no bad input is accepted silently, and no rejection is an
internal traceback that does not say what was wrong and what is expected.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
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
    plot_attention,
    scaled_dot_product_attention,
    sinusoidal_encoding,
)

matplotlib.use("Agg")

q = torch.randn(2, 4, 8)  # (batch, L, d)
q4 = torch.randn(2, 2, 4, 8)  # (batch, heads, L, d)
x16 = torch.randn(2, 5, 16)
bool_mask = torch.zeros(2, 4, dtype=torch.bool)
mha = MultiHeadAttention(8, 2)
block = TransformerEncoderBlock(8, 2, 16, norm_first=True)
encoder = TransformerEncoder(5, 8, 2, 16, 1, max_len=6)
meta = {"device": "meta"}  # a second device that exists on every machine


def sdpa(**kwargs):
    return lambda: scaled_dot_product_attention(q, q, q, **kwargs)


BAD = [
    # ---- causal_mask / fully_masked_rows
    ("causal_mask n=0", lambda: causal_mask(0), ValueError, "n_queries must be an int >= 1"),
    ("causal_mask n=-1", lambda: causal_mask(-1), ValueError, "n_queries must be an int >= 1"),
    ("causal_mask n=2.5", lambda: causal_mask(2.5), TypeError, "n_queries must be an int"),
    ("causal_mask n='4'", lambda: causal_mask("4"), TypeError, "n_queries must be an int"),
    ("causal_mask n=True", lambda: causal_mask(True), TypeError, "n_queries must be an int"),
    ("causal_mask n_keys=0", lambda: causal_mask(3, 0), ValueError, "n_keys must be an int >= 1"),
    ("fully_masked_rows n=0", lambda: fully_masked_rows(0), ValueError, "n_queries"),
    ("fully_masked_rows list mask", lambda: fully_masked_rows(3, key_padding_mask=[[True] * 3]), TypeError, "bool tensor"),
    ("fully_masked_rows float padding", lambda: fully_masked_rows(3, key_padding_mask=torch.zeros(2, 3)), TypeError, "bool tensor"),
    ("fully_masked_rows 1-d padding", lambda: fully_masked_rows(3, key_padding_mask=torch.zeros(3, dtype=torch.bool)), ValueError, "(batch, key_length)"),
    ("fully_masked_rows wrong L", lambda: fully_masked_rows(3, attn_mask=torch.zeros(4, 4)), ValueError, "does not fit"),
    ("fully_masked_rows S disagree", lambda: fully_masked_rows(3, key_padding_mask=torch.zeros(2, 3, dtype=torch.bool), attn_mask=torch.zeros(3, 4)), ValueError, "does not fit"),
    ("fully_masked_rows NaN mask", lambda: fully_masked_rows(2, attn_mask=torch.tensor([[0.0, math.nan]] * 2)), ValueError, "NaN or +inf"),
    # ---- scaled_dot_product_attention: q, k, v
    ("sdpa list q", lambda: scaled_dot_product_attention(q.tolist(), q, q), TypeError, "torch.Tensor"),
    ("sdpa int q", lambda: scaled_dot_product_attention(q.long(), q, q), TypeError, "floating-point"),
    ("sdpa 1-d q", lambda: scaled_dot_product_attention(q[0, 0], q[0, 0], q[0, 0]), ValueError, "at least 2 dims"),
    ("sdpa d_k differs", lambda: scaled_dot_product_attention(q, torch.randn(2, 4, 6), torch.randn(2, 4, 6)), ValueError, "same feature size"),
    ("sdpa d_k = 0", lambda: scaled_dot_product_attention(*(torch.randn(2, 4, 0),) * 3), ValueError, "d_k >= 1"),
    ("sdpa S differs", lambda: scaled_dot_product_attention(q, q, torch.randn(2, 5, 8)), ValueError, "same number of positions"),
    ("sdpa batch differs", lambda: scaled_dot_product_attention(q, torch.randn(3, 4, 8), torch.randn(3, 4, 8)), ValueError, "leading"),
    ("sdpa dtypes differ", lambda: scaled_dot_product_attention(q, q.double(), q.double()), ValueError, "same dtype and device"),
    ("sdpa devices differ", lambda: scaled_dot_product_attention(q, q.to(**meta), q.to(**meta)), ValueError, "same dtype and device"),
    ("sdpa dropout 1.5", sdpa(dropout_p=1.5), ValueError, "dropout_p must be in [0, 1)"),
    ("sdpa dropout 1.0", sdpa(dropout_p=1.0), ValueError, "dropout_p must be in [0, 1)"),
    ("sdpa dropout NaN", sdpa(dropout_p=math.nan), ValueError, "dropout_p must be in [0, 1)"),
    ("sdpa dropout '0.1'", sdpa(dropout_p="0.1"), TypeError, "dropout_p must be a number"),
    # ---- masks
    ("padding mask float", sdpa(key_padding_mask=torch.zeros(2, 4)), TypeError, "bool tensor"),
    ("padding mask wrong S", sdpa(key_padding_mask=torch.zeros(2, 5, dtype=torch.bool)), ValueError, "(batch, key_length) = (2, 4)"),
    ("padding mask wrong batch", sdpa(key_padding_mask=torch.zeros(1, 4, dtype=torch.bool)), ValueError, "(batch, key_length) = (2, 4)"),
    ("padding mask unbatched", lambda: scaled_dot_product_attention(q[0], q[0], q[0], key_padding_mask=bool_mask[0]), ValueError, "batched"),
    ("padding mask other device", sdpa(key_padding_mask=bool_mask.to(**meta)), ValueError, "key_padding_mask is on meta"),
    ("attn_mask list", sdpa(attn_mask=[[0.0] * 4] * 4), TypeError, "attn_mask must be a tensor"),
    ("attn_mask long", sdpa(attn_mask=torch.zeros(4, 4, dtype=torch.long)), TypeError, "bool (True = not allowed) or float"),
    ("attn_mask wrong L", sdpa(attn_mask=torch.zeros(3, 4, dtype=torch.bool)), ValueError, "does not fit"),
    ("attn_mask batch 3 on 2", sdpa(attn_mask=torch.zeros(3, 1, 4, 4)), ValueError, "does not fit"),
    ("attn_mask 1-d", sdpa(attn_mask=torch.zeros(4)), ValueError, "does not fit"),
    ("attn_mask (B,L,S) on heads", lambda: scaled_dot_product_attention(q4, q4, q4, attn_mask=torch.zeros(2, 4, 4)), ValueError, "unsqueeze(1)"),
    ("attn_mask NaN", sdpa(attn_mask=torch.full((4, 4), math.nan)), ValueError, "NaN or +inf"),
    ("attn_mask +inf", sdpa(attn_mask=torch.full((4, 4), math.inf)), ValueError, "NaN or +inf"),
    ("attn_mask other device", sdpa(attn_mask=torch.zeros(4, 4, dtype=torch.bool, **meta)), ValueError, "attn_mask is on meta"),
    # ---- MultiHeadAttention
    ("MHA heads do not divide", lambda: MultiHeadAttention(10, 3), ValueError, "divide d_model"),
    ("MHA d_model=0", lambda: MultiHeadAttention(0, 1), ValueError, "d_model must be an int >= 1"),
    ("MHA d_model=8.0", lambda: MultiHeadAttention(8.0, 2), TypeError, "d_model must be an int"),
    ("MHA n_heads=-2", lambda: MultiHeadAttention(8, -2), ValueError, "n_heads must be an int >= 1"),
    ("MHA dropout=1.5", lambda: MultiHeadAttention(8, 2, dropout=1.5), ValueError, "dropout must be in [0, 1)"),
    ("MHA dropout=NaN", lambda: MultiHeadAttention(8, 2, dropout=math.nan), ValueError, "dropout must be in [0, 1)"),
    ("MHA wrong width", lambda: mha(torch.randn(2, 4, 6)), ValueError, "d_model=8"),
    ("MHA 2-d input", lambda: mha(torch.randn(4, 8)), ValueError, "(batch, length, d_model=8)"),
    ("MHA int input", lambda: mha(torch.zeros(2, 4, 8, dtype=torch.long)), TypeError, "floating-point"),
    ("MHA batch differs", lambda: mha(q, torch.randn(3, 4, 8)), ValueError, "batch size"),
    ("MHA kv lengths differ", lambda: mha(q, q, torch.randn(2, 5, 8)), ValueError, "length"),
    ("MHA per-example mask 3-d", lambda: mha(q, attn_mask=torch.zeros(2, 4, 4, dtype=torch.bool)), ValueError, "unsqueeze(1)"),
    ("split_heads wrong width", lambda: mha.split_heads(torch.randn(2, 4, 6)), ValueError, "d_model=8"),
    ("merge_heads wrong heads", lambda: mha.merge_heads(torch.randn(2, 4, 4, 2)), ValueError, "n_heads=2"),
    ("MHA load wrong sizes", lambda: mha.load_from_torch(nn.MultiheadAttention(8, 4, batch_first=True)), ValueError, "size mismatch"),
    ("MHA load a Linear", lambda: mha.load_from_torch(nn.Linear(8, 8)), TypeError, "nn.MultiheadAttention"),
    ("MHA load kdim", lambda: mha.load_from_torch(nn.MultiheadAttention(8, 2, kdim=4, vdim=4)), ValueError, "kdim"),
    ("MHA load add_bias_kv", lambda: mha.load_from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True)), ValueError, "add_bias_kv"),
    ("MHA load add_zero_attn", lambda: mha.load_from_torch(nn.MultiheadAttention(8, 2, add_zero_attn=True)), ValueError, "add_zero_attn"),
    # ---- positional encodings
    ("sinusoidal n=0", lambda: sinusoidal_encoding(0, 8), ValueError, "n_positions must be an int >= 1"),
    ("sinusoidal n=2.5", lambda: sinusoidal_encoding(2.5, 8), TypeError, "n_positions must be an int"),
    ("sinusoidal d=-4", lambda: sinusoidal_encoding(5, -4), ValueError, "d_model must be an int >= 1"),
    ("sinusoidal base NaN", lambda: sinusoidal_encoding(5, 8, base=math.nan), ValueError, "base must be a finite number > 1"),
    ("sinusoidal base 0", lambda: sinusoidal_encoding(5, 8, base=0.0), ValueError, "base must be a finite number > 1"),
    ("sinusoidal module max_len=0", lambda: SinusoidalPositionalEncoding(8, max_len=0), ValueError, "max_len must be an int >= 1"),
    ("sinusoidal module dropout NaN", lambda: SinusoidalPositionalEncoding(8, dropout=math.nan), ValueError, "dropout"),
    ("sinusoidal too long", lambda: SinusoidalPositionalEncoding(8, max_len=3)(torch.randn(1, 4, 8)), ValueError, "exceeds max_len=3"),
    ("sinusoidal wrong width", lambda: SinusoidalPositionalEncoding(8)(torch.randn(1, 4, 6)), ValueError, "d_model=8"),
    ("sinusoidal token ids", lambda: SinusoidalPositionalEncoding(8)(torch.zeros(1, 4, 8, dtype=torch.long)), TypeError, "embed the token ids"),
    ("learned max_len=-1", lambda: LearnedPositionalEncoding(8, max_len=-1), ValueError, "max_len must be an int >= 1"),
    ("learned d_model='8'", lambda: LearnedPositionalEncoding("8"), TypeError, "d_model must be an int"),
    ("learned too long", lambda: LearnedPositionalEncoding(8, max_len=3)(torch.randn(1, 4, 8)), ValueError, "exceeds max_len=3"),
    # ---- feed-forward, block, encoder
    ("FFN activation tanh", lambda: FeedForward(8, 16, activation="tanh"), ValueError, "activation must be one of"),
    ("FFN activation list", lambda: FeedForward(8, 16, activation=["relu"]), ValueError, "activation must be one of"),
    ("FFN d_ff=0", lambda: FeedForward(8, 0), ValueError, "d_ff must be an int >= 1"),
    ("FFN dropout=-0.1", lambda: FeedForward(8, 16, dropout=-0.1), ValueError, "dropout must be in [0, 1)"),
    ("FFN wrong width", lambda: FeedForward(8, 16)(torch.randn(3, 6)), ValueError, "d_model=8"),
    ("block eps=0", lambda: TransformerEncoderBlock(8, 2, 16, layer_norm_eps=0.0), ValueError, "layer_norm_eps"),
    ("block eps=NaN", lambda: TransformerEncoderBlock(8, 2, 16, layer_norm_eps=math.nan), ValueError, "layer_norm_eps"),
    ("block load norm_first", lambda: block.load_from_torch(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)), ValueError, "norm_first"),
    ("block load activation", lambda: block.load_from_torch(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=True, activation="gelu")), ValueError, "activation"),
    ("block load d_ff", lambda: block.load_from_torch(nn.TransformerEncoderLayer(8, 2, 32, batch_first=True, norm_first=True)), ValueError, "d_ff differs"),
    ("block load eps", lambda: block.load_from_torch(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=True, layer_norm_eps=1e-6)), ValueError, "layer_norm_eps=1e-06"),
    ("block load heads", lambda: block.load_from_torch(nn.TransformerEncoderLayer(8, 4, 16, batch_first=True, norm_first=True)), ValueError, "size mismatch"),
    ("block load a Linear", lambda: block.load_from_torch(nn.Linear(8, 8)), TypeError, "nn.TransformerEncoderLayer"),
    ("block wrong width", lambda: block(torch.randn(2, 5, 6)), ValueError, "d_model=8"),
    ("encoder positional rotary", lambda: TransformerEncoder(5, 8, 2, 16, 1, positional="rotary"), ValueError, "positional"),
    ("encoder vocab 0", lambda: TransformerEncoder(0, 8, 2, 16, 1), ValueError, "vocab_size must be an int >= 1"),
    ("encoder n_layers -1", lambda: TransformerEncoder(5, 8, 2, 16, -1), ValueError, "n_layers must be an int >= 0"),
    ("encoder n_layers 2.0", lambda: TransformerEncoder(5, 8, 2, 16, 2.0), TypeError, "n_layers must be an int"),
    ("encoder n_outputs 0", lambda: TransformerEncoder(5, 8, 2, 16, 1, n_outputs=0), ValueError, "n_outputs must be an int >= 1"),
    ("encoder padding_idx 5", lambda: TransformerEncoder(5, 8, 2, 16, 1, padding_idx=5), ValueError, "padding_idx"),
    ("encoder max_len 0", lambda: TransformerEncoder(5, 8, 2, 16, 1, max_len=0), ValueError, "max_len must be an int >= 1"),
    ("encoder dropout 2", lambda: TransformerEncoder(5, 8, 2, 16, 1, dropout=2.0), ValueError, "dropout must be in [0, 1)"),
    ("encoder float tokens", lambda: encoder(torch.randn(2, 3)), ValueError, "integer tensor"),
    ("encoder bool tokens", lambda: encoder(torch.ones(2, 3, dtype=torch.bool)), ValueError, "integer tensor"),
    ("encoder 1-d tokens", lambda: encoder(torch.tensor([1, 2])), ValueError, "(batch, length)"),
    ("encoder token id 5", lambda: encoder(torch.tensor([[1, 5]])), ValueError, "[0, vocab_size=5)"),
    ("encoder token id -1", lambda: encoder(torch.tensor([[-1, 2]])), ValueError, "[0, vocab_size=5)"),
    ("encoder too long", lambda: encoder(torch.zeros(1, 7, dtype=torch.long)), ValueError, "exceeds max_len=6"),
    ("encoder padding mask shape", lambda: encoder(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool)), ValueError, "(batch, key_length) = (2, 3)"),
    # ---- plot_attention
    ("plot 3-d", lambda: plot_attention(torch.rand(2, 3, 3)), ValueError, "2-D"),
    ("plot empty", lambda: plot_attention(torch.rand(0, 3)), ValueError, "non-empty"),
    ("plot a string", lambda: plot_attention("weights"), TypeError, "tensor or array"),
    ("plot label count", lambda: plot_attention(torch.rand(3, 4), ["a", "b"], list("abcd")), ValueError, "query_labels has 2 labels for 3 querys"),
    ("plot key label count", lambda: plot_attention(torch.rand(3, 4), list("abc"), list("abc")), ValueError, "key_labels has 3 labels for 4 keys"),
]


@pytest.mark.parametrize("what,call,error,words", BAD, ids=[row[0] for row in BAD])
def test_bad_input_gets_a_clear_error(what, call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value), f"{what}: the message {str(info.value)!r} should mention {words!r}"


def test_numpy_numbers_are_accepted_like_python_ones():
    i = np.int64
    assert causal_mask(i(3), i(4)).shape == (3, 4)
    assert sinusoidal_encoding(i(5), i(6), base=np.float32(100.0)).shape == (5, 6)
    assert MultiHeadAttention(i(8), i(2), dropout=np.float64(0.1)).n_heads == 2
    model = TransformerEncoder(i(5), i(8), i(2), i(16), i(1), max_len=i(6), n_outputs=i(3), padding_idx=i(0))
    assert model(torch.tensor([[0, 4]])).shape == (1, 2, 3)
    assert scaled_dot_product_attention(q, q, q, dropout_p=np.float32(0.0)).shape == q.shape


def test_edge_cases_that_make_sense_work():
    # an empty batch and a single position
    assert scaled_dot_product_attention(*(torch.randn(0, 4, 8),) * 3).shape == (0, 4, 8)
    k = torch.randn(2, 3, 4)
    assert scaled_dot_product_attention(torch.randn(2, 0, 4), k, k, causal=True).shape == (2, 0, 4)  # no queries
    assert MultiHeadAttention(8, 2)(torch.randn(3, 1, 8))[0].shape == (3, 1, 8)
    # an encoder with no blocks is embedding + read-out: a per-position model
    assert TransformerEncoder(5, 8, 2, 16, 0, n_outputs=5)(torch.tensor([[1, 2, 3]])).shape == (1, 3, 5)
    # a float mask may hold -inf and any finite number, including very negative ones
    w = scaled_dot_product_attention(q, q, q, attn_mask=torch.full((4, 4), -1e30), return_weights=True)[1]
    assert torch.allclose(w.sum(-1), torch.ones(2, 4))
    # numpy weights and NaN rows (as nn.MultiheadAttention returns them) can be plotted
    nan_rows = np.full((3, 3), np.nan)
    nan_rows[1:] = 1 / 3
    ax = plot_attention(nan_rows, list("abc"), list("abc"), colorbar=False)
    assert ax.get_images()[0].get_clim() == (0.0, pytest.approx(1 / 3))
    matplotlib.pyplot.close("all")
