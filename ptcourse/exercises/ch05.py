"""Checks for the exercises of chapter 05 · The Transformer.

Usage (in ``exercises/05_transformer_exercises.ipynb``)::

    from ptcourse.exercises import ch05 as ex
    ex.q1.check(12345)   # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: the parameters of one encoder block (a quick count)
- q2: LayerNorms on the residual path, post-LN vs pre-LN (a quick question)
- q3: the sinusoidal positional encoding (a function)
- q4: the encoder block's forward pass, both arrangements (a function)
- q5: reversal without positional encodings (a small experiment with ``ptcourse.fit``)
"""

from __future__ import annotations

from typing import Any

from ptcourse.exercises.core import AnswerError, Exercise, call_answer, require_type, to_float, to_int

__all__ = ["q1", "q2", "q3", "q4", "q5"]

# ----------------------------------------------------------------- q1
_D, _FF = 64, 256
_ATTN = 4 * (_D * _D + _D)
_FFN = (_D * _FF + _FF) + (_FF * _D + _D)
_LN = 2 * 2 * _D
_Q1 = _ATTN + _FFN + _LN  # 49_984


def _check_q1(answer: Any) -> tuple[bool, str]:
    value = to_int(answer, "the number of parameters")
    if value == _Q1:
        return True, "attention 4(d²+d), feed-forward 2·d·d_ff + d_ff + d, and two LayerNorms with 2d each."
    if value == _Q1 - _LN:
        return False, "close: the two LayerNorms have parameters too (a scale and a shift per feature)."
    if value == _ATTN + _LN or value == _ATTN:
        return False, "you counted the attention sublayer; the feed-forward sublayer holds most of the parameters."
    if value == _Q1 - 4 * _D - _FF - _D - _LN or value == _Q1 - 4 * _D - _FF - _D:
        return False, "the linear layers have biases too."
    if value == _Q1 + 3 * _ATTN:
        return False, "the number of heads does not multiply the attention parameters: the heads split d_model."
    return False, "add up the four d x d projections (+ biases), the two feed-forward layers (+ biases) and two LayerNorms."


q1 = Exercise(
    "q1",
    "Parameters of one encoder block",
    check=_check_q1,
    hints=[
        "Attention: W_Q, W_K, W_V and W_O are each d_model x d_model with a bias; the number of heads does not matter.",
        "Feed-forward: d_model -> d_ff -> d_model with biases; each LayerNorm has a weight and a bias of size d_model.",
    ],
)


# ----------------------------------------------------------------- q2
def _check_q2(answer: Any) -> tuple[bool, str]:
    require_type(answer, (tuple, list), "your answer (a pair: post-LN count, pre-LN count)")
    if len(answer) != 2:
        raise AnswerError(f"give two whole numbers (post_ln, pre_ln), got {len(answer)} values.")
    post = to_int(answer[0], "the post-LN count")
    pre = to_int(answer[1], "the pre-LN count")
    if (post, pre) == (12, 0):
        return True, "post-LN normalises the residual stream twice per block; pre-LN leaves it a clean sum."
    if (post, pre) == (0, 12):
        return False, "swapped: in post-LN the LayerNorm is applied to the sum x + sublayer(x), i.e. on the residual path."
    if post == 6:
        return False, "each post-LN block has two sublayers, each followed by its own LayerNorm."
    if pre in (6, 12):
        return False, "in pre-LN the LayerNorm only feeds the sublayer's input; the residual x itself is added unnormalised."
    if pre == 1:
        return False, "the question does not count the final LayerNorm after the stack."
    return False, "follow the identity path x -> h -> y through one block in each arrangement, then multiply by 6."


q2 = Exercise(
    "q2",
    "LayerNorms on the residual path",
    check=_check_q2,
    hints=[
        "Write one block's two lines in each arrangement and follow the term x itself (not LN(x)) from "
        "the block's input to its output.",
        "A LayerNorm is on the residual path when the sum x + sublayer(...) goes through it. Count such "
        "LayerNorms in one block, then multiply by the number of blocks.",
    ],
)


