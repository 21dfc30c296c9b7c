"""ptcourse: the helper package of the course *Pretraining and Fine-tuning, hands-on*.

Usage::

    import ptcourse
    device = ptcourse.get_device()
    ptcourse.seed_everything(0)
    history = ptcourse.fit(model, train_loader, epochs=5, val_loader=val_loader)

Top-level names are imported lazily, so ``import ptcourse`` is fast and does not
load torch until a function that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it (imported on first use)
_EXPORTS = {
    "get_device": "device",
    "amp_dtype": "device",
    "hardware_summary": "device",
    "seed_everything": "repro",
    "profile": "profiles",
    "by_profile": "profiles",
    "fit": "training",
    "evaluate": "training",
    "accuracy": "training",
    "plot_history": "plots",
    "record_result": "results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"ptcourse.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ptcourse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
