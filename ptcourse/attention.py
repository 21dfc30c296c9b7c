"""Self-attention and the Transformer encoder, written from scratch (chapters 04 and 05).

Every module here is checked in ``tests/test_attention.py`` to agree with its PyTorch
counterpart (``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``,
``nn.TransformerEncoderLayer``) to ``atol=1e-5`` in float32.

Usage::

    from ptcourse.attention import MultiHeadAttention, TransformerEncoder
    mha = MultiHeadAttention(d_model=64, n_heads=4)
    out, weights = mha(x, key_padding_mask=pad)        # x: (B, L, 64), pad: (B, L) bool

Mask conventions (the same everywhere in this module)
-----------------------------------------------------
* ``key_padding_mask``: bool tensor of shape ``(B, S)``; ``True`` marks a padding key that
  no query may attend to. This is the convention of ``nn.MultiheadAttention``.
* ``attn_mask``: either a bool tensor, ``True`` = *not allowed* (again as in
  ``nn.MultiheadAttention``), or a float tensor that is *added* to the scores (use
  ``-inf`` to forbid a pair; NaN and ``+inf`` are rejected). Its shape is either ``(L, S)``,
  shared by every example and head, or has as many dims as the scores, each equal to the
  scores' size or 1: ``(B, 1, L, S)`` per example, ``(B, H, L, S)`` per head. (A ``(B, L, S)``
  mask on ``(B, H, L, S)`` scores is an error, not a mask silently broadcast onto the heads.)
  Careful: ``torch.nn.functional.scaled_dot_product_attention`` uses the *opposite* bool
  convention (``True`` = may attend); pass ``~mask`` when you call it with our masks.
* ``causal=True``: query ``i`` may only attend to keys ``j <= i`` (aligned at the top left
  when L != S, like ``F.scaled_dot_product_attention(..., is_causal=True)``).
* A query whose keys are *all* masked has nothing to attend to. Softmax over an all
  ``-inf`` row is ``0/0 = NaN``; here such a row gets all-zero weights, an all-zero
  output and finite (zero) gradients instead, with bool and float masks alike — the same
  as ``F.scaled_dot_product_attention``; ``nn.MultiheadAttention`` returns NaN. Use
  :func:`fully_masked_rows` to find such rows if they are a bug for you.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "fully_masked_rows",
    "MultiHeadAttention",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
    "sinusoidal_encoding",
    "FeedForward",
    "TransformerEncoderBlock",
    "TransformerEncoder",
    "plot_attention",
]


# --------------------------------------------------------------------------- checks
def _int(value: object, name: str, minimum: int = 1) -> int:
    """``value`` as an int (numpy integers too) that is at least ``minimum``, else a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _probability(value: object, name: str) -> float:
    """A dropout probability: a real number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r} ({type(value).__name__})")
    if not 0.0 <= value < 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1) (the probability of dropping a value), got {value}")
    return float(value)


def _shape(x: object) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else f"a {type(x).__name__}"


def _check_tensor(name: str, x: object, ndim_min: int) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < ndim_min:
        raise ValueError(
            f"{name} must have at least {ndim_min} dims (..., length, features), "
            f"got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _check_sequence(name: str, x: object, d_model: int) -> Tensor:
    """A float tensor of shape (batch, length, d_model)."""
    _check_tensor(name, x, 0)
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape (batch, length, d_model={d_model}), got {_shape(x)}")
    return x


def _check_same_device(name: str, mask: Tensor, scores: Tensor) -> None:
    if mask.device != scores.device:
        raise ValueError(
            f"{name} is on {mask.device} but q, k, v are on {scores.device}; "
            f"move it with {name}.to({str(scores.device)!r})"
        )


# --------------------------------------------------------------------------- masks
def causal_mask(n_queries: int, n_keys: int | None = None, device=None) -> Tensor:
    """Bool ``(L, S)`` mask, ``True`` above the diagonal (= the future, not allowed) (chapter 04).

    Usage: ``causal_mask(4)`` -> 4x4 bool tensor, ``True`` where key index > query index.
    """
    n_queries = _int(n_queries, "n_queries")
    n_keys = n_queries if n_keys is None else _int(n_keys, "n_keys")
    return torch.ones(n_queries, n_keys, dtype=torch.bool, device=device).triu(diagonal=1)


def _padding_blocked(key_padding_mask: object, scores: Tensor) -> Tensor:
    """Check a (B, S) bool key_padding_mask and view it as (B, 1, ..., 1, S) to broadcast over scores."""
    *lead, _, S = scores.shape
    if not isinstance(key_padding_mask, Tensor) or key_padding_mask.dtype != torch.bool:
        got = key_padding_mask.dtype if isinstance(key_padding_mask, Tensor) else type(key_padding_mask).__name__
        raise TypeError(f"key_padding_mask must be a bool tensor (True = padding, ignored), got {got}")
    if not lead:
        raise ValueError(
            "key_padding_mask needs batched inputs q, k, v of shape (batch, ..., length, "
            f"features); got unbatched scores of shape {tuple(scores.shape)}"
        )
    if tuple(key_padding_mask.shape) != (lead[0], S):
        raise ValueError(
            f"key_padding_mask must have shape (batch, key_length) = ({lead[0]}, {S}), "
            f"got {tuple(key_padding_mask.shape)}"
        )
    _check_same_device("key_padding_mask", key_padding_mask, scores)
    return key_padding_mask.view((lead[0],) + (1,) * (len(lead) - 1) + (1, S))


def _check_attn_mask(attn_mask: object, scores: Tensor) -> Tensor:
    """An attn_mask must be (L, S), or have the scores' number of dims with each size equal or 1."""
    if not isinstance(attn_mask, Tensor):
        raise TypeError(f"attn_mask must be a tensor, got {type(attn_mask).__name__}")
    shape, want = tuple(attn_mask.shape), tuple(scores.shape)
    if attn_mask.dtype != torch.bool and not attn_mask.is_floating_point():
        raise TypeError(
            f"attn_mask must be bool (True = not allowed) or float (added to the "
            f"scores), got dtype {attn_mask.dtype}"
        )
    fits = len(shape) in (2, len(want)) and all(m in (1, s) for m, s in zip(shape[::-1], want[::-1]))
    if not fits:
        example = " (a per-example mask as (batch, 1, L, S): mask.unsqueeze(1))" if len(want) == 4 else ""
        raise ValueError(
            f"attn_mask of shape {shape} does not fit the scores' shape {want} (..., query_length, "
            f"key_length): give it shape {want[-2:]} to share it, or {len(want)} dims, each equal "
            f"to the scores' or 1{example}"
        )
    _check_same_device("attn_mask", attn_mask, scores)
    if attn_mask.is_floating_point() and not bool((attn_mask < math.inf).all()):
        raise ValueError("a float attn_mask may hold -inf (forbidden) and finite numbers, but not NaN or +inf")
    return attn_mask


