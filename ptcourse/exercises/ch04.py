"""Checks for the exercises of chapter 04 · Self-attention.

Usage (in ``exercises/04_self_attention_exercises.ipynb``)::

    from ptcourse.exercises import ch04 as ex
    ex.q1.check(8)       # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: the number the scores are divided by (a quick question)
- q2: a padding mask from sequence lengths (a function)
- q3: splitting the model dimension into heads (a function)
- q4: the memory of the attention weights (a number)
- q5: padding is invisible only with the mask (a small experiment)
"""

from __future__ import annotations

from typing import Any

from ptcourse.exercises.core import AnswerError, Exercise, call_answer, close, require_type, to_float

__all__ = ["q1", "q2", "q3", "q4", "q5"]


# ----------------------------------------------------------------- q1
def _check_q1(answer: Any) -> tuple[bool, str]:
    value = to_float(answer, "the number you divide the scores by")
    if close(value, 8.0, tol=1e-6):
        return True, "dividing by the standard deviation sqrt(d_k) brings the scores back to variance 1."
    if close(value, 64.0, tol=1e-6):
        return False, "64 is the variance of q·k; dividing by it would shrink the scores to variance 1/64."
    if close(value, 1 / 8, tol=1e-6):
        return False, "that is the factor you multiply by; the question asks what you divide by."
    return False, "work out the variance of a sum of d_k independent products with variance 1, then take its square root."


q1 = Exercise(
    "q1",
    "The scale of the scores",
    check=_check_q1,
    hints=[
        "Each product q_m k_m has mean 0 and variance 1, and q·k sums d_k of them.",
        "Dividing a random variable by c divides its variance by c².",
    ],
)


# ----------------------------------------------------------------- q2
def _check_q2(answer: Any) -> tuple[bool, str]:
    import torch

    cases = [([3, 5, 1], 5), ([2, 2], 4), ([4], 4)]
    for lengths, max_len in cases:
        got = call_answer(answer, torch.tensor(lengths), max_len, what="padding_mask")
        if not isinstance(got, torch.Tensor):
            return False, f"return a torch tensor, got a {type(got).__name__}."
        if tuple(got.shape) != (len(lengths), max_len):
            return False, f"for {len(lengths)} sequences and max_len={max_len} the mask should have shape ({len(lengths)}, {max_len}), got {tuple(got.shape)}."
        if got.dtype != torch.bool:
            return False, f"the mask must be a bool tensor (attention code checks the dtype), got {got.dtype}."
        want = torch.arange(max_len)[None, :] >= torch.tensor(lengths)[:, None]
        if torch.equal(got, ~want):
            return False, "your mask is inverted: here True must mark the padding (the positions to ignore)."
        if not torch.equal(got, want):
            return False, f"wrong mask for lengths {lengths}: position j of a sequence of length n is padding exactly when j >= n."
    return True, "True marks every padding position, in the convention of nn.MultiheadAttention and ptcourse."


q2 = Exercise(
    "q2",
    "A padding mask from lengths",
    check=_check_q2,
    hints=[
        "Compare a row of positions, torch.arange(max_len), with each length.",
        "Make the positions a row and the lengths a column: comparing them broadcasts to (batch, max_len). "
        "Which comparison is True exactly at the padding?",
    ],
)


