"""Checks for the exercises of chapter 03 · Autoencoder pretraining.

Usage (in ``exercises/03_autoencoder_pretraining_exercises.ipynb``)::

    from ptcourse.exercises import ch03 as ex
    ex.q1.check((mse_mean, per_image))   # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: what ``nn.MSELoss`` averages over (a quick question with numbers)
- q2: which procedures keep the protocol honest? (a quick question)
- q3: the size of the bottleneck (a small experiment)
- q4: how far fine-tuning moves the pretrained encoder (a small experiment with ``ptcourse.finetune``)
"""

from __future__ import annotations

from typing import Any

from ptcourse.exercises.core import AnswerError, Exercise, check_letters, close, require_type, to_float

__all__ = ["PROCEDURES", "q1", "q2", "q3", "q4"]


# ----------------------------------------------------------------- q1
_N, _SIDE, _SSE = 8, 28, 39.2


def _check_q1(answer: Any) -> tuple[bool, str]:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise AnswerError("give a pair (mse_mean, per_image) of two numbers.")
    mse_mean = to_float(answer[0], "mse_mean")
    per_image = to_float(answer[1], "per_image")
    d = _SIDE * _SIDE
    want_mean, want_per_image = _SSE / (_N * d), _SSE / _N
    ok_mean = close(mse_mean, want_mean, tol=1e-6, rel=1e-3)
    ok_image = close(per_image, want_per_image, tol=1e-6, rel=1e-3)
    if ok_mean and ok_image:
        return True, "nn.MSELoss averages over images and pixels; the per-image error is D times larger."
    if close(mse_mean, _SSE / d, rel=1e-3) or close(mse_mean, _SSE / _SIDE, rel=1e-3):
        return False, "mse_mean: the mean reduction divides by the number of *all* elements of the batch."
    if close(mse_mean, want_per_image, rel=1e-3) and close(per_image, want_mean, rel=1e-3):
        return False, "the two values are swapped."
    if ok_mean:
        return False, "mse_mean is right; per_image is the sum over pixels, averaged over the images only."
    if ok_image:
        return False, "per_image is right; for mse_mean count every element: images times pixels."
    return False, "count the elements: N images of H x W pixels each (one channel)."


q1 = Exercise(
    "q1",
    "What nn.MSELoss averages over",
    check=_check_q1,
    hints=[
        "reduction='mean' divides the sum of squared errors by the number of elements of the tensor.",
        "Count the elements of the batch tensor: images x channels x height x width. The per-image error "
        "averages over the images only.",
    ],
)


# ----------------------------------------------------------------- q2
PROCEDURES = {
    "A": "Pretrain the autoencoder on the training and the test images together; no labels are used.",
    "B": "Choose the fine-tuning epoch by validation accuracy.",
    "C": "Choose the encoder learning-rate multiplier by test accuracy; it is only one number.",
    "D": "'Pretrain' the encoder as a classifier on the few labelled images, then fine-tune it on the same images.",
    "E": "Pretrain on the training images without labels, stopping when the validation reconstruction loss "
         "stops improving.",
    "F": "After all choices are made, evaluate each finished model on the test set once and report it.",
}
_HONEST = {"B", "E", "F"}
_WHY = {
    "A": "one procedure you accepted lets the test images shape the model, even without their labels",
    "C": "one procedure you accepted makes a choice by looking at test accuracy",
    "D": "one procedure you accepted is supervised training on the labelled data called 'pretraining'",
}


def _check_q2(answer: Any) -> tuple[bool, str]:
    return check_letters(answer, PROCEDURES, _HONEST, _WHY,
                         "those keep the test set untouched until the end and pretrain without labels.",
                         "honest procedure(s); every honest one belongs in the set")


q2 = Exercise(
    "q2",
    "An honest protocol",
    check=_check_q2,
    hints=[
        "The test set may only be used for the final report, never to shape or choose anything.",
        "Pretraining uses no labels; reusing the labelled data with its labels is just longer supervised training.",
    ],
)


# ----------------------------------------------------------------- q3
def _check_q3(answer: Any) -> tuple[bool, str]:
    require_type(answer, dict, "your results")
    mse = {}
    for key, value in answer.items():
        try:
            dim = int(key)
        except (TypeError, ValueError):
            raise AnswerError(f"the keys should be latent sizes (ints), got {key!r}.") from None
        mse[dim] = to_float(value, f"mse[{key}]")
    if not {4, 32} <= set(mse):
        raise AnswerError(f"measure at least the latent sizes 4 and 32 (yours: {sorted(mse)}).")
    for dim, value in mse.items():
        if not 0 < value < 0.3:
            raise AnswerError(
                f"mse[{dim}] = {value}: a mean squared error of pixels in [0, 1] should be a small positive "
                "number; use F.mse_loss (mean reduction) on the validation images."
            )
    if not mse[4] > mse[32]:
        return False, (
            "a 4-number bottleneck should reconstruct worse than a 32-number one; check that each autoencoder "
            "was built with its own latent size and trained to convergence."
        )
    return True, (
        f"validation MSE {mse[4]:.4f} with 4 numbers vs {mse[32]:.4f} with 32: a narrower bottleneck keeps "
        "less of the image."
    )


q3 = Exercise(
    "q3",
    "The size of the bottleneck",
    check=_check_q3,
    hints=[
        "Build ConvAutoencoder(image_size, latent_dim=...) for each size and pretrain it with the same function.",
        "Measure each autoencoder's mean squared error between the validation images and their "
        "reconstructions, in eval mode and without gradients; the dict maps each latent size to its error.",
    ],
)


# ----------------------------------------------------------------- q4
def _check_q4(answer: Any) -> tuple[bool, str]:
    require_type(answer, dict, "your results")
    dist = {}
    for key, value in answer.items():
        try:
            multiplier = float(key)
        except (TypeError, ValueError):
            raise AnswerError(f"the keys should be the learning-rate multipliers, got {key!r}.") from None
        dist[multiplier] = to_float(value, f"distance[{key}]")
    if not {1.0, 0.01} <= set(dist):
        raise AnswerError(f"measure the multipliers 1.0 and 0.01 (yours: {sorted(dist)}).")
    if any(v < 0 for v in dist.values()):
        raise AnswerError("a distance cannot be negative.")
    if dist[1.0] == 0 or dist[0.01] == 0:
        return False, (
            "a distance of zero means the encoder did not move: was it frozen, or did the L2SP snapshot come "
            "after training instead of before?"
        )
    if close(dist[1.0], dist[0.01], rel=1e-3):
        return False, (
            "both runs moved the encoder by the same amount; check that the encoder's parameter group really "
            "uses LR * multiplier."
        )
    if not dist[0.01] < dist[1.0]:
        return False, (
            "the smaller encoder learning rate should keep the encoder closer to its pretrained weights; check "
            "which distance belongs to which multiplier."
        )
    return True, (
        f"||theta' - theta_hat|| = {dist[1.0]:.3f} at x1 vs {dist[0.01]:.3f} at x0.01: a small encoder learning "
        "rate keeps fine-tuning close to the pretrained starting point."
    )


q4 = Exercise(
    "q4",
    "How far fine-tuning moves the encoder",
    check=_check_q4,
    hints=[
        "Create reg = L2SP(model, new='head') right after loading the pretrained weights; after training, "
        "reg.distance() is ||theta' - theta_hat|| over the encoder.",
        "param_groups takes a dict from a module name to that module's learning rate; give the encoder the "
        "head's rate times the multiplier, and build a fresh model and tracker for each multiplier.",
    ],
)