def _combined_mask(
    scores: Tensor,
    key_padding_mask: Tensor | None,
    causal: bool,
    attn_mask: Tensor | None,
) -> tuple[Tensor | None, Tensor | None]:
    """Return (bool mask ``True`` = not allowed, float mask to add), both broadcastable to scores."""
    L, S = scores.shape[-2:]
    blocked: Tensor | None = None
    additive: Tensor | None = None
    if key_padding_mask is not None:
        blocked = _padding_blocked(key_padding_mask, scores)
    if causal:
        c = torch.ones(L, S, dtype=torch.bool, device=scores.device).triu(diagonal=1)  # = causal_mask(L, S)
        blocked = c if blocked is None else blocked | c
    if attn_mask is not None:
        _check_attn_mask(attn_mask, scores)
        if attn_mask.dtype == torch.bool:
            blocked = attn_mask if blocked is None else blocked | attn_mask
        else:
            additive = attn_mask.to(scores.dtype)
    return blocked, additive


def _masked_scores(scores: Tensor, key_padding_mask, causal, attn_mask) -> Tensor:
    """The scores with every mask applied: forbidden pairs are ``-inf``."""
    blocked, additive = _combined_mask(scores, key_padding_mask, causal, attn_mask)
    if additive is not None:
        scores = scores + additive
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    return scores