# ----------------------------------------------------------------- q3
def _reference_pe(n: int, d: int, *, swap: bool = False, exponent_i: bool = False):
    import torch

    pos = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i2 = torch.arange(0, d, 2, dtype=torch.float64)
    omega = 10000.0 ** (-(i2 / 2 if exponent_i else i2) / d)
    pe = torch.zeros(n, d, dtype=torch.float64)
    first, second = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    pe[:, 0::2] = first(pos * omega)
    pe[:, 1::2] = second(pos * omega)[:, : d // 2]
    return pe


def _check_q3(answer: Any) -> tuple[bool, str]:
    import torch

    for n, d in [(50, 16), (7, 64), (20, 6)]:
        got = call_answer(answer, n, d, what="sinusoidal")
        if not isinstance(got, torch.Tensor):
            return False, f"return a torch tensor, got a {type(got).__name__}."
        if tuple(got.shape) != (n, d):
            return False, f"sinusoidal({n}, {d}) should have shape ({n}, {d}) (positions, features), got {tuple(got.shape)}."
        got = got.detach().double().cpu()
        if torch.allclose(got, _reference_pe(n, d), atol=1e-4):
            continue
        if torch.allclose(got, _reference_pe(n, d, swap=True), atol=1e-4):
            return False, "sine and cosine are swapped: even features (0, 2, ...) use sin, odd features use cos."
        if torch.allclose(got, _reference_pe(n, d, exponent_i=True), atol=1e-4):
            return False, "the frequencies are off: feature pair i uses 10000^(-2i/d), where 2i is the even feature index."
        if torch.allclose(got, _reference_pe(n, d).T.reshape(n, d), atol=1e-4):
            return False, "the values are there but in the wrong layout; rows are positions, columns are features."
        return False, f"sinusoidal({n}, {d}) has the right shape but wrong values; check PE(p, 2i) = sin(p · 10000^(-2i/d))."
    return True, "the encoding matches the formula, for even widths of any size."


q3 = Exercise(
    "q3",
    "Sinusoidal positional encodings",
    check=_check_q3,
    hints=[
        "pos = torch.arange(n).unsqueeze(1) has shape (n, 1); the frequencies have shape (d/2,); their product broadcasts to (n, d/2).",
        "Fill the even columns (pe[:, 0::2]) and the odd columns (pe[:, 1::2]) separately; the frequency of a "
        "column pair comes from its even feature index 2i, the same for its sine and its cosine.",
    ],
)


# ----------------------------------------------------------------- q4
def _variants(block, x):
    """The outputs of common wrong versions of the block, for feedback."""
    a = lambda t: block.self_attn(t)[0]  # noqa: E731
    n1, n2, ff = block.norm1, block.norm2, block.ff
    post_h = n1(x + a(x))
    pre_h = x + a(n1(x))
    return {
        "post": n2(post_h + ff(post_h)),
        "pre": pre_h + ff(n2(pre_h)),
        "post_no_ffn": post_h,
        "pre_no_ffn": pre_h,
        "mixed": n1(x + a(n1(x))),
        "mixed_ffn": n2(n1(x + a(n1(x))) + ff(n1(x + a(n1(x))))),
    }


def _check_q4(answer: Any) -> tuple[bool, str]:
    import torch

    from ptcourse.attention import TransformerEncoderBlock

    for norm_first in (False, True):
        torch.manual_seed(7 + norm_first)
        block = TransformerEncoderBlock(16, 4, 32, norm_first=norm_first).eval()
        with torch.no_grad():  # non-trivial LayerNorm parameters so that swapped norms are detected
            for norm in (block.norm1, block.norm2):
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.normal_(0, 0.3)
        x = torch.randn(2, 5, 16) * 2 + 0.5
        with torch.no_grad():
            got = call_answer(answer, block, x, what="block_forward")
            if isinstance(got, tuple):
                return False, "return only the output tensor, not a tuple (MultiHeadAttention returns (output, weights); keep [0])."
            if not isinstance(got, torch.Tensor) or got.shape != x.shape:
                return False, f"return a tensor of the input's shape {tuple(x.shape)}."
            want = block(x)
            if torch.allclose(got, want, atol=1e-5):
                continue
            name = "pre-LN" if norm_first else "post-LN"
            variants = _variants(block, x)
            for key, msg in [
                ("pre" if not norm_first else "post", f"for norm_first={norm_first} ({name}) you computed the other arrangement; read block.norm_first."),
                ("post_no_ffn" if not norm_first else "pre_no_ffn", "the feed-forward sublayer is missing: after attention, add block.ff with its own residual and norm2."),
                ("mixed", "this is the mixed formula LN(x + MHA(LN(x))) without feed-forward: neither post-LN nor pre-LN."),
                ("mixed_ffn", "the attention sublayer mixes the two arrangements (a LayerNorm both before and after)."),
            ]:
                if torch.allclose(got, variants[key], atol=1e-5):
                    return False, msg
            return False, f"the {name} output (norm_first={norm_first}) does not match the block; compare your two lines with the formulas in the chapter."
    return True, "both arrangements match TransformerEncoderBlock (and so nn.TransformerEncoderLayer)."


q4 = Exercise(
    "q4",
    "The encoder block, both ways",
    check=_check_q4,
    hints=[
        "block.self_attn(t) returns (output, weights); block.ff, block.norm1 and block.norm2 are plain modules.",
        "Translate the chapter's table line by line: LN_1 is block.norm1, LN_2 is block.norm2, MHA(t) is "
        "block.self_attn(t)[0], FFN is block.ff. Post-LN normalises the sum; pre-LN normalises the sublayer's input.",
    ],
)


# ----------------------------------------------------------------- q5
def _check_q5(answer: Any) -> tuple[bool, str]:
    acc = to_float(answer, "the token accuracy")
    if not 0.0 <= acc <= 1.0:
        return False, f"an accuracy lies between 0 and 1, got {acc}."
    if acc >= 0.9:
        return False, ("that looks like a model that can see positions: build it with positional=\"none\" "
                       "and train it the same way.")
    if acc >= 0.5:
        return False, "higher than a position-blind model can reach; check that positional=\"none\" and that you evaluate on new sequences."
    if acc < 0.08:
        return False, "below chance (0.1): did you compare the predictions with the reversed targets, over the last dimension's argmax?"
    return True, ("far from the ~1.0 of the model with positions: without them every position sees the same set of tokens, "
                  "so the model can only guess from which digits occur.")


q5 = Exercise(
    "q5",
    "Reversal without positional encodings",
    check=_check_q5,
    hints=[
        "Build TransformerEncoder(..., positional=\"none\") and train it exactly like the chapter's model.",
        "Evaluate with ptcourse.evaluate(..., metrics={\"token_acc\": ptcourse.accuracy}) on held-out sequences.",
    ],
)
