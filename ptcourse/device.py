"""Which device to compute on, which mixed-precision type it supports, and a summary.

Usage::

    from ptcourse import get_device, hardware_summary
    device = get_device()          # cuda, then mps, then cpu
    print(hardware_summary())
"""

from __future__ import annotations

import os
import platform
import re

import torch

_VALID = ("cpu", "cuda", "mps")
_DEVICE_NAME = re.compile(r"(cpu|mps|cuda)(:\d+)?")


def as_device(device: torch.device | str) -> torch.device:
    """``device`` as a ``torch.device`` that exists on this machine, else a clear error (chapter 01).

    Usage: ``as_device("cuda:0")``
    """
    if isinstance(device, str):
        name = device.strip().lower()
        if not _DEVICE_NAME.fullmatch(name):
            raise ValueError(f"{device!r} is not a device; expected cpu, cuda, cuda:N or mps")
        device = torch.device(name)
    elif not isinstance(device, torch.device):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', or a torch.device, "
                        f"got {type(device).__name__} {device!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"{device} was asked for, but no CUDA GPU is available here; use get_device()")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"{device} was asked for, but this machine has {torch.cuda.device_count()} CUDA GPU(s): "
                               f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"{device} was asked for, but Apple MPS is not available here; use get_device()")
    elif device.type not in _VALID:
        raise ValueError(f"{device} is not supported; expected cpu, cuda, cuda:N or mps")
    return device


def get_device() -> torch.device:
    """Return CUDA if available, then Apple MPS, then CPU (chapter 00).

    Set ``PTCOURSE_DEVICE`` (e.g. ``cpu`` or ``cuda:1``) to override the choice.

    Usage: ``model.to(get_device())``
    """
    wanted = os.environ.get("PTCOURSE_DEVICE", "").strip().lower()
    if wanted:
        try:
            return as_device(wanted)
        except (ValueError, RuntimeError) as err:
            raise type(err)(f"PTCOURSE_DEVICE={wanted!r}: {err}. Unset it or set it to a device "
                            "this machine has.") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype to use on ``device`` by default, or ``None`` for no autocast (chapter 00).

    bf16 on CUDA GPUs that support it, fp16 on older CUDA GPUs, none on MPS and CPU
    (autocast there rarely pays off for the small models of this course). On a CUDA GPU
    bf16 needs compute capability 8.0 (Ampere) or newer; older GPUs get fp16.

    Usage: ``amp_dtype(torch.device("cuda"))  # torch.bfloat16 on an A100``
    """
    device = as_device(device)
    if device.type == "cuda":
        return torch.bfloat16 if _native_bf16(device) else torch.float16
    return None


def _native_bf16(device: torch.device) -> bool:
    """bf16 in hardware: Ampere (compute capability 8.0) and newer. Older GPUs such as
    the T4 only emulate it, slowly, although ``torch.cuda.is_bf16_supported()`` says yes."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def hardware_summary(device: torch.device | str | None = None) -> dict[str, str]:
    """Versions and capabilities of the machine, as a dict of printable strings (chapter 00).

    Usage: ``for k, v in hardware_summary().items(): print(f"{k:>18}: {v}")``
    """
    device = as_device(device) if device is not None else get_device()
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(terse=True),
        "device": str(device),
        "cpu threads": str(torch.get_num_threads()),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["device name"] = props.name
        info["device memory"] = f"{props.total_memory / 2**30:.1f} GiB"
        info["compute capability"] = f"{props.major}.{props.minor}"
        info["CUDA (torch build)"] = str(torch.version.cuda)
        info["bf16 supported"] = "yes (native)" if _native_bf16(device) else "emulated only (use fp16)"
        info["TF32 capable"] = str(props.major >= 8)
    elif device.type == "mps":
        info["device name"] = "Apple GPU (Metal Performance Shaders)"
        info["bf16 supported"] = "macOS 14+ with torch 2.6+; fp16 autocast from torch 2.5"
    else:
        info["device name"] = platform.processor() or platform.machine()
        info["bf16 supported"] = "emulated on CPU (autocast works, rarely faster)"
    dtype = amp_dtype(device)
    info["default autocast"] = str(dtype).replace("torch.", "") if dtype else "off"
    return info