def _scores_shape_for(n_queries: int, key_padding_mask: object, attn_mask: object) -> tuple[int, ...]:
    """The scores' shape (batch, [heads,] L, S) the masks describe: the one they must fit."""
    is_mask = lambda m: isinstance(m, Tensor) and m.dim() >= 1  # noqa: E731
    n_keys, batch, heads = 1, 1, ()
    if is_mask(attn_mask):
        n_keys = attn_mask.shape[-1]
        if attn_mask.dim() in (3, 4):
            batch, heads = attn_mask.shape[0], tuple(attn_mask.shape[1:-2])
    if is_mask(key_padding_mask):
        batch, n_keys = key_padding_mask.shape[0], key_padding_mask.shape[-1]
    return (batch, *heads, n_queries, n_keys)


def fully_masked_rows(
    n_queries: int,
    key_padding_mask: Tensor | None = None,
    causal: bool = False,
    attn_mask: Tensor | None = None,
) -> Tensor:
    """Bool tensor of shape ``(batch, n_queries)``, ``True`` for each query that may attend to no key (chapter 04).

    Always two dims: ``batch`` is the masks' batch size (the first dim of
    ``key_padding_mask``, or of a 3- or 4-dim ``attn_mask``), or 1 when no mask varies
    with the example. The result is on the masks' device. With a per-head ``attn_mask``
    of shape (batch, heads, L, S), a query counts when it is fully masked in any head.
    The masks are checked exactly as :func:`scaled_dot_product_attention` checks them.

    Usage: ``fully_masked_rows(5, key_padding_mask=pad, causal=True).any()``
    """
    n_queries = _int(n_queries, "n_queries")
    if key_padding_mask is None and attn_mask is None:  # causal alone: key 0 is visible to every query
        return torch.zeros(1, n_queries, dtype=torch.bool)
    device = next((m.device for m in (key_padding_mask, attn_mask) if isinstance(m, Tensor)), None)
    scores = torch.zeros(_scores_shape_for(n_queries, key_padding_mask, attn_mask), device=device)
    empty = torch.isneginf(_masked_scores(scores, key_padding_mask, causal, attn_mask)).all(dim=-1)
    return empty.any(dim=1) if empty.dim() == 3 else empty


