"""Profiles: one notebook, three sizes.

``PTCOURSE_PROFILE`` chooses how big every experiment is:

- ``fast``: the whole course runs under the test suite on a 2-core CPU;
- ``standard``: a laptop CPU, a few minutes a notebook, results that show the effect;
- ``full``: one GPU, real datasets at full size;
- ``auto`` (the default): ``full`` on a CUDA GPU, ``standard`` otherwise.

Usage::

    from ptcourse import by_profile
    epochs = by_profile(fast=2, standard=10, full=30)
"""

from __future__ import annotations

import os
from typing import TypeVar

PROFILES = ("fast", "standard", "full")
T = TypeVar("T")


def profile() -> str:
    """Return the profile in force: ``"fast"``, ``"standard"`` or ``"full"`` (chapter 00).

    Usage: ``print(ptcourse.profile())``
    """
    name = os.environ.get("PTCOURSE_PROFILE", "auto").strip().lower() or "auto"
    if name == "auto":
        import torch

        return "full" if torch.cuda.is_available() else "standard"
    if name not in PROFILES:
        raise ValueError(
            f"PTCOURSE_PROFILE={name!r} is not a profile; expected one of "
            f"{', '.join(PROFILES)} or auto. Fix it with %env PTCOURSE_PROFILE=standard "
            "in the notebook, or unset it (the default is auto)."
        )
    return name


def by_profile(*, fast: T, standard: T, full: T) -> T:
    """Return the value given for the profile in force (chapter 00).

    Usage: ``n_train = by_profile(fast=500, standard=10_000, full=60_000)``
    """
    return {"fast": fast, "standard": standard, "full": full}[profile()]


def describe() -> str:
    """One line naming the profile in force and how to change it (chapter 00).

    Usage: ``print(ptcourse.profiles.describe())``
    """
    return (
        f"Profile: {profile()} (set PTCOURSE_PROFILE=fast|standard|full|auto "
        "before starting Jupyter to change it)"
    )
