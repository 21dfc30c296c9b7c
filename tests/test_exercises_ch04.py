"""Every check of chapter 04's exercises, with a correct and a wrong answer."""

from __future__ import annotations

import math

import torch

from ptcourse.exercises import ch04 as ex
from ptcourse.exercises.core import NOT_WRITTEN


def test_q1_scale(capsys):
    assert ex.q1.check(8)
    assert ex.q1.check(math.sqrt(64))
    assert ex.q1.check(torch.tensor(8.0))
    assert "✅" in capsys.readouterr().out
    ok, msg = ex.q1.evaluate(64)
    assert not ok and "variance" in msg
    ok, msg = ex.q1.evaluate(0.125)
    assert not ok and "multiply" in msg
    ok, msg = ex.q1.evaluate(4)
    assert not ok
    ok, msg = ex.q1.evaluate("eight")
    assert not ok and "number" in msg


def _mask_right(lengths, max_len):
    return torch.arange(max_len)[None, :] >= lengths[:, None]


def test_q2_padding_mask():
    assert ex.q2.evaluate(_mask_right)[0]
    ok, msg = ex.q2.evaluate(lambda lengths, max_len: ~_mask_right(lengths, max_len))
    assert not ok and "inverted" in msg
    ok, msg = ex.q2.evaluate(lambda lengths, max_len: _mask_right(lengths, max_len).long())
    assert not ok and "bool" in msg
    ok, msg = ex.q2.evaluate(lambda lengths, max_len: torch.arange(max_len)[None, :] > lengths[:, None])
    assert not ok and "j >= n" in msg
    ok, msg = ex.q2.evaluate(lambda lengths, max_len: _mask_right(lengths, max_len).T)
    assert not ok and "shape" in msg
    ok, msg = ex.q2.evaluate(_mask_right(torch.tensor([1, 2]), 3))
    assert not ok and "pass padding_mask itself (the function" in msg


def test_q3_split_heads():
    assert ex.q3.evaluate(lambda x, h: x.view(x.shape[0], x.shape[1], h, -1).transpose(1, 2))[0]
    assert ex.q3.evaluate(lambda x, h: x.unflatten(-1, (h, -1)).permute(0, 2, 1, 3))[0]
    ok, msg = ex.q3.evaluate(lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1))
    assert not ok and "mixes different positions" in msg
    ok, msg = ex.q3.evaluate(lambda x, h: x.view(x.shape[0], x.shape[1], h, -1))
    assert not ok and "shape" in msg
    ok, msg = ex.q3.evaluate(lambda x, h: x.view(x.shape[0], x.shape[1], -1, h).permute(0, 3, 1, 2))
    assert not ok and "wrong content" in msg
    ok, msg = ex.q3.evaluate(lambda x, h: 1 / 0)
    assert not ok and "ZeroDivisionError" in msg


def test_q4_memory():
    assert ex.q4.evaluate(1.5)[0]
    assert ex.q4.evaluate(8 * 12 * 2048**2 * 4 / 2**30)[0]
    for wrong, words in [(1.5 * 2**30, "bytes"), (0.125, "heads"), (1.5 / 8, "batch"), (0.375, "4 bytes"),
                         (1.5 * 2**30 / 1e9, "GB"), (1.5 / 2048, "n x n"), (3.0, "")]:
        ok, msg = ex.q4.evaluate(wrong)
        assert not ok and words in msg


def test_q5_padding_experiment():
    assert ex.q5.evaluate((0.0, 0.8))[0]
    assert ex.q5.evaluate([3e-8, torch.tensor(1.2)])[0]
    ok, msg = ex.q5.evaluate((0.8, 0.0))
    assert not ok and "swapped" in msg
    ok, msg = ex.q5.evaluate((0.5, 0.8))
    assert not ok and "key_padding_mask" in msg
    ok, msg = ex.q5.evaluate((0.0, 0.0))
    assert not ok and "no mask" in msg
    ok, msg = ex.q5.evaluate((0.0,))
    assert not ok and "two numbers" in msg
    ok, msg = ex.q5.evaluate(0.5)
    assert not ok and "pair" in msg


def _stub(*args):
    raise NotImplementedError


def test_unfinished_stubs_get_the_shared_message():
    for q in (ex.q2, ex.q3):
        assert q.evaluate(_stub) == (False, NOT_WRITTEN)


def test_last_hints_do_not_spell_out_the_answer():
    answers = {  # the solution's key expression for each exercise
        ex.q2: [">= lengths[:, None]", ">= lengths"],
        ex.q3: [".transpose(1, 2)", "permute(0, 2, 1, 3)"],
        ex.q4: ["* n * n * 4", "n * n * 4 / 2**30", "1.5"],
        ex.q1: ["= 8", " 8."],
    }
    for q, expressions in answers.items():
        for hint in q.hints:
            assert not any(e in hint for e in expressions), (q.name, hint)