# --------------------------------------------------------------------------- attention
def _check_qkv(q: object, k: object, v: object) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check_tensor(name, t, 2)
    if q.shape[-1] != k.shape[-1] or q.shape[-1] == 0:
        raise ValueError(
            f"q and k must have the same feature size d_k >= 1, got q {tuple(q.shape)} and "
            f"k {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of positions S, got k {tuple(k.shape)} "
            f"and v {tuple(v.shape)}"
        )
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(
            "q, k and v must have the same leading (batch, head) dims, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if not q.dtype == k.dtype == v.dtype or not q.device == k.device == v.device:
        raise ValueError(
            "q, k and v must have the same dtype and device, got "
            f"{q.dtype}/{q.device}, {k.dtype}/{k.device}, {v.dtype}/{v.device}"
        )


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    key_padding_mask: Tensor | None = None,
    causal: bool = False,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    return_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V (chapter 04).

    Shapes: ``q`` (..., L, d_k), ``k`` (..., S, d_k), ``v`` (..., S, d_v) with the same
    leading dims (e.g. (B, L, d) or (B, H, L, d)); returns (..., L, d_v), and with
    ``return_weights=True`` also the weights (..., L, S), whose rows sum to 1 (0 for a
    fully masked row). ``dropout_p`` drops weights at random (pass 0 in evaluation);
    the returned weights are those *before* dropout. Masks: see the module docstring.

    Usage: ``out, w = scaled_dot_product_attention(q, k, v, causal=True, return_weights=True)``
    """
    _check_qkv(q, k, v)
    dropout_p = _probability(dropout_p, "dropout_p")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, S)
    if key_padding_mask is None and attn_mask is None and not causal:
        weights = torch.softmax(scores, dim=-1)
    else:
        scores = _masked_scores(scores, key_padding_mask, causal, attn_mask)
        # A row that is -inf everywhere has no key to attend to: softmax would give 0/0 = NaN,
        # in the output and in the gradients. Give it finite scores, then zero weights.
        empty = torch.isneginf(scores).all(dim=-1, keepdim=True)
        weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    out = dropped @ v
    return (out, weights) if return_weights else out


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention, batch first: heads attend in parallel in d_model/n_heads dims (chapter 04).

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V).

    ``forward`` returns ``(output, weights)``: output (B, L, d_model); weights (B, L, S)
    averaged over heads (``average_weights=True``, like ``nn.MultiheadAttention``) or
    (B, n_heads, L, S) per head; ``None`` when ``need_weights=False``. The weights are
    those before dropout. ``attn_mask`` is (L, S), or (B, 1, L, S) per example, or
    (B, n_heads, L, S) per head. :meth:`load_from_torch` / :meth:`to_torch` copy the weights
    from / to an ``nn.MultiheadAttention(d_model, n_heads, batch_first=True)``.

    Usage: ``out, w = MultiHeadAttention(64, 4)(x, key_padding_mask=pad)``
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        d_model, n_heads = _int(d_model, "d_model"), _int(n_heads, "n_heads")
        dropout = _probability(dropout, "dropout")
        if d_model % n_heads != 0:
            raise ValueError(
                f"n_heads must divide d_model (each head gets d_model / n_heads dims), "
                f"got d_model={d_model}, n_heads={n_heads}"
            )
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # the same initialisation as nn.MultiheadAttention
        in_proj = torch.empty(3 * self.d_model, self.d_model)
        nn.init.xavier_uniform_(in_proj)
        with torch.no_grad():
            for lin, w in zip((self.q_proj, self.k_proj, self.v_proj), in_proj.chunk(3)):
                lin.weight.copy_(w)
                if lin.bias is not None:
                    lin.bias.zero_()
            if self.out_proj.bias is not None:
                self.out_proj.bias.zero_()

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, L, d_model) -> (B, n_heads, L, d_head)."""
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"split_heads expects (batch, length, d_model={self.d_model}), got {_shape(x)}")
        B, L, _ = x.shape
        return x.view(B, L, self.n_heads, self.d_head).transpose(1, 2)

    def merge_heads(self, x: Tensor) -> Tensor:
        """(B, n_heads, L, d_head) -> (B, L, d_model)."""
        if not isinstance(x, Tensor) or x.dim() != 4 or (x.shape[1], x.shape[3]) != (self.n_heads, self.d_head):
            raise ValueError(
                f"merge_heads expects (batch, n_heads={self.n_heads}, length, d_head={self.d_head}), got {_shape(x)}"
            )
        B, _, L, _ = x.shape
        return x.transpose(1, 2).reshape(B, L, self.d_model)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        causal: bool = False,
        attn_mask: Tensor | None = None,
        need_weights: bool = True,
        average_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        key = query if key is None else key
        value = key if value is None else value
        for name, t in (("query", query), ("key", key), ("value", value)):
            _check_sequence(name, t, self.d_model)
        if key.shape[:2] != value.shape[:2] or query.shape[0] != key.shape[0]:
            raise ValueError(
                "query, key and value must share the batch size, and key and value the "
                f"length; got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        q = self.split_heads(self.q_proj(query))
        k = self.split_heads(self.k_proj(key))
        v = self.split_heads(self.v_proj(value))
        out, weights = scaled_dot_product_attention(
            q, k, v,
            key_padding_mask=key_padding_mask, causal=causal, attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0, return_weights=True,
        )
        out = self.out_proj(self.merge_heads(out))
        if not need_weights:
            return out, None
        return out, weights.mean(dim=1) if average_weights else weights

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of an ``nn.MultiheadAttention`` into this module (returns self).

        Usage: ``mine.load_from_torch(nn.MultiheadAttention(64, 4, batch_first=True))``
        """
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"expected nn.MultiheadAttention, got {type(mha).__name__}")
        if mha.embed_dim != self.d_model or mha.num_heads != self.n_heads:
            raise ValueError(
                f"size mismatch: this module has d_model={self.d_model}, n_heads={self.n_heads}; "
                f"the torch one has embed_dim={mha.embed_dim}, num_heads={mha.num_heads}"
            )
        if not mha._qkv_same_embed_dim or (mha.in_proj_bias is None) != (self.q_proj.bias is None):
            raise ValueError("only nn.MultiheadAttention with kdim = vdim = embed_dim and the same bias setting is supported")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("nn.MultiheadAttention with add_bias_kv or add_zero_attn computes something else; not supported")
        for lin, w in zip((self.q_proj, self.k_proj, self.v_proj), mha.in_proj_weight.chunk(3)):
            lin.weight.copy_(w)
        if mha.in_proj_bias is not None:
            for lin, b in zip((self.q_proj, self.k_proj, self.v_proj), mha.in_proj_bias.chunk(3)):
                lin.bias.copy_(b)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if mha.out_proj.bias is not None:
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self

    @torch.no_grad()
    def to_torch(self) -> nn.MultiheadAttention:
        """A new ``nn.MultiheadAttention(batch_first=True)`` holding a copy of these weights.

        Usage: ``ref = mine.to_torch().eval()``
        """
        bias = self.q_proj.bias is not None
        mha = nn.MultiheadAttention(
            self.d_model, self.n_heads, dropout=self.dropout, bias=bias, batch_first=True
        ).to(self.q_proj.weight.device, self.q_proj.weight.dtype)
        mha.in_proj_weight.copy_(torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight]))
        mha.out_proj.weight.copy_(self.out_proj.weight)
        if bias:
            mha.in_proj_bias.copy_(torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]))
            mha.out_proj.bias.copy_(self.out_proj.bias)
        return mha


# --------------------------------------------------------------------------- positions
def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10_000.0) -> Tensor:
    r"""The (n_positions, d_model) table PE[pos, 2i] = sin(pos / base^{2i/d}), PE[pos, 2i+1] = cos(...) (chapter 05).

    Usage: ``pe = sinusoidal_encoding(50, 16)``
    """
    n_positions, d_model = _int(n_positions, "n_positions"), _int(d_model, "d_model")
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or not 1.0 < base < math.inf:
        raise ValueError(f"base must be a finite number > 1 (the longest wavelength is 2*pi*base), got {base!r}")
    pos = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1)  # (P, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)  # 0, 2, 4, ...
    angle = pos / base ** (two_i / d_model)  # (P, ceil(d/2))
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe


def _check_positions(x: Tensor, d_model: int, max_len: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(f"expected input of shape (batch, length, d_model={d_model}), got {_shape(x)}")
    if not x.is_floating_point():
        raise TypeError(f"expected float embeddings, got dtype {x.dtype} (embed the token ids first)")
    if x.shape[1] > max_len:
        raise ValueError(f"sequence length {x.shape[1]} exceeds max_len={max_len}; build the encoding with a larger max_len")


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table to (B, L, d_model) inputs: x + PE[:L] (no parameters) (chapter 05).

    Usage: ``x = SinusoidalPositionalEncoding(64, max_len=512)(token_embeddings)``
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0):
        super().__init__()
        self.d_model, self.max_len = _int(d_model, "d_model"), _int(max_len, "max_len")
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(_probability(dropout, "dropout"))

    def forward(self, x: Tensor) -> Tensor:
        _check_positions(x, self.d_model, self.max_len)
        return self.dropout(x + self.pe[: x.shape[1]].to(x.dtype))


class LearnedPositionalEncoding(nn.Module):
    """Adds a trained (max_len, d_model) table of position vectors: x + P[:L] (chapter 05).

    Usage: ``x = LearnedPositionalEncoding(64, max_len=128)(token_embeddings)``
    """

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0):
        super().__init__()
        self.d_model, self.max_len = _int(d_model, "d_model"), _int(max_len, "max_len")
        self.pe = nn.Parameter(torch.randn(self.max_len, self.d_model) * 0.02)
        self.dropout = nn.Dropout(_probability(dropout, "dropout"))

    def forward(self, x: Tensor) -> Tensor:
        _check_positions(x, self.d_model, self.max_len)
        return self.dropout(x + self.pe[: x.shape[1]])


# --------------------------------------------------------------------------- encoder
_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class FeedForward(nn.Module):
    r"""Position-wise feed-forward network FFN(x) = W_2 act(W_1 x + b_1) + b_2, applied to each position (chapter 05).

    Usage: ``FeedForward(64, 256)(x)``  # x: (..., 64)
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        if not isinstance(activation, str) or activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.linear1 = nn.Linear(_int(d_model, "d_model"), _int(d_ff, "d_ff"))
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(_probability(dropout, "dropout"))

    def forward(self, x: Tensor) -> Tensor:
        _check_tensor("x", x, 1)
        if x.shape[-1] != self.linear1.in_features:
            raise ValueError(f"expected input of shape (..., d_model={self.linear1.in_features}), got {_shape(x)}")
        return self.linear2(self.dropout(_ACTIVATIONS[self.activation](self.linear1(x))))


class TransformerEncoderBlock(nn.Module):
    r"""One encoder block: self-attention and feed-forward sublayers, each with a residual (chapter 05).

    post-LN (``norm_first=False``, the 2017 paper):
        h = LN_1(x + MHA(x)),      y = LN_2(h + FFN(h))
    pre-LN (``norm_first=True``):
        h = x + MHA(LN_1(x)),      y = h + FFN(LN_2(h))

    Same computation (and parameter names, after :meth:`load_from_torch`) as
    ``nn.TransformerEncoderLayer(..., batch_first=True)``. ``forward`` returns the
    output (B, L, d_model), and with ``return_weights=True`` also the per-head
    attention weights (B, n_heads, L, L).

    Usage: ``y = TransformerEncoderBlock(64, 4, 256, norm_first=True)(x, key_padding_mask=pad)``
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        activation: Literal["relu", "gelu"] = "relu",
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        if isinstance(layer_norm_eps, bool) or not isinstance(layer_norm_eps, numbers.Real) or not 0 < layer_norm_eps < math.inf:
            raise ValueError(f"layer_norm_eps must be a small positive number such as 1e-5, got {layer_norm_eps!r}")
        self.norm_first = bool(norm_first)
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.ff = FeedForward(d_model, d_ff, dropout=dropout, activation=activation)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def _attend(self, x: Tensor, key_padding_mask, causal, attn_mask) -> tuple[Tensor, Tensor]:
        out, w = self.self_attn(
            x, key_padding_mask=key_padding_mask, causal=causal, attn_mask=attn_mask,
            average_weights=False,
        )
        return self.dropout1(out), w

    def forward(
        self,
        x: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        causal: bool = False,
        attn_mask: Tensor | None = None,
        return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        _check_sequence("x", x, self.self_attn.d_model)
        if self.norm_first:  # pre-LN: normalise the sublayer's *input*; the residual path stays clean
            a, w = self._attend(self.norm1(x), key_padding_mask, causal, attn_mask)
            x = x + a
            x = x + self.dropout2(self.ff(self.norm2(x)))
        else:  # post-LN: normalise *after* adding the residual
            a, w = self._attend(x, key_padding_mask, causal, attn_mask)
            x = self.norm1(x + a)
            x = self.norm2(x + self.dropout2(self.ff(x)))
        return (x, w) if return_weights else x

    @torch.no_grad()
    def load_from_torch(self, layer: nn.TransformerEncoderLayer) -> "TransformerEncoderBlock":
        """Copy the weights of an ``nn.TransformerEncoderLayer`` (same sizes) into this block.

        Usage: ``block.load_from_torch(nn.TransformerEncoderLayer(64, 4, 256, batch_first=True))``
        """
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise TypeError(f"expected nn.TransformerEncoderLayer, got {type(layer).__name__}")
        if layer.norm_first != self.norm_first:
            raise ValueError(
                f"norm_first differs: this block has norm_first={self.norm_first}, the torch "
                f"layer norm_first={layer.norm_first}"
            )
        if layer.linear1.out_features != self.ff.linear1.out_features:
            raise ValueError(
                f"d_ff differs: {self.ff.linear1.out_features} here, {layer.linear1.out_features} in the torch layer"
            )
        name = {1: "relu", 2: "gelu"}.get(getattr(layer, "activation_relu_or_gelu", 0))
        if name != self.ff.activation:
            raise ValueError(
                f"activation differs: {self.ff.activation!r} here, {layer.activation!r} in the torch layer"
            )
        eps = (layer.norm1.eps, layer.norm2.eps)
        if eps != (self.norm1.eps, self.norm2.eps):
            raise ValueError(
                f"layer_norm_eps differs: {self.norm1.eps} here, {eps[0]} in the torch layer; "
                f"build this block with layer_norm_eps={eps[0]}"
            )
        self.self_attn.load_from_torch(layer.self_attn)
        for mine, theirs in ((self.ff.linear1, layer.linear1), (self.ff.linear2, layer.linear2),
                             (self.norm1, layer.norm1), (self.norm2, layer.norm2)):
            mine.load_state_dict(theirs.state_dict())
        return self

    @torch.no_grad()
    def to_torch(self) -> nn.TransformerEncoderLayer:
        """A new ``nn.TransformerEncoderLayer(batch_first=True)`` holding a copy of these weights.

        Usage: ``ref = block.to_torch().eval()``
        """
        attn = self.self_attn
        layer = nn.TransformerEncoderLayer(
            attn.d_model, attn.n_heads, self.ff.linear1.out_features,
            dropout=self.dropout1.p, activation=self.ff.activation, batch_first=True,
            norm_first=self.norm_first, layer_norm_eps=self.norm1.eps,
        ).to(attn.q_proj.weight.device, attn.q_proj.weight.dtype)
        layer.self_attn = attn.to_torch()
        for mine, theirs in ((self.ff.linear1, layer.linear1), (self.ff.linear2, layer.linear2),
                             (self.norm1, layer.norm1), (self.norm2, layer.norm2)):
            theirs.load_state_dict(mine.state_dict())
        return layer


class TransformerEncoder(nn.Module):
    """Token embedding + positional encoding + a stack of encoder blocks (+ optional head) (chapter 05).

    ``forward(tokens)`` takes int64 tokens (B, L) and returns (B, L, d_model) hidden
    states, or (B, L, n_outputs) logits when ``n_outputs`` is given. With
    ``return_weights=True`` it also returns a list with each block's per-head attention
    weights (B, n_heads, L, L). ``positional`` is ``"sinusoidal"``, ``"learned"`` or
    ``"none"``. A pre-LN stack (``norm_first=True``) ends with a final LayerNorm, because
    its residual stream is never normalised otherwise.

    Usage: ``TransformerEncoder(vocab_size=12, d_model=64, n_heads=4, d_ff=128, n_layers=2, n_outputs=12)``
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_heads: int,
        d_ff: int,
        n_layers: int,
        *,
        max_len: int = 512,
        dropout: float = 0.0,
        norm_first: bool = True,
        activation: Literal["relu", "gelu"] = "relu",
        positional: Literal["sinusoidal", "learned", "none"] = "sinusoidal",
        n_outputs: int | None = None,
        padding_idx: int | None = None,
    ):
        super().__init__()
        self.vocab_size, d_model = _int(vocab_size, "vocab_size"), _int(d_model, "d_model")
        n_layers, max_len = _int(n_layers, "n_layers", minimum=0), _int(max_len, "max_len")
        if padding_idx is not None and not -vocab_size <= _int(padding_idx, "padding_idx", -vocab_size) < vocab_size:
            raise ValueError(f"padding_idx must be a token id below vocab_size={vocab_size}, got {padding_idx}")
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        if positional == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(d_model, max_len, dropout)
        elif positional == "learned":
            self.pos = LearnedPositionalEncoding(d_model, max_len, dropout)
        elif positional == "none":
            self.pos = nn.Dropout(dropout)
        else:
            raise ValueError(f"positional must be 'sinusoidal', 'learned' or 'none', got {positional!r}")
        self.blocks = nn.ModuleList(
            TransformerEncoderBlock(d_model, n_heads, d_ff, dropout, norm_first, activation)
            for _ in range(n_layers)
        )
        self.final_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.head = nn.Linear(d_model, _int(n_outputs, "n_outputs")) if n_outputs is not None else nn.Identity()

    def forward(
        self,
        tokens: Tensor,
        key_padding_mask: Tensor | None = None,
        *,
        causal: bool = False,
        return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        integer = isinstance(tokens, Tensor) and not tokens.is_floating_point() and not tokens.is_complex()
        if not integer or tokens.dim() != 2 or tokens.dtype == torch.bool:
            got = f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be an integer tensor of shape (batch, length), got {got}")
        lo, hi = torch.stack(torch.aminmax(tokens)).tolist() if tokens.numel() else (0, 0)
        if not 0 <= lo <= hi < self.vocab_size:  # an embedding lookup would fail with "index out of range"
            raise ValueError(f"token ids must lie in [0, vocab_size={self.vocab_size}), got ids from {lo} to {hi}")
        x = self.pos(self.embed(tokens))
        all_weights = []
        for block in self.blocks:
            x, w = block(x, key_padding_mask=key_padding_mask, causal=causal, return_weights=True)
            all_weights.append(w)
        x = self.head(self.final_norm(x))
        return (x, all_weights) if return_weights else x


# --------------------------------------------------------------------------- plotting
def plot_attention(
    weights: Tensor,
    query_labels: list[str] | None = None,
    key_labels: list[str] | None = None,
    ax=None,
    title: str = "Attention weights",
    colorbar: bool = True,
):
    """Heat-map of a (L, S) weight matrix (tensor or array): rows = queries, columns = keys (chapter 04).

    Usage: ``plot_attention(w[0], tokens, tokens, title="head 0")``
    """
    import matplotlib.pyplot as plt

    try:
        w = torch.as_tensor(weights.detach() if isinstance(weights, Tensor) else weights).float().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"weights must be a tensor or array of numbers, got {type(weights).__name__}") from None
    if w.dim() != 2 or w.numel() == 0:
        raise ValueError(f"plot_attention expects a non-empty 2-D (queries, keys) matrix, got shape {tuple(w.shape)}")
    for name, labels, n in (("query_labels", query_labels, w.shape[0]), ("key_labels", key_labels, w.shape[1])):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} has {len(labels)} labels for {n} {name.split('_')[0]}s")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * w.shape[1] + 2, 0.45 * w.shape[0] + 1.2))
    top = torch.nan_to_num(w, nan=0.0).max().item()  # NaN rows (e.g. nn.MultiheadAttention's) stay blank
    im = ax.imshow(w.numpy(), cmap="viridis", vmin=0.0, vmax=max(top, 1e-8), aspect="auto")
    if key_labels is not None:
        ax.set_xticks(range(len(key_labels)), key_labels, rotation=90)
    if query_labels is not None:
        ax.set_yticks(range(len(query_labels)), query_labels)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return ax
