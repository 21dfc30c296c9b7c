"""Every check of chapter 08's exercises, with correct and wrong answers."""

from __future__ import annotations

import math

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from scipy import stats

from ptcourse.exercises import ch08 as ex
from ptcourse.finetune import param_groups


def _normalise(x, mean, std):
    return (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)


# ----------------------------------------------------------------- q1
def by_hand(image, resize_size, crop_size, mean, std):
    x = TF.center_crop(TF.resize(image, [resize_size], antialias=True), [crop_size, crop_size])
    return _normalise(x.float() / 255, mean, std)


def float_first(image, resize_size, crop_size, mean, std):  # also right: resize after scaling to [0, 1]
    x = TF.center_crop(TF.resize(image.float() / 255, [resize_size], antialias=True), [crop_size, crop_size])
    return _normalise(x, mean, std)


def through_pil(image, resize_size, crop_size, mean, std):  # also right: PIL's resize
    pil = TF.center_crop(TF.resize(Image.fromarray(image.permute(1, 2, 0).numpy()), [resize_size]), [crop_size] * 2)
    return _normalise(TF.pil_to_tensor(pil).float() / 255, mean, std)


def test_q1_preprocessing_by_hand():
    for correct in (by_hand, float_first, through_pil):
        ok, msg = ex.q1.evaluate(correct)
        assert ok, (correct.__name__, msg)

    def squashed(image, resize_size, crop_size, mean, std):
        x = TF.center_crop(TF.resize(image, [resize_size, resize_size], antialias=True), [crop_size, crop_size])
        return _normalise(x.float() / 255, mean, std)

    def not_normalised(image, resize_size, crop_size, mean, std):
        return TF.center_crop(TF.resize(image, [resize_size], antialias=True), [crop_size, crop_size]).float() / 255

    def on_0_255(image, resize_size, crop_size, mean, std):
        x = TF.center_crop(TF.resize(image, [resize_size], antialias=True), [crop_size, crop_size])
        return _normalise(x.float(), mean, std)

    def no_crop(image, resize_size, crop_size, mean, std):
        return _normalise(TF.resize(image, [resize_size], antialias=True).float() / 255, mean, std)

    def swapped(image, resize_size, crop_size, mean, std):
        return by_hand(image, resize_size, crop_size, std, mean)

    for wrong, words in ((squashed, "shorter"), (not_normalised, "not normalised"), (on_0_255, "divide by 255"),
                         (no_crop, "should have shape"), (swapped, "swapped")):
        ok, msg = ex.q1.evaluate(wrong)
        assert not ok and words in msg, (wrong.__name__, msg)
    ok, msg = ex.q1.evaluate(lambda *args: np.zeros((3, 224, 224)))
    assert not ok and "torch.Tensor" in msg
    ok, msg = ex.q1.evaluate(by_hand(torch.zeros(3, 8, 8, dtype=torch.uint8), 8, 8, (0.5,) * 3, (0.5,) * 3))
    assert not ok and "the function" in msg


# ----------------------------------------------------------------- q2
def test_q2_batchnorm_statistics():
    assert ex.q2.evaluate({"B", "D", "E"})[0]
    assert ex.q2.evaluate("b, d, e")[0]
    for extra, words in (("A", "training mode"), ("C", "no_grad"), ("F", "learning rate of 0")):
        ok, msg = ex.q2.evaluate({"B", "D", "E", extra})
        assert not ok and words in msg
    ok, msg = ex.q2.evaluate({"B", "D"})
    assert not ok and "left out 1" in msg
    ok, msg = ex.q2.evaluate({"B", "Q"})
    assert not ok and "not one of the letters" in msg
    ok, msg = ex.q2.evaluate(2)
    assert not ok and "set of letters" in msg


def test_q2_answer_is_what_torch_does():
    """The accepted letters are measured, not asserted: run each procedure on a real frozen ResNet."""
    from ptcourse.training import set_train_mode
    from ptcourse.vision import CourseResNet, bn_running_stats, new_head

    def frozen():
        torch.manual_seed(0)
        model = new_head(CourseResNet(width=4, num_classes=41), 3)
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("fc."))
        return model

    x = torch.randn(8, 3, 32, 32) * 2 + 1
    results = {}
    for letter in "ABCE":
        model = frozen()
        before = bn_running_stats(model)
        with torch.no_grad():
            {"A": model.train, "B": model.eval, "C": model.train, "E": lambda: set_train_mode(model)}[letter]()
            model(x)
        results[letter] = all(torch.equal(before[k], v) for k, v in bn_running_stats(model).items())
    assert results == {"A": False, "B": True, "C": False, "E": True}


