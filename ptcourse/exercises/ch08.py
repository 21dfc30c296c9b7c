"""Checks for the exercises of chapter 08 · Fine-tuning a ResNet.

Usage (in ``exercises/08_finetuning_resnet_exercises.ipynb``)::

    from ptcourse.exercises import ch08 as ex
    ex.q1.check(preprocess_by_hand)   # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: the preprocessing of ``weights.transforms()``, written by hand (a function)
- q2: which procedures keep a frozen backbone's BatchNorm statistics fixed? (a quick question)
- q3: optimizer parameter groups for fine-tuning: a small backbone rate, a larger head rate,
  no weight decay on biases and norm weights (a function)
- q4: a paired comparison of two recipes over seeds: mean difference, standard error and a
  95 % confidence interval (numbers)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ptcourse.exercises.core import AnswerError, Exercise, call_answer, check_letters, close, to_float

__all__ = ["BN_PROCEDURES", "ACC_FINE_TUNE", "ACC_SCRATCH", "q1", "q2", "q3", "q4"]


# ----------------------------------------------------------------- q1
def _q1_cases() -> list[tuple[Any, torch.Tensor]]:
    from torchvision.models import ResNet18_Weights, ResNet50_Weights
    from torchvision.transforms._presets import ImageClassification

    gen = torch.Generator().manual_seed(8)
    cases = [(ResNet18_Weights.IMAGENET1K_V1.transforms(), (3, 300, 420)),
             (ResNet50_Weights.IMAGENET1K_V2.transforms(), (3, 500, 333)),
             (ImageClassification(crop_size=32, resize_size=32, mean=(0.29,) * 3, std=(0.36,) * 3), (3, 8, 8))]
    out = []
    for transform, shape in cases:
        # a smooth random image (noise would exaggerate tiny interpolation differences)
        small = torch.randint(0, 256, (1, 3, shape[1] // 4 + 1, shape[2] // 4 + 1), generator=gen).float()
        image = torch.nn.functional.interpolate(small, size=shape[1:], mode="bilinear", align_corners=False)
        out.append((transform, image[0].round().clamp(0, 255).to(torch.uint8)))
    return out


def _q1_diagnose(got: torch.Tensor, want: torch.Tensor, transform: Any) -> str:
    mean = torch.tensor(transform.mean).view(-1, 1, 1)
    std = torch.tensor(transform.std).view(-1, 1, 1)
    unnormalised = want * std + mean  # what the crop looks like in [0, 1]
    if close(got, unnormalised, tol=0.02):
        return "the crop is right, but it is not normalised: subtract the mean and divide by the std, channel by channel."
    if close(got, unnormalised * 255, tol=5.0):
        return "the values are still 0..255: convert to float in [0, 1] first, then normalise."
    if close(got, (unnormalised * 255 - mean) / std, tol=5.0):
        return "you normalised values in 0..255; the mean and std are for pixels in [0, 1]: divide by 255 first."
    if close(got, (unnormalised - std) / mean, tol=0.05):
        return "mean and std are swapped."
    return ("the shape is right but the pixels differ: resize the *shorter* side to resize_size (keep the aspect "
            "ratio), then take the centre crop_size x crop_size square.")


def _check_q1(answer: Any) -> tuple[bool, str]:
    for transform, image in _q1_cases():
        args = (image.clone(), transform.resize_size[0], transform.crop_size[0], tuple(transform.mean),
                tuple(transform.std))
        got = call_answer(answer, *args, what="preprocess_by_hand")
        if not isinstance(got, torch.Tensor):
            raise AnswerError(f"preprocess_by_hand should return a torch.Tensor, got {type(got).__name__}.")
        want = transform(image)
        crop = transform.crop_size[0]
        if tuple(got.shape) != tuple(want.shape):
            return False, (f"for a {tuple(image.shape)} image with crop_size={crop} the result should have shape "
                           f"{tuple(want.shape)}, got {tuple(got.shape)}.")
        if not got.is_floating_point():
            return False, "the result should be a float tensor (the network takes floats)."
        if not close(got.float(), want, tol=0.02):
            return False, _q1_diagnose(got.float(), want, transform)
    return True, ("your function matches weights.transforms() for ResNet-18 (resize 256), ResNet-50 V2 "
                  "(resize 232) and the course's stand-in.")


q1 = Exercise(
    "q1",
    "Preprocessing by hand",
    check=_check_q1,
    hints=[
        "Four steps, in this order: resize so that the shorter side is resize_size, centre-crop crop_size x "
        "crop_size, scale the pixels to [0, 1], normalise each channel with its mean and std.",
        "torchvision.transforms.v2.functional has resize(img, [resize_size], antialias=True) (one number: the "
        "shorter side) and center_crop(img, [crop_size, crop_size]); mean and std need the shape (3, 1, 1).",
    ],
)


# ----------------------------------------------------------------- q2
BN_PROCEDURES = {
    "A": "freeze(model) except the head, then run batches through the model in model.train() mode.",
    "B": "freeze(model) except the head, call model.eval(), then run batches through the model.",
    "C": "with torch.no_grad(): run batches through model.train(); no optimizer step is ever taken.",
    "D": "freeze(model) except the head, then train with ptcourse.fit.",
    "E": "freeze(model) except the head, call set_train_mode(model), then run batches through the model.",
    "F": "keep every parameter trainable and train with the optimizer's learning rate set to 0.",
}
_FIXED = {"B", "D", "E"}
_WHY = {
    "A": "one procedure you accepted runs a frozen BatchNorm layer in training mode: it updates its running "
         "statistics even though its parameters get no gradient",
    "C": "one procedure you accepted relies on torch.no_grad(); it stops gradients, not the running averages, "
         "which a BatchNorm layer in training mode updates on every forward pass",
    "F": "one procedure you accepted keeps the model in training mode; a learning rate of 0 stops the weights, "
         "not the running statistics",
}


def _check_q2(answer: Any) -> tuple[bool, str]:
    return check_letters(answer, BN_PROCEDURES, _FIXED, _WHY,
                         "only eval mode stops the running averages; fit and set_train_mode put frozen modules in it.",
                         "procedure(s) that keep the statistics fixed")


q2 = Exercise(
    "q2",
    "Frozen means frozen: BatchNorm statistics",
    check=_check_q2,
    hints=[
        "A BatchNorm layer in training mode updates running_mean and running_var on every forward pass, "
        "whatever requires_grad says and whether or not an optimizer steps.",
        "Look for the procedures that end with the frozen layers in eval mode; read the docstring of "
        "ptcourse.training.set_train_mode.",
    ],
)


# ----------------------------------------------------------------- q3
HEAD_LR, BACKBONE_LR, WEIGHT_DECAY = 1e-3, 1e-4, 0.05


def _q3_groups(answer: Any, model: nn.Module) -> list[dict[str, Any]]:
    groups = call_answer(answer, model, what="fine_tuning_groups")
    groups = getattr(groups, "param_groups", groups)  # an optimizer is fine too
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) and "params" in g for g in groups):
        raise AnswerError("fine_tuning_groups should return a list of dicts with 'params', 'lr' and 'weight_decay' "
                          "(what torch.optim.AdamW accepts), or the optimizer itself.")
    return list(groups)


def _check_q3(answer: Any) -> tuple[bool, str]:
    from ptcourse.vision import CourseResNet, new_head

    model = new_head(CourseResNet(width=4, num_classes=41), 10)
    name_of = {id(p): n for n, p in model.named_parameters()}
    seen: dict[str, dict[str, Any]] = {}
    for group in _q3_groups(answer, model):
        for p in group["params"]:
            name = name_of.get(id(p))
            if name is None:
                raise AnswerError("a group holds a tensor that is not a parameter of the model it was given.")
            if name in seen:
                return False, f"{name} is in two groups; every parameter belongs to exactly one."
            seen[name] = group
    if any("lr" not in g or "weight_decay" not in g for g in seen.values()):
        return False, ("give every group its own 'lr' and 'weight_decay'; a group without them silently gets the "
                       "optimizer's defaults (AdamW: lr 1e-3, weight_decay 0.01).")
    missing = [n for n in name_of.values() if n not in seen]
    if missing:
        return False, f"{len(missing)} parameter(s) are in no group, e.g. {missing[0]}: they would never be trained."
    for name, group in seen.items():  # learning rates first: the bigger mistake
        lr, want_lr = float(group.get("lr", math.nan)), HEAD_LR if name.startswith("fc.") else BACKBONE_LR
        if not math.isclose(lr, want_lr, rel_tol=1e-6):
            part = "the new head" if name.startswith("fc.") else "the pretrained backbone"
            return False, f"{name} ({part}) has learning rate {lr:g}; check which rate goes to which part."
    for name, group in seen.items():
        wd, want_wd = float(group.get("weight_decay", 0.0)), WEIGHT_DECAY if model.get_parameter(name).ndim >= 2 else 0.0
        if not math.isclose(wd, want_wd, abs_tol=1e-12):
            return False, (f"{name} has weight decay {wd:g}; decay applies to tensors with two or more dimensions "
                           "(weights of convolutions and linear layers), not to biases or BatchNorm weights.")
    return True, "a 10x smaller rate for the pretrained backbone, the full rate for the new head, decay on weights only."


q3 = Exercise(
    "q3",
    "Parameter groups for fine-tuning",
    check=_check_q3,
    hints=[
        "The new head's parameters are named fc.weight and fc.bias; every other parameter is the pretrained backbone.",
        "ptcourse.finetune.param_groups(model, {pattern: rate}, default_lr=..., weight_decay=...) does the grouping "
        "and the weight-decay rule; which part should the pattern select?",
    ],
)


# ----------------------------------------------------------------- q4
ACC_FINE_TUNE = [0.812, 0.774, 0.801, 0.845, 0.790]  # test accuracy, seeds 0..4
ACC_SCRATCH = [0.741, 0.752, 0.716, 0.790, 0.733]    # the same seeds: the same labelled images


def _q4_reference() -> dict[str, float]:
    from scipy import stats

    d = [a - b for a, b in zip(ACC_FINE_TUNE, ACC_SCRATCH)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    se = sd / math.sqrt(n)
    t = stats.t.ppf(0.975, n - 1)
    return {"mean": mean, "se": se, "low": mean - t * se, "high": mean + t * se, "sd": sd, "t": t}


def _check_q4(answer: Any) -> tuple[bool, str]:
    if not isinstance(answer, (tuple, list)) or len(answer) != 4:
        raise AnswerError("give four numbers: (mean_difference, standard_error, ci_low, ci_high).")
    mean, se, low, high = (to_float(v, name) for v, name in zip(answer, ("mean_difference", "standard_error",
                                                                        "ci_low", "ci_high")))
    ref = _q4_reference()
    n = len(ACC_FINE_TUNE)
    if not close(mean, ref["mean"], tol=1e-4):
        return False, "mean_difference: average the per-seed differences fine-tune minus scratch."
    if close(se, ref["sd"], tol=1e-4):
        return False, "that is the standard deviation of the differences; the standard error divides it by sqrt(n)."
    if close(se, ref["sd"] * math.sqrt((n - 1) / n) / math.sqrt(n), tol=1e-5):
        return False, "use the sample standard deviation (divide by n - 1, numpy's ddof=1)."
    unpaired = math.sqrt(sum(_var(a) for a in (ACC_FINE_TUNE, ACC_SCRATCH)) / n)
    if close(se, unpaired, tol=1e-4):
        return False, ("that standard error treats the two lists as independent samples; they are paired by seed "
                       "(same labelled images), so work with the per-seed differences.")
    if not close(se, ref["se"], tol=1e-4):
        return False, "standard_error: the standard deviation of the per-seed differences divided by sqrt(n)."
    if close(low, mean - 1.96 * se, tol=1e-4):
        return False, "with 5 seeds use Student's t with n - 1 = 4 degrees of freedom, not the normal 1.96."
    if not (close(low, ref["low"], tol=1e-4) and close(high, ref["high"], tol=1e-4)):
        return False, "the interval is mean_difference -/+ t * standard_error, with t the 97.5 % quantile of t(n - 1)."
    return True, (f"fine-tuning gains {ref['mean']:+.3f} (95 % CI {ref['low']:+.3f} to {ref['high']:+.3f}): the "
                  "interval excludes 0, so five paired seeds resolve this gap.")


def _var(values: list[float]) -> float:
    m = sum(values) / len(values)
    return sum((v - m) ** 2 for v in values) / (len(values) - 1)


q4 = Exercise(
    "q4",
    "A paired comparison over seeds",
    check=_check_q4,
    hints=[
        "The seeds pair the runs: seed s of both recipes saw the same labelled images. Start from the five "
        "differences fine-tune minus scratch.",
        "standard error = std(differences, ddof=1) / sqrt(5); the 95 % interval uses scipy.stats.t.ppf(0.975, df=4).",
    ],
)
