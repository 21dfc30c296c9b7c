"""Every check of chapter 05's exercises, with a correct and a wrong answer."""

from __future__ import annotations

import torch

from ptcourse.attention import TransformerEncoderBlock, sinusoidal_encoding
from ptcourse.exercises import ch05 as ex
from ptcourse.exercises.core import NOT_WRITTEN


def test_q1_parameter_count(capsys):
    n = sum(p.numel() for p in TransformerEncoderBlock(64, 4, 256).parameters())
    assert n == 49_984
    assert ex.q1.check(n)
    assert "✅" in capsys.readouterr().out
    for wrong, words in [(n - 256, "LayerNorms"), (4 * (64 * 64 + 64), "feed-forward"),
                         (n - 4 * 64 - 256 - 64, "biases"), (n + 3 * 4 * (64 * 64 + 64), "heads"), (1000, "")]:
        ok, msg = ex.q1.evaluate(wrong)
        assert not ok and words in msg
    ok, msg = ex.q1.evaluate(12.5)
    assert not ok and "whole number" in msg


def test_q2_layernorms_on_residual_path():
    assert ex.q2.evaluate((12, 0))[0]
    assert ex.q2.evaluate([12.0, 0])[0]
    for wrong, words in [((0, 12), "swapped"), ((6, 0), "two sublayers"), ((12, 6), "sublayer's input"),
                         ((12, 1), "final LayerNorm"), ((3, 3), "")]:
        ok, msg = ex.q2.evaluate(wrong)
        assert not ok and words in msg
    ok, msg = ex.q2.evaluate(12)
    assert not ok and "pair" in msg


def _pe(n, d, swap=False, exponent_i=False):
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    i2 = torch.arange(0, d, 2, dtype=torch.float32)
    omega = 10000 ** (-(i2 / 2 if exponent_i else i2) / d)
    pe = torch.zeros(n, d)
    pe[:, 0::2] = (torch.cos if swap else torch.sin)(pos * omega)
    pe[:, 1::2] = (torch.sin if swap else torch.cos)(pos * omega)
    return pe


def test_q3_sinusoidal():
    assert ex.q3.evaluate(_pe)[0]
    assert ex.q3.evaluate(sinusoidal_encoding)[0]
    ok, msg = ex.q3.evaluate(lambda n, d: _pe(n, d, swap=True))
    assert not ok and "swapped" in msg
    ok, msg = ex.q3.evaluate(lambda n, d: _pe(n, d, exponent_i=True))
    assert not ok and "frequencies" in msg
    ok, msg = ex.q3.evaluate(lambda n, d: _pe(n, d).T)
    assert not ok and "shape" in msg
    ok, msg = ex.q3.evaluate(lambda n, d: _pe(n, d) * 2)
    assert not ok and "wrong values" in msg
    ok, msg = ex.q3.evaluate(_pe(4, 4))
    assert not ok and "pass sinusoidal itself (the function" in msg
    ok, msg = ex.q3.evaluate(lambda n, d: 1 / 0)
    assert not ok and "sinusoidal raised ZeroDivisionError" in msg


def _right(block, x):
    a = lambda t: block.self_attn(t)[0]  # noqa: E731
    if block.norm_first:
        h = x + a(block.norm1(x))
        return h + block.ff(block.norm2(h))
    h = block.norm1(x + a(x))
    return block.norm2(h + block.ff(h))


def test_q4_block_forward():
    assert ex.q4.evaluate(_right)[0]

    def always_post(block, x):
        h = block.norm1(x + block.self_attn(x)[0])
        return block.norm2(h + block.ff(h))

    ok, msg = ex.q4.evaluate(always_post)
    assert not ok and "other arrangement" in msg

    def no_ffn(block, x):
        a = lambda t: block.self_attn(t)[0]  # noqa: E731
        return x + a(block.norm1(x)) if block.norm_first else block.norm1(x + a(x))

    ok, msg = ex.q4.evaluate(no_ffn)
    assert not ok and "feed-forward sublayer is missing" in msg

    ok, msg = ex.q4.evaluate(lambda block, x: block.norm1(x + block.self_attn(block.norm1(x))[0]))
    assert not ok and "mixed formula" in msg
    ok, msg = ex.q4.evaluate(lambda block, x: block.self_attn(x))
    assert not ok and "tuple" in msg
    ok, msg = ex.q4.evaluate(lambda block, x: _right(block, x) + 0.1)
    assert not ok and "does not match" in msg
    ok, msg = ex.q4.evaluate(lambda block: block)
    assert not ok and "block_forward raised TypeError" in msg


def test_q5_reversal_without_positions():
    assert ex.q5.evaluate(0.285)[0]
    assert ex.q5.evaluate(torch.tensor(0.2))[0]
    for wrong, words in [(1.0, "can see positions"), (0.7, "higher than"), (0.02, "below chance"), (1.5, "between 0 and 1")]:
        ok, msg = ex.q5.evaluate(wrong)
        assert not ok and words in msg


def _stub(*args):
    raise NotImplementedError


def test_unfinished_stubs_get_the_shared_message():
    for q in (ex.q3, ex.q4):
        assert q.evaluate(_stub) == (False, NOT_WRITTEN)


def test_last_hints_do_not_spell_out_the_answer():
    answers = {  # the solution's key expressions for each exercise
        ex.q1: ["49984", "49_984", "49,984"],
        ex.q2: ["(12, 0)", "x reaches h without"],
        ex.q3: ["10000 ** (-torch.arange", "torch.sin(pos * omega)", "with the sines"],
        ex.q4: ["norm1(x + attn(x))", "h + ff(norm2(h))", "x + attn(norm1(x))", "norm2(h + ff(h))"],
    }
    for q, expressions in answers.items():
        for hint in q.hints:
            assert not any(e in hint for e in expressions), (q.name, hint)