# ----------------------------------------------------------------- q3
def test_q3_parameter_groups():
    assert ex.q3.evaluate(lambda m: param_groups(m, {"fc": 1e-3}, default_lr=1e-4, weight_decay=0.05))[0]
    assert ex.q3.evaluate(lambda m: torch.optim.AdamW(param_groups(m, {"fc": 1e-3}, default_lr=1e-4,
                                                                   weight_decay=0.05)))[0]

    def by_hand(m):
        groups = []
        for head in (True, False):
            for decay in (True, False):
                params = [p for n, p in m.named_parameters() if n.startswith("fc.") == head and (p.ndim >= 2) == decay]
                groups.append({"params": params, "lr": 1e-3 if head else 1e-4, "weight_decay": 0.05 if decay else 0.0})
        return groups

    assert ex.q3.evaluate(by_hand)[0]
    ok, msg = ex.q3.evaluate(lambda m: param_groups(m, {"fc": 1e-4}, default_lr=1e-3, weight_decay=0.05))
    assert not ok and "which rate goes to which part" in msg
    ok, msg = ex.q3.evaluate(lambda m: [{"params": list(m.parameters()), "lr": 1e-4, "weight_decay": 0.05}])
    assert not ok and "fc." in msg
    ok, msg = ex.q3.evaluate(lambda m: [{"params": [p for n, p in m.named_parameters() if n.startswith("fc.")],
                                         "lr": 1e-3, "weight_decay": 0.0}])
    assert not ok and "in no group" in msg
    ok, msg = ex.q3.evaluate(lambda m: [{"params": list(m.parameters()), "lr": 1e-4, "weight_decay": 0.0},
                                        {"params": list(m.fc.parameters()), "lr": 1e-3, "weight_decay": 0.0}])
    assert not ok and "two groups" in msg
    ok, msg = ex.q3.evaluate(lambda m: [{"params": list(m.parameters()), "lr": 1e-4}])
    assert not ok and "defaults" in msg
    ok, msg = ex.q3.evaluate(lambda m: {"lr": 1e-3})
    assert not ok and "list of dicts" in msg


# ----------------------------------------------------------------- q4
def test_q4_paired_comparison():
    d = np.array(ex.ACC_FINE_TUNE) - np.array(ex.ACC_SCRATCH)
    n = len(d)
    se = d.std(ddof=1) / math.sqrt(n)
    t = stats.t.ppf(0.975, n - 1)
    right = (d.mean(), se, d.mean() - t * se, d.mean() + t * se)
    assert ex.q4.evaluate(right)[0]
    assert ex.q4.evaluate([np.float64(v) for v in right])[0]
    ci = stats.ttest_rel(ex.ACC_FINE_TUNE, ex.ACC_SCRATCH).confidence_interval()  # scipy's paired t-test agrees
    assert ex.q4.evaluate((d.mean(), se, ci.low, ci.high))[0]
    cases = [
        ((d.mean() + 0.01, se, right[2], right[3]), "per-seed differences"),
        ((d.mean(), d.std(ddof=1), right[2], right[3]), "standard deviation of the differences"),
        ((d.mean(), d.std(ddof=0) / math.sqrt(n), right[2], right[3]), "n - 1"),
        ((d.mean(), math.sqrt((np.var(ex.ACC_FINE_TUNE, ddof=1) + np.var(ex.ACC_SCRATCH, ddof=1)) / n),
          right[2], right[3]), "paired by seed"),
        ((d.mean(), se, d.mean() - 1.96 * se, d.mean() + 1.96 * se), "Student's t"),
        ((d.mean(), se, right[2], right[3] + 0.01), "97.5 %"),
    ]
    for answer, words in cases:
        ok, msg = ex.q4.evaluate(answer)
        assert not ok and words in msg, (answer, msg)
    ok, msg = ex.q4.evaluate((0.05, 0.01))
    assert not ok and "four numbers" in msg
    ok, msg = ex.q4.evaluate((0.05, float("nan"), 0.0, 0.1))
    assert not ok and "finite" in msg
