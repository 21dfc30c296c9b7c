#!/usr/bin/env python3
"""Does ptcourse.fit cost anything over a hand-written loop? Measure it.

Trains the same small CNN on the same data three ways, in one run:

1. ``raw``: a minimal hand-written PyTorch loop over a standard DataLoader;
2. ``fit``: ``ptcourse.fit`` (progress bar included; float32 like the raw loop) over the same DataLoader;
3. ``fit+device``: ``ptcourse.fit`` over the GPU-resident ``DeviceLoader``.

Each is run ``--repeats`` times, interleaved, and its best throughput (samples/s) is kept,
so that a busy machine penalises all three alike. The last line is ``fit/raw = X.XX``.

Usage: ``python benchmarks/training_loop.py [--epochs 6] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

import ptcourse
from ptcourse.data import DeviceLoader, load_splits


def make_model(width: int = 32) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10),
    )


def raw_loop(model, loader, epochs, device):
    """The minimal loop: move the batch, zero the gradients, forward, backward, step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()


def with_fit(model, loader, epochs, device):
    # amp=False: both loops compute in float32 (TF32 allowed on GPUs, see main), so only the
    # loop itself differs; the progress bar and everything else stay at their defaults.
    ptcourse.fit(model, loader, epochs=epochs, lr=1e-3, loss_fn=nn.CrossEntropyLoss(), device=device, amp=False)


def timed(run, loader, epochs, device, n_samples) -> float:
    ptcourse.seed_everything(0)
    model = make_model().to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(model, loader, epochs, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * n_samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    device = ptcourse.get_device()
    if device.type == "cuda":  # the same matmul precision for all three (fit enables TF32 on CUDA)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    train = load_splits("mnist").train
    pin = device.type == "cuda"
    loaders = {
        "raw": DataLoader(train, batch_size=args.batch_size, shuffle=True, pin_memory=pin),
        "fit": DataLoader(train, batch_size=args.batch_size, shuffle=True, pin_memory=pin),
        "fit+device": DeviceLoader(train, batch_size=args.batch_size, shuffle=True, device=device),
    }
    runs = {"raw": raw_loop, "fit": with_fit, "fit+device": with_fit}
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{train.name} {len(train)} images of {tuple(train.x.shape[2:])}, batch {args.batch_size}, "
          f"{args.epochs} epochs x {args.repeats} repeats (best kept)")
    for name in runs:  # warm-up: first-call allocations and kernel selection
        timed(runs[name], loaders[name], 1, device, len(train))
    best = {name: 0.0 for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            best[name] = max(best[name], timed(run, loaders[name], args.epochs, device, len(train)))
    for name, speed in best.items():
        print(f"{name:>11}: {speed:10.0f} samples/s")
    print(f"fit+device/raw = {best['fit+device'] / best['raw']:.2f}")
    print(f"fit/raw = {best['fit'] / best['raw']:.2f}")


if __name__ == "__main__":
    main()