# ----------------------------------------------------------------- q3
def _check_q3(answer: Any) -> tuple[bool, str]:
    import torch

    g = torch.Generator().manual_seed(0)
    for B, L, D, H in [(2, 5, 12, 3), (1, 4, 8, 2), (3, 1, 6, 6)]:
        x = torch.randn(B, L, D, generator=g)
        got = call_answer(answer, x, H, what="split_heads")
        if not isinstance(got, torch.Tensor):
            return False, f"return a torch tensor, got a {type(got).__name__}."
        want = x.view(B, L, H, D // H).transpose(1, 2)
        if tuple(got.shape) != tuple(want.shape):
            return False, f"for x of shape {(B, L, D)} and {H} heads the result should have shape {tuple(want.shape)} (batch, heads, length, d_head), got {tuple(got.shape)}."
        if torch.equal(got, x.reshape(B, H, L, D // H)) and not torch.equal(got, want):
            return False, ("right shape, wrong content: reshaping straight to (batch, heads, length, d_head) "
                           "mixes different positions into one head. Keep the length axis where it is first.")
        if not torch.equal(got, want):
            return False, "right shape, wrong content: head h must hold features h*d_head ... (h+1)*d_head-1 of every position."
    return True, "each head now sees its own slice of the features, at every position."


q3 = Exercise(
    "q3",
    "Split the features into heads",
    check=_check_q3,
    hints=[
        "First view (B, L, D) as (B, L, H, D // H): this only splits the last axis.",
        "The result must be (B, H, L, D // H): which two axes of that intermediate shape have to trade "
        "places? A view or reshape cannot move data between axes; transpose and permute can.",
    ],
)


# ----------------------------------------------------------------- q4
_Q4_GIB = 8 * 12 * 2048 * 2048 * 4 / 2**30  # 1.5


def _check_q4(answer: Any) -> tuple[bool, str]:
    value = to_float(answer, "the memory in GiB")
    if close(value, _Q4_GIB, tol=0.0, rel=0.01):
        return True, "one float32 weight per (sequence, head, query, key): it grows with the square of the length."
    if close(value, _Q4_GIB * 2**30, tol=0.0, rel=0.01):
        return False, "that is the number of bytes; convert it to GiB (2**30 bytes)."
    if close(value, _Q4_GIB / 12, tol=0.0, rel=0.01):
        return False, "every head stores its own weight matrix; did you count the heads?"
    if close(value, _Q4_GIB / 8, tol=0.0, rel=0.01):
        return False, "every sequence of the batch has its own weights; did you count the batch?"
    if close(value, _Q4_GIB / 4, tol=0.0, rel=0.01):
        return False, "a float32 number takes 4 bytes."
    if close(value, _Q4_GIB * 2**30 / 1e9, tol=0.0, rel=0.01):
        return False, "that is in GB (10**9 bytes); the question asks for GiB (2**30 bytes)."
    if close(value, _Q4_GIB / 2048, tol=0.0, rel=0.01):
        return False, "the weights form an n x n matrix per head, not n numbers."
    return False, "count the numbers in the (batch, heads, n, n) weights tensor, times 4 bytes, divided by 2**30."


q4 = Exercise(
    "q4",
    "Memory of the attention weights",
    check=_check_q4,
    hints=[
        "The weights tensor has shape (batch, heads, n, n).",
        "Count the numbers in that tensor, multiply by the size of one float32 number in bytes, then "
        "convert bytes to GiB (1 GiB = 2**30 bytes).",
    ],
)


# ----------------------------------------------------------------- q5
def _check_q5(answer: Any) -> tuple[bool, str]:
    require_type(answer, (tuple, list), "your answer (a pair: difference with the mask, difference without)")
    if len(answer) != 2:
        raise AnswerError(f"give two numbers (with_mask, without_mask), got {len(answer)} values.")
    with_mask = to_float(answer[0], "the difference with the mask")
    without = to_float(answer[1], "the difference without the mask")
    if with_mask < 0 or without < 0:
        return False, "a maximum absolute difference cannot be negative."
    if with_mask < 1e-5 and without > 1e-3:
        return True, "with the mask the padded sentence gives exactly the unpadded outputs; without it, the pads leak in."
    if without < 1e-5 and with_mask > 1e-3:
        return False, "your two numbers look swapped: the masked run is the one that should agree with the unpadded sentence."
    if with_mask >= 1e-5:
        return False, ("with the mask the difference should be at rounding level (below 1e-5): pass key_padding_mask "
                       "with True at the pads, and compare only the real (unpadded) positions.")
    return False, ("without the mask the pads should change the outputs (difference above 1e-3): make sure the second "
                   "run really uses no mask, and that the pad vectors are not all zero.")


q5 = Exercise(
    "q5",
    "Padding is invisible only with the mask",
    check=_check_q5,
    hints=[
        "Run the same MultiHeadAttention on the sentence alone, and on the padded batch with and without key_padding_mask.",
        "Compare out[:, :n_real] of the padded runs with the output of the unpadded sentence: (a - b).abs().max().item().",
    ],
)
