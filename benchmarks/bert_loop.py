#!/usr/bin/env python3
"""Does ptcourse.fit cost anything over a hand-written loop when pretraining BERT? Measure it.

Pretrains the chapter-06 mini-BERT (``BertForPreTraining``, MLM + NSP) on the same batches two
ways, in one run:

1. ``raw``: a minimal hand-written loop: move the batch, autocast, ``model(**batch).loss``,
   backward, clip, AdamW step, scheduler step;
2. ``fit``: ``ptcourse.fit`` as chapter 06 calls it (loss_fn logging L_MLM and L_NSP, progress
   bar, per-step scheduler, clipping, the same autocast).

The batches are made once (padded and masked by the chapter's collator) and reused, so data
loading is not measured. Each loop runs ``--repeats`` times, interleaved, from the same initial
weights; the best throughput (real tokens per second, padding excluded) is kept. The model size
comes from a profile's recipe: ``full`` (4 layers x 256) on a CUDA GPU, ``fast`` otherwise.
The last line is ``bert fit/raw = X.XX``.

Usage: ``python benchmarks/bert_loop.py [--sizes fast|standard|full] [--batches 30] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from contextlib import nullcontext

import torch
from torch import nn

import ptcourse
from ptcourse.bert import make_optimizer, new_mini_bert, prepare_data, pretraining_losses, pretraining_recipe
from ptcourse.device import amp_dtype
from ptcourse.text import PretrainingCollator


def raw_loop(model, batches, recipe, device):
    """The minimal loop, with the same optimizer, schedule, clipping and precision as fit(amp="auto")."""
    optimizer, scheduler = make_optimizer(model, recipe, steps=len(batches))
    dtype = amp_dtype(device)  # bf16 on recent GPUs, fp16 (with a gradient scaler) on older ones, none on CPU
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    model.train()
    for batch in batches:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with autocast:
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()


def with_fit(model, batches, recipe, device):
    optimizer, scheduler = make_optimizer(model, recipe, steps=len(batches))
    ptcourse.fit(model, batches, epochs=1, optimizer=optimizer, scheduler=scheduler,
                 loss_fn=pretraining_losses, max_grad_norm=1.0, amp="auto", device=device)


def timed(run, batches, recipe, tokenizer, device) -> float:
    model = new_mini_bert(tokenizer, recipe).to(device)  # seeded: the same initial weights every time
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(model, batches, recipe, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return sum(int(b["attention_mask"].sum()) for b in batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", choices=["fast", "standard", "full"], default=None,
                        help="whose recipe sizes to use (default: full on CUDA, fast otherwise)")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = ptcourse.get_device()
    sizes = args.sizes or ("full" if device.type == "cuda" else "fast")
    os.environ["PTCOURSE_PROFILE"] = sizes
    recipe = pretraining_recipe()
    recipe = dataclasses.replace(recipe, n_pairs=args.batches * recipe.batch_size,
                                 n_held_out_pairs=min(recipe.n_held_out_pairs, 256))
    data = prepare_data(recipe)
    collate = PretrainingCollator(data.tokenizer, recipe.mlm_probability, seed=0)
    batches = [collate([data.train_set[j] for j in range(i, min(i + recipe.batch_size, len(data.train_set)))])
               for i in range(0, len(data.train_set), recipe.batch_size)]
    if device.type == "cuda":  # the same matmul precision for both (fit enables TF32 on CUDA)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    runs = {"raw": raw_loop, "fit": with_fit}
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; {sizes} recipe: "
          f"{recipe.num_layers} layers x {recipe.hidden_size}, vocabulary {len(data.tokenizer)}, "
          f"batch {recipe.batch_size} pairs, {len(batches)} batches, {tokens} tokens; "
          f"{args.repeats} repeats (best kept); corpus: {data.train_corpus.name}")
    for name, run in runs.items():  # warm-up: first-call allocations and kernel selection
        timed(run, batches[:3], recipe, data.tokenizer, device)
    best = {name: 0.0 for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            best[name] = max(best[name], timed(run, batches, recipe, data.tokenizer, device))
    for name, speed in best.items():
        print(f"{name:>5}: {speed:10.0f} tokens/s")
    print(f"bert fit/raw = {best['fit'] / best['raw']:.2f}")


if __name__ == "__main__":
    main()
