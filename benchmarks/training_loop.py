#!/usr/bin/env python3
"""Does ptcourse.fit cost anything over a hand-written loop? Measure it, with its spread.

Trains the same small CNN on the same data two ways: ``raw``, the minimal loop of
chapter 01 (move the batch, zero the gradients, forward, backward, step), and ``fit``
(progress bar on; float32 like the raw loop), both over the same standard DataLoader.

The runs are *paired and interleaved*: each pair runs raw then fit, or fit then raw
(alternating), with the same seed, so slow drifts of a shared machine hit both arms of a
pair alike. Each run lasts about ``--seconds`` (whole epochs, calibrated on the raw loop),
long enough that timer and start-up noise do not matter. For each thread count the script
reports the median of the per-pair ratios ``fit/raw`` (throughput; 1.00 means no
overhead), their interquartile range, and a bootstrap 95% confidence interval of the
median. The requirement is a median ``fit/raw >= 0.97``.

Usage: ``python benchmarks/training_loop.py [--pairs 10] [--seconds 3] [--threads 1 2]``
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

import ptcourse
from ptcourse.data import load_splits

REQUIRED = 0.97


def make_model(width: int = 32) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10),
    )


def raw_loop(model: nn.Module, loader: DataLoader, epochs: int, device: torch.device) -> None:
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


def with_fit(model: nn.Module, loader: DataLoader, epochs: int, device: torch.device) -> None:
    # amp=False: both loops compute in float32 (TF32 allowed on GPUs, see main), so only the loop differs
    ptcourse.fit(model, loader, epochs=epochs, lr=1e-3, loss_fn=nn.CrossEntropyLoss(), device=device, amp=False)


def seconds(run: Callable, loader: DataLoader, epochs: int, device: torch.device) -> float:
    """Wall time of one run from a fresh model, the same seed for every run."""
    ptcourse.seed_everything(0)
    model = make_model().to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(model, loader, epochs, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def median_and_spread(ratios: list[float], seed: int = 0) -> dict[str, float]:
    """Median, interquartile range and a bootstrap 95% confidence interval of the median."""
    values = np.asarray(ratios)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(5000, len(values)), replace=True), axis=1)
    q1, q3 = np.percentile(values, [25, 75])
    lo, hi = np.percentile(medians, [2.5, 97.5])
    return {"median": float(np.median(values)), "q1": float(q1), "q3": float(q3), "ci_low": float(lo),
            "ci_high": float(hi)}


def measure(threads: int, loader: DataLoader, device: torch.device, pairs: int, target_seconds: float,
            n_images: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    for run in (raw_loop, with_fit):  # warm-up: first-call allocations, kernel selection, imports
        seconds(run, loader, 1, device)
    epochs = max(1, math.ceil(target_seconds / seconds(raw_loop, loader, 1, device)))
    ratios, speeds = [], {"raw": [], "fit": []}
    for i in range(pairs):
        order = [("raw", raw_loop), ("fit", with_fit)][:: 1 if i % 2 == 0 else -1]
        took = {name: seconds(run, loader, epochs, device) for name, run in order}
        for name in took:
            speeds[name].append(epochs * n_images / took[name])
        ratios.append(took["raw"] / took["fit"])  # throughput ratio fit/raw
        print(f"  pair {i + 1:2d} ({order[0][0]} first): raw {took['raw']:.2f} s, fit {took['fit']:.2f} s, "
              f"fit/raw {ratios[-1]:.3f}", flush=True)
    summary = median_and_spread(ratios)
    summary.update(threads=threads, epochs=epochs, raw=float(np.median(speeds["raw"])),
                   fit=float(np.median(speeds["fit"])),  # the order effect that alternating cancels:
                   raw_first=float(np.median(ratios[0::2])), fit_first=float(np.median(ratios[1::2] or [np.nan])))
    return summary


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10, help="paired runs per thread count")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one run")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to measure")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)

    device = ptcourse.get_device()
    if device.type == "cuda":  # the same matmul precision for both (fit enables TF32 on CUDA)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    train = load_splits("mnist").train
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, pin_memory=device.type == "cuda")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"device {device}, torch {torch.__version__}, {os.cpu_count()} cores, load average {load[0]:.1f}; "
          f"{train.name}: {len(train)} images of {tuple(train.x.shape[2:])}, batch {args.batch_size}; "
          f"{args.pairs} pairs of ~{args.seconds:g} s runs per thread count")
    results = []
    for threads in args.threads:
        print(f"{threads} thread(s):")
        results.append(measure(threads, loader, device, args.pairs, args.seconds, len(train)))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"load average after: {load[0]:.1f}")
    for r in results:
        verdict = "ok" if r["median"] >= REQUIRED else f"BELOW {REQUIRED}"
        print(f"fit/raw ({r['threads']} thread{'s' if r['threads'] > 1 else ''}) = {r['median']:.3f}  "
              f"[IQR {r['q1']:.3f}-{r['q3']:.3f}; 95% CI of the median {r['ci_low']:.3f}-{r['ci_high']:.3f}; "
              f"raw {r['raw']:.0f} samples/s, {r['epochs']} epochs a run; median when raw ran first "
              f"{r['raw_first']:.3f}, when fit ran first {r['fit_first']:.3f}]  {verdict}")
    return results


if __name__ == "__main__":
    main()
