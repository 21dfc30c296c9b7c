"""fit / evaluate: real behaviour, checked numerically."""

from __future__ import annotations

import copy

import numpy as np

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import ptcourse
from ptcourse import accuracy, evaluate, fit
from ptcourse.data import DeviceLoader

CPU = torch.device("cpu")


def toy_data(n: int = 96, d: int = 8, classes: int = 3, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return TensorDataset(x, y % classes)


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def test_learns_and_reports_history():
    data = toy_data()
    model = mlp()
    history = fit(model, DeviceLoader(data, 16, shuffle=True, device=CPU), epochs=15, lr=1e-2,
                  loss_fn=nn.CrossEntropyLoss(), val_loader=DeviceLoader(data, 32, device=CPU),
                  metrics={"acc": accuracy}, device=CPU, progress=False)
    assert list(history["epoch"]) == list(range(1, 16))
    assert {"train_loss", "val_loss", "val_acc", "lr", "seconds"} <= set(history.columns)
    assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]
    assert history["val_acc"].iloc[-1] > 0.8


def grads_after_one_step(model, loader, accum):
    """Capture the gradients that the first optimizer step sees."""
    seen = {}

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            if not seen:
                seen.update({n: p.grad.clone() for n, p in model.named_parameters()})
            return super().step(closure)

    opt = Spy(model.parameters(), lr=0.1)
    fit(model, loader, epochs=1, optimizer=opt, loss_fn=nn.CrossEntropyLoss(),
        grad_accum_steps=accum, device=CPU, progress=False)
    return seen


@pytest.mark.parametrize("k", [2, 4])
def test_gradient_accumulation_equals_large_batch(k):
    data = toy_data(n=64)
    big = grads_after_one_step(mlp(), DeviceLoader(data, 8 * k, device=CPU), accum=1)
    small = grads_after_one_step(mlp(), DeviceLoader(data, 8, device=CPU), accum=k)
    for name in big:
        torch.testing.assert_close(small[name], big[name], rtol=1e-5, atol=1e-6)


def test_gradient_accumulation_counts_steps():
    data = toy_data(n=64)
    opt_steps = []
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: (opt_steps.append(step), 1.0)[1])
    opt_steps.clear()
    fit(model, DeviceLoader(data, 8, device=CPU), epochs=2, optimizer=opt, scheduler=sched,
        loss_fn=nn.CrossEntropyLoss(), grad_accum_steps=4, device=CPU, progress=False)
    assert opt_steps == [1, 2, 3, 4]  # 8 micro-batches / 4 = 2 steps per epoch


class Interrupt(Exception):
    pass


class InterruptingLoader:
    """Yields the batches of ``loader`` but raises during epoch ``at_epoch``."""

    def __init__(self, loader, at_epoch):
        self.loader, self.at_epoch, self.epoch = loader, at_epoch, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.epoch += 1
        for i, batch in enumerate(self.loader):
            if self.epoch == self.at_epoch and i == 2:
                raise Interrupt
            yield batch


def run(tmp_path, loader_kind, interrupt_at=None):
    ptcourse.seed_everything(123)
    data = toy_data(n=80)
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=6 * 5)
    if loader_kind == "device":
        loader = DeviceLoader(data, 16, shuffle=True, device=CPU)
    else:
        loader = DataLoader(data, batch_size=16, shuffle=True)
    if interrupt_at:
        loader = InterruptingLoader(loader, interrupt_at)
    return model, dict(model=model, train_loader=loader, epochs=6, optimizer=opt, scheduler=sched,
                       loss_fn=nn.CrossEntropyLoss(), device=CPU, progress=False,
                       checkpoint_path=tmp_path / "ckpt.pt")


@pytest.mark.parametrize("loader_kind", ["device", "dataloader"])
def test_resume_after_interruption_reproduces_the_uninterrupted_run(tmp_path, loader_kind):
    full_model, kwargs = run(tmp_path / "a", loader_kind)
    full_history = fit(**kwargs)

    _, kwargs = run(tmp_path / "b", loader_kind, interrupt_at=4)
    with pytest.raises(Interrupt):
        fit(**kwargs)
    ptcourse.seed_everything(999)  # the RNG state must come from the checkpoint, not from here
    resumed_model, kwargs = run(tmp_path / "b", loader_kind)
    kwargs["resume"] = True
    resumed_history = fit(**kwargs)

    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resume"
    assert list(resumed_history["train_loss"]) == list(full_history["train_loss"])


def test_checkpoint_loads_with_weights_only(tmp_path):
    _, kwargs = run(tmp_path, "device")
    kwargs["epochs"] = 1
    fit(**kwargs)
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and set(ckpt) >= {"model", "optimizer", "scheduler", "scaler", "rng"}


def test_amp_on_cpu_runs():
    data = toy_data()
    for amp in (True, "bf16"):
        history = fit(mlp(), DeviceLoader(data, 32, device=CPU), epochs=2, loss_fn=nn.CrossEntropyLoss(),
                      amp=amp, device=CPU, progress=False, val_loader=DeviceLoader(data, 32, device=CPU))
        assert torch.isfinite(torch.tensor(history["val_loss"].to_numpy())).all()


def test_gradient_clipping_limits_the_update():
    data = toy_data()
    model = mlp()
    before = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss = lambda out, y: 1e4 * nn.functional.cross_entropy(out, y)  # noqa: E731
    fit(model, DeviceLoader(data, 96, device=CPU), epochs=1, optimizer=opt, loss_fn=loss,
        max_grad_norm=0.5, device=CPU, progress=False)
    change = torch.cat([(p - q).flatten() for p, q in zip(model.parameters(), before.parameters())])
    assert change.norm() <= 0.5 + 1e-5


def test_early_stopping_restores_the_best_epoch():
    data = toy_data()
    model = mlp()
    history = fit(model, DeviceLoader(data, 16, device=CPU), epochs=40, lr=0.05,
                  loss_fn=nn.CrossEntropyLoss(), val_loader=DeviceLoader(data[:16], 16, device=CPU),
                  early_stopping_patience=2, monitor="val_loss", device=CPU, progress=False)
    best = history["val_loss"].min()
    assert len(history) < 40 and history.attrs["stopped_early"]
    final = evaluate(model, DeviceLoader(data[:16], 16, device=CPU), loss_fn=nn.CrossEntropyLoss())
    assert final["loss"] == pytest.approx(best, rel=1e-5)


class TwoTask(nn.Module):
    """Returns a dict of named losses, as a multi-task model does."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 16)
        self.a, self.b = nn.Linear(16, 3), nn.Linear(16, 2)

    def forward(self, x, y):
        h = torch.relu(self.body(x))
        return {"task_a": nn.functional.cross_entropy(self.a(h), y),
                "task_b": nn.functional.cross_entropy(self.b(h), (y > 0).long())}


def test_dict_of_named_losses_is_summed_and_logged():
    data = toy_data()
    history = fit(TwoTask(), DeviceLoader(data, 32, device=CPU), epochs=2, device=CPU, progress=False,
                  val_loader=DeviceLoader(data, 32, device=CPU))
    row = history.iloc[-1]
    assert row["train_loss"] == pytest.approx(row["train_task_a"] + row["train_task_b"], rel=1e-5)
    assert row["val_loss"] == pytest.approx(row["val_task_a"] + row["val_task_b"], rel=1e-5)


def test_hugging_face_model_with_loss():
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    ids = torch.randint(0, 50, (32, 8))
    labels = (ids[:, 0] > 25).long()
    batches = [{"input_ids": ids[i:i + 8], "labels": labels[i:i + 8]} for i in range(0, 32, 8)]
    history = fit(model, batches, epochs=3, lr=1e-3, device=CPU, progress=False, val_loader=batches,
                  metrics={"acc": accuracy})
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert 0 <= history["val_acc"].iloc[-1] <= 1
    no_labels = [{"input_ids": ids[:8]}]
    with pytest.raises(ValueError, match="no loss"):
        fit(model, no_labels, epochs=1, device=CPU, progress=False)


def test_standard_dataloader_and_device_loader_agree():
    data = toy_data()
    a = evaluate(mlp(), DataLoader(data, batch_size=32), loss_fn=nn.CrossEntropyLoss(), metrics={"acc": accuracy})
    b = evaluate(mlp(), DeviceLoader(data, 32, device=CPU), loss_fn=nn.CrossEntropyLoss(), metrics={"acc": accuracy})
    assert a == pytest.approx(b)


def test_channels_last_and_compile_give_the_same_training():
    images = torch.rand(32, 1, 8, 8)
    labels = torch.randint(0, 3, (32,))

    def cnn():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))

    runs = [dict(), dict(channels_last=True), dict(compile={"backend": "eager"})]
    losses = []
    for options in runs:
        loader = DeviceLoader((images, labels), 8, device=CPU)
        history = fit(cnn(), loader, epochs=2, loss_fn=nn.CrossEntropyLoss(), device=CPU, progress=False, **options)
        losses.append(history["train_loss"].to_list())
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert losses[2] == pytest.approx(losses[0], rel=1e-4)


def test_a_short_last_accumulation_group_is_scaled_by_its_own_size():
    data = toy_data(n=48)  # 6 micro-batches of 8 with k=4: groups of 4 and 2
    seen = []
    model = mlp()

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.append({n: p.grad.clone() for n, p in model.named_parameters()})
            return super().step(closure)

    fit(model, DeviceLoader(data, 8, device=CPU), epochs=1, optimizer=Spy(model.parameters(), lr=0.0),
        loss_fn=nn.CrossEntropyLoss(), grad_accum_steps=4, device=CPU, progress=False)
    reference = mlp()
    nn.functional.cross_entropy(reference(data.tensors[0][32:]), data.tensors[1][32:]).backward()
    assert len(seen) == 2
    for name, p in reference.named_parameters():
        torch.testing.assert_close(seen[1][name], p.grad, rtol=1e-5, atol=1e-6)


class NoLength(torch.utils.data.IterableDataset):
    """The examples of ``data`` with no ``len()``, as a stream would give them."""

    def __init__(self, data):
        self.data = data

    def __iter__(self):
        return iter(self.data)


def test_loader_without_length_flushes_the_last_group():
    data = toy_data(n=40)
    model = mlp()
    steps = []
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.register_step_post_hook(lambda *args: steps.append(1))
    loader = DataLoader(NoLength(data), batch_size=8)  # 5 batches, no len()
    fit(model, loader, epochs=1, optimizer=opt, loss_fn=nn.CrossEntropyLoss(), grad_accum_steps=2,
        device=CPU)  # progress bar without a total
    assert len(steps) == 3  # groups of 2, 2 and a flushed 1


def test_reduce_lr_on_plateau_follows_the_monitor():
    data = toy_data()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0, factor=0.5)
    loader = DeviceLoader(data, 32, device=CPU)
    frozen = [(x, torch.zeros_like(y)) for x, y in loader]  # a metric that never improves
    history = fit(model, loader, epochs=3, optimizer=opt, scheduler=sched,
                  loss_fn=nn.CrossEntropyLoss(), val_loader=frozen, metrics={"one": lambda o, t: 1.0},
                  monitor="val_one", device=CPU, progress=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2)
    assert list(history["lr"]) == pytest.approx([0.1, 0.1, 0.05])


def test_scheduler_must_drive_the_optimizer_that_fit_uses():
    model = mlp()
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(other, 1)
    with pytest.raises(ValueError, match="optimizer"):
        fit(model, DeviceLoader(toy_data(), 32, device=CPU), epochs=1, scheduler=sched, device=CPU)
    with pytest.raises(ValueError, match="wrap the optimizer"):
        fit(model, DeviceLoader(toy_data(), 32, device=CPU), epochs=1, scheduler=sched, device=CPU,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_resuming_a_run_that_stopped_early_trains_no_more(tmp_path):
    data = toy_data()
    kwargs = dict(epochs=40, lr=0.05, loss_fn=nn.CrossEntropyLoss(), device=CPU, progress=False,
                  val_loader=DeviceLoader(data[:16], 16, device=CPU), early_stopping_patience=2,
                  checkpoint_path=tmp_path / "c.pt")
    first = fit(mlp(), DeviceLoader(data, 16, device=CPU), **kwargs)
    assert first.attrs["stopped_early"]
    again = fit(mlp(), DeviceLoader(data, 16, device=CPU), resume=True, **kwargs)
    assert len(again) == len(first) and again.attrs["stopped_early"]


def test_fp16_with_a_gradient_scaler_and_clipping():
    data = toy_data()
    model = mlp()
    history = fit(model, DeviceLoader(data, 32, device=CPU), epochs=3, lr=1e-2, loss_fn=nn.CrossEntropyLoss(),
                  amp="fp16", max_grad_norm=1.0, device=CPU, progress=False)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_metric_is_maximised_and_nan_never_counts_as_best():
    data = toy_data()
    values = iter([float("nan"), 0.5, 0.7, 0.6, 0.6])
    history = fit(mlp(), DeviceLoader(data, 32, device=CPU), epochs=5, loss_fn=nn.CrossEntropyLoss(),
                  val_loader=[data[:8]], metrics={"score": lambda o, t: next(values)}, monitor="val_score",
                  early_stopping_patience=2, device=CPU, progress=False)
    assert history.attrs["best_val_score"] == 0.7 and len(history) == 5


def test_accuracy_skips_ignored_labels():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 0, -100])) == 0.5


def test_dict_batches_hand_the_whole_batch_to_metrics_and_loss_fn():
    """Hugging Face style batches: a metric can read any key (e.g. next_sentence_label)."""

    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 3), nn.Linear(8, 2)

        def forward(self, x, labels=None, other=None):
            return {"a": self.a(x), "b": self.b(x)}

    data = toy_data()
    batches = [{"x": data.tensors[0][i:i + 16], "labels": data.tensors[1][i:i + 16],
                "other": (data.tensors[0][i:i + 16, 2] > 0).long()} for i in range(0, 96, 16)]

    def loss_fn(outputs, batch):
        return {"a_loss": nn.functional.cross_entropy(outputs["a"], batch["labels"]),
                "b_loss": nn.functional.cross_entropy(outputs["b"], batch["other"])}

    def other_acc(outputs, batch):
        return (outputs["b"].argmax(-1) == batch["other"]).float().mean().item()

    history = fit(Pair(), batches, epochs=30, lr=3e-2, loss_fn=loss_fn, val_loader=batches,
                  metrics={"other_acc": other_acc, "acc": lambda o, b: accuracy(o["a"], b)},
                  device=CPU, progress=False)
    assert {"train_a_loss", "train_b_loss", "val_other_acc", "val_acc"} <= set(history.columns)
    assert history["val_other_acc"].iloc[-1] > 0.9 and history["val_acc"].iloc[-1] > 0.8


# ---------------------------------------------------------------- issue 7, section 1: each bug, reproduced
def step_spy(model_or_params, lr=0.0, **kwargs):
    """An SGD whose step() records the gradients it sees (lr=0: the weights never move)."""
    seen = []
    params = list(model_or_params.parameters()) if isinstance(model_or_params, nn.Module) else model_or_params

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.append([p.grad.clone() if p.grad is not None else None for p in params])
            return super().step(closure)

    return Spy(params, lr=lr, **kwargs), seen


def test_one_epoch_of_fit_is_exactly_the_hand_written_loop():
    data = toy_data()
    by_hand, with_fit = mlp(), mlp()
    opt = torch.optim.AdamW(by_hand.parameters(), lr=3e-3)
    torch.manual_seed(5)
    for x, y in DataLoader(data, batch_size=16, shuffle=True):
        opt.zero_grad()
        nn.functional.cross_entropy(by_hand(x), y).backward()
        opt.step()
    torch.manual_seed(5)
    fit(with_fit, DataLoader(data, batch_size=16, shuffle=True), epochs=1, lr=3e-3, loss_fn=nn.CrossEntropyLoss(),
        amp=False, device=CPU, progress=False)
    for a, b in zip(by_hand.parameters(), with_fit.parameters()):
        assert torch.equal(a, b)


def test_a_parameter_held_by_the_optimizer_only_is_zeroed_and_stepped_once_per_group():
    """Chapter 02's log-variances kept outside the model: no extra steps, no accumulated gradient."""
    data = toy_data(n=64)
    model, log_var = mlp(), nn.Parameter(torch.zeros(()))
    opt, seen = step_spy(list(model.parameters()) + [log_var], lr=0.0)
    loss = lambda out, y: torch.exp(-log_var) * nn.functional.cross_entropy(out, y) + log_var  # noqa: E731
    fit(model, DeviceLoader(data, 16, device=CPU), epochs=2, optimizer=opt, loss_fn=loss, device=CPU,
        progress=False)
    assert len(seen) == 8  # 4 batches a epoch, 2 epochs: not 10
    ce = [nn.functional.cross_entropy(model(x), y).item() for x, y in DeviceLoader(data, 16, device=CPU)]
    for step, grads in enumerate(seen):  # d/ds [exp(-s) ce + s] at s=0 is 1 - ce of this batch alone
        assert grads[-1].item() == pytest.approx(1 - ce[step % 4], rel=1e-5)


def test_clipping_covers_parameters_outside_the_model():
    data = toy_data(n=32)
    model, outside = mlp(), nn.Parameter(torch.zeros(()))
    opt, seen = step_spy(list(model.parameters()) + [outside])
    loss = lambda out, y: nn.functional.cross_entropy(out, y) + 1e3 * outside  # noqa: E731  gradient 1000
    fit(model, DeviceLoader(data, 32, device=CPU), epochs=1, optimizer=opt, loss_fn=loss, max_grad_norm=1.0,
        device=CPU, progress=False)
    total = torch.cat([g.flatten() for g in seen[0]]).norm()
    assert total == pytest.approx(1.0, rel=1e-4)
    assert seen[0][-1].abs().item() < 1.0  # the outside parameter's gradient was clipped too


def test_a_loader_without_len_scales_its_last_group_by_its_own_size():
    data = toy_data(n=40)  # batches of 8: groups of 3 and 2 with k=3
    grads = {}
    for kind, loader in [("len", DataLoader(data, batch_size=8)), ("no len", DataLoader(NoLength(data), batch_size=8))]:
        model = mlp()
        opt, seen = step_spy(model)
        fit(model, loader, epochs=1, optimizer=opt, loss_fn=nn.CrossEntropyLoss(), grad_accum_steps=3, device=CPU,
            progress=False)
        assert len(seen) == 2
        grads[kind] = seen[-1]
    reference = mlp()
    nn.functional.cross_entropy(reference(data.tensors[0][24:]), data.tensors[1][24:]).backward()
    for g_len, g_nolen, p in zip(grads["len"], grads["no len"], reference.parameters()):
        torch.testing.assert_close(g_nolen, p.grad, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(g_len, p.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n, batch, k", [(40, 16, 3), (36, 8, 5), (50, 7, 8)])
def test_accumulated_micro_batches_equal_one_batch_of_all_their_examples(n, batch, k):
    """Micro-batches of unequal sizes (a short last one) are weighted by their example counts."""
    data = toy_data(n=n)
    model = mlp()
    opt, seen = step_spy(model)
    fit(model, DeviceLoader(data, batch, device=CPU), epochs=1, optimizer=opt, loss_fn=nn.CrossEntropyLoss(),
        grad_accum_steps=k, device=CPU, progress=False)
    x, y = data.tensors
    group = batch * k
    for step, grads in enumerate(seen):
        reference = mlp()
        lo = step * group
        nn.functional.cross_entropy(reference(x[lo:lo + group]), y[lo:lo + group]).backward()
        for g, p in zip(grads, reference.parameters()):
            torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-7)


def test_batchnorm_breaks_the_accumulation_equivalence_measurably():
    data = toy_data(n=64)

    def first_step_grads(with_bn, batch, k):
        torch.manual_seed(0)
        norm = nn.BatchNorm1d(16) if with_bn else nn.Identity()
        model = nn.Sequential(nn.Linear(8, 16), norm, nn.ReLU(), nn.Linear(16, 3))
        opt, seen = step_spy(model)
        fit(model, DeviceLoader(data, batch, device=CPU), epochs=1, optimizer=opt, loss_fn=nn.CrossEntropyLoss(),
            grad_accum_steps=k, device=CPU, progress=False)
        return torch.cat([g.flatten() for g in seen[0]])

    for with_bn, expect_equal in ((False, True), (True, False)):
        big, small = first_step_grads(with_bn, 32, 1), first_step_grads(with_bn, 8, 4)
        relative = ((small - big).norm() / big.norm()).item()
        assert (relative < 1e-5) if expect_equal else (relative > 1e-2), (with_bn, relative)


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear, self.norm, self.drop = nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(torch.relu(self.norm(self.linear(x))))


def test_frozen_modules_stay_frozen_statistics_included():
    from ptcourse.finetune import freeze

    torch.manual_seed(0)
    model = nn.Sequential(Backbone(), nn.Linear(16, 3))
    freeze(model[0])
    stats = {k: v.clone() for k, v in model[0].state_dict().items()}
    outputs = []
    model[1].register_forward_hook(lambda m, inp, out: outputs.append(inp[0].detach().clone()))
    data = toy_data(n=32)
    loader = [(data.tensors[0], data.tensors[1])] * 2  # the same batch twice
    fit(model, loader, epochs=2, optimizer=torch.optim.SGD(model[1].parameters(), lr=0.1),
        loss_fn=nn.CrossEntropyLoss(), val_loader=loader, device=CPU, progress=False)
    for k, v in model[0].state_dict().items():
        assert torch.equal(v, stats[k]), f"{k} changed"
    assert all(torch.equal(o, outputs[0]) for o in outputs)  # no dropout in the frozen backbone
    assert not model[0].training and model[1].training  # the modes fit leaves behind


def test_partial_freezing_fixes_only_the_frozen_module():
    """Freezing only the backbone's BatchNorm: its statistics stay, the rest of the backbone trains with dropout."""
    from ptcourse.finetune import freeze

    torch.manual_seed(0)
    model = nn.Sequential(Backbone(), nn.Linear(16, 3))
    freeze(model, "0.norm")
    norm_state = {k: v.clone() for k, v in model[0].norm.state_dict().items()}
    linear_before = model[0].linear.weight.clone()
    modes = []
    model[0].drop.register_forward_pre_hook(lambda m, inp: modes.append((m.training, model[0].norm.training)))
    data = toy_data(n=32)
    fit(model, [(data.tensors[0], data.tensors[1])], epochs=2, loss_fn=nn.CrossEntropyLoss(), device=CPU,
        progress=False)
    assert all(torch.equal(v, norm_state[k]) for k, v in model[0].norm.state_dict().items())
    assert not torch.equal(model[0].linear.weight, linear_before)
    assert set(modes) == {(True, False)}  # dropout on, the frozen BatchNorm in eval mode


def test_a_parameter_free_batchnorm_can_be_kept_in_eval_by_overriding_train():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm, self.head = nn.BatchNorm1d(8, affine=False), nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.norm(x))

        def train(self, mode=True):  # the documented way to keep a parameter-free BatchNorm fixed
            super().train(mode)
            self.norm.eval()
            return self

    model = Net()
    before = model.norm.running_mean.clone()
    fit(model, DeviceLoader(toy_data(), 32, device=CPU), epochs=1, loss_fn=nn.CrossEntropyLoss(), device=CPU,
        progress=False)
    assert torch.equal(model.norm.running_mean, before)
    plain = nn.Sequential(nn.BatchNorm1d(8, affine=False), nn.Linear(8, 3))
    fit(plain, DeviceLoader(toy_data(), 32, device=CPU), epochs=1, loss_fn=nn.CrossEntropyLoss(), device=CPU,
        progress=False)
    assert not torch.equal(plain[0].running_mean, before)  # without it, the statistics move


def test_evaluate_restores_each_module_mode():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.1), nn.Linear(8, 3))
    model.train()
    model[1].eval()
    evaluate(model, [toy_data()[:8]], loss_fn=nn.CrossEntropyLoss())
    assert [m.training for m in model] == [True, False, True]


def nan_at(epoch, batch, value=float("nan")):
    """A loss function that returns ``value`` at one (epoch, batch), counting calls in training mode."""
    calls = {"n": 0}

    def loss(out, y):
        ce = nn.functional.cross_entropy(out, y)
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] == (epoch - 1) * 12 + batch:
                return ce * value
        return ce

    return loss


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_loss_stops_training_naming_epoch_and_batch(value):
    data = toy_data()
    with pytest.raises(FloatingPointError, match="epoch 2, batch 5"):
        fit(mlp(), DeviceLoader(data, 8, device=CPU), epochs=3, loss_fn=nan_at(2, 5, value), device=CPU,
            progress=False)


def test_a_non_finite_loss_is_found_in_a_long_epoch():
    from ptcourse.callbacks import LossCheck

    check = LossCheck(epoch=4, every=100)
    w = torch.ones((), requires_grad=True)
    with pytest.raises(FloatingPointError, match="epoch 4, batch 150"):
        for i in range(1, 251):
            check.add(w * (float("nan") if i == 150 else 1.0))
    assert i == 200  # found at the next check, every 100 batches


def test_under_fp16_a_non_finite_loss_is_skipped_with_a_warning():
    data = toy_data()
    model = mlp()
    with pytest.warns(RuntimeWarning, match="1 of 12 training losses"):
        fit(model, DeviceLoader(data, 8, device=CPU), epochs=1, lr=1e-2, loss_fn=nan_at(1, 3, float("inf")),
            amp="fp16", device=CPU, progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    always = lambda out, y: nn.functional.cross_entropy(out, y) * float("nan")  # noqa: E731
    with pytest.raises(FloatingPointError, match="every training loss of epoch 1"):
        fit(mlp(), DeviceLoader(data, 8, device=CPU), epochs=1, loss_fn=always, amp="fp16", device=CPU,
            progress=False)


@pytest.mark.parametrize("make_loss", [
    lambda out, y: {"ce": nn.functional.cross_entropy(out, y, reduction="none"), "other": out.mean()},
    lambda out, y: nn.functional.cross_entropy(out, y, reduction="none"),
])
def test_a_per_example_loss_raises(make_loss):
    with pytest.raises(ValueError, match=r"has shape \(32,\).*one number per batch"):
        fit(mlp(), DeviceLoader(toy_data(), 32, device=CPU), epochs=1, loss_fn=make_loss, device=CPU,
            progress=False)


def test_a_detached_loss_or_a_fully_frozen_model_gets_a_clear_error():
    loader = DeviceLoader(toy_data(), 32, device=CPU)
    detached = lambda out, y: nn.functional.cross_entropy(out, y).detach()  # noqa: E731
    with pytest.raises(RuntimeError, match="epoch 1, batch 1 does not depend on any trainable parameter"):
        fit(mlp(), loader, epochs=1, loss_fn=detached, device=CPU, progress=False)
    frozen = mlp().requires_grad_(False)
    with pytest.raises(ValueError, match="every parameter the optimizer holds is frozen"):
        fit(frozen, loader, epochs=1, loss_fn=nn.CrossEntropyLoss(), device=CPU, progress=False)


def test_trainable_parameters_left_out_of_the_optimizer_are_named():
    model = mlp()
    with pytest.warns(UserWarning, match=r"2 trainable parameter tensor\(s\).*0.weight, 0.bias"):
        fit(model, DeviceLoader(toy_data(), 32, device=CPU), epochs=1, loss_fn=nn.CrossEntropyLoss(),
            optimizer=torch.optim.SGD(model[2].parameters(), lr=0.1), device=CPU, progress=False)


# ---------------------------------------------------------------- resume: each problem names the file
def checkpointed(tmp_path, epochs=2, optimizer=None):
    model = mlp()
    fit(model, DeviceLoader(toy_data(), 32, device=CPU), epochs=epochs, loss_fn=nn.CrossEntropyLoss(),
        optimizer=optimizer(model) if optimizer else None, device=CPU, progress=False,
        checkpoint_path=tmp_path / "c.pt")
    return tmp_path / "c.pt"


def resume(path, epochs=4, model=None, optimizer=None):
    model = model or mlp()
    return fit(model, DeviceLoader(toy_data(), 32, device=CPU), epochs=epochs, loss_fn=nn.CrossEntropyLoss(),
               optimizer=optimizer(model) if optimizer else None, device=CPU, progress=False,
               checkpoint_path=path, resume=True)


def test_resume_with_fewer_epochs_than_the_checkpoint_is_an_error(tmp_path):
    path = checkpointed(tmp_path, epochs=3)
    with pytest.raises(ValueError, match=r"c\.pt was saved after epoch 3, but epochs=2"):
        resume(path, epochs=2)
    assert len(resume(path, epochs=3)) == 3  # the same count: nothing left to train, the history back


def test_resume_from_a_plain_state_dict_is_an_error(tmp_path):
    torch.save(mlp().state_dict(), tmp_path / "c.pt")
    with pytest.raises(ValueError, match=r"c\.pt is not a checkpoint written by ptcourse.fit.*plain state_dict"):
        resume(tmp_path / "c.pt")


def test_resume_from_a_truncated_file_is_an_error(tmp_path):
    path = checkpointed(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cannot read the checkpoint .*c\.pt: the file is damaged or incomplete"):
        resume(path)


def test_resume_with_another_optimizer_or_model_is_an_error(tmp_path):
    path = checkpointed(tmp_path)
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)  # noqa: E731
    with pytest.raises(ValueError, match=r"c\.pt was saved with the optimizer AdamW, but fit got SGD"):
        resume(path, optimizer=sgd)
    wider = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    with pytest.raises(ValueError, match=r"c\.pt does not fit this model"):
        resume(path, model=wider)


def test_resume_with_another_scheduler_is_an_error(tmp_path):
    """A StepLR state loaded into a OneCycleLR used to fail later with a bare KeyError('max_lr')."""
    def step_lr(model):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1)

    def one_cycle(model):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=12)

    loader = DeviceLoader(toy_data(), 32, device=CPU)
    for make, epochs, resume in ((step_lr, 2, False), (one_cycle, 4, True)):
        model = mlp()
        optimizer, scheduler = make(model)
        kwargs = dict(epochs=epochs, optimizer=optimizer, scheduler=scheduler, loss_fn=nn.CrossEntropyLoss(),
                      device=CPU, progress=False, checkpoint_path=tmp_path / "c.pt", resume=resume)
        if not resume:
            fit(model, loader, **kwargs)
    with pytest.raises(ValueError, match=r"c\.pt was saved with the scheduler StepLR, but fit got OneCycleLR"):
        fit(model, loader, **kwargs)


def test_a_checkpoint_of_an_earlier_version_without_the_scheduler_class_still_resumes(tmp_path):
    path = checkpointed(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["scheduler_class"]
    torch.save(ckpt, path)
    assert len(resume(path, epochs=3)) == 3


def test_resume_from_a_pickled_model_says_what_the_file_holds(tmp_path):
    torch.save(mlp(), tmp_path / "c.pt")  # a whole model, pickled: not damaged, just not a checkpoint
    with pytest.raises(ValueError, match=r"c\.pt holds pickled Python objects.*not a checkpoint written by"):
        resume(tmp_path / "c.pt")


def test_an_unwritable_checkpoint_path_fails_before_training(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    batches = []
    loader = [b for b in DeviceLoader(toy_data(), 32, device=CPU)]
    counting = type("Counting", (), {"__iter__": lambda self: (batches.append(1) or b for b in loader),
                                     "__len__": lambda self: len(loader)})()
    with pytest.raises(OSError, match="cannot write the checkpoint"):
        fit(mlp(), counting, epochs=1, loss_fn=nn.CrossEntropyLoss(), device=CPU, progress=False,
            checkpoint_path=blocker / "c.pt")
    assert batches == []
    with pytest.raises(IsADirectoryError, match="is a folder"):
        fit(mlp(), loader, epochs=1, loss_fn=nn.CrossEntropyLoss(), device=CPU, progress=False,
            checkpoint_path=tmp_path)


# ---------------------------------------------------------------- learning-rate columns
def test_the_lr_column_is_the_rate_of_the_epochs_last_step():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 / (step + 1))
    history = fit(model, DeviceLoader(toy_data(n=64), 16, device=CPU), epochs=2, optimizer=opt, scheduler=sched,
                  loss_fn=nn.CrossEntropyLoss(), device=CPU, progress=False)
    assert list(history["lr"]) == pytest.approx([1 / 4, 1 / 8])  # steps 4 and 8 used 1/4 and 1/8


def test_one_lr_column_per_named_parameter_group():
    from ptcourse.finetune import param_groups

    model = mlp()
    groups = param_groups(model, {"2": 1e-2}, default_lr=1e-3, weight_decay=0.0)
    history = fit(model, DeviceLoader(toy_data(), 32, device=CPU), epochs=1, optimizer=torch.optim.AdamW(groups),
                  loss_fn=nn.CrossEntropyLoss(), device=CPU, progress=False)
    assert history["lr_2"].item() == 1e-2 and history["lr_default"].item() == 1e-3 and "lr" not in history
    unnamed = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.5}],
                              lr=0.1)
    history = fit(model, DeviceLoader(toy_data(), 32, device=CPU), epochs=1, optimizer=unnamed,
                  loss_fn=nn.CrossEntropyLoss(), device=CPU, progress=False)
    assert history["lr_0"].item() == 0.1 and history["lr_1"].item() == 0.5


# ---------------------------------------------------------------- cross-checks against hand-written loops
def hand_written(model, extra, batches, k, epochs, optimizer, scheduler, clip):
    """Chapter 01's loop on the joined micro-batches of each group: the reference for fit."""
    for _ in range(epochs):
        for i in range(0, len(batches), k):
            x = torch.cat([b[0] for b in batches[i:i + k]])
            y = torch.cat([b[1] for b in batches[i:i + k]])
            optimizer.zero_grad()
            (nn.functional.cross_entropy(model(x), y) * extra.exp()).backward()
            nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip)
            optimizer.step()
            scheduler.step()


@pytest.mark.parametrize("schedule", ["one-cycle", "linear warmup (transformers)"])
@pytest.mark.parametrize("loader_kind", ["DataLoader", "DeviceLoader", "loader without len()"])
def test_fit_equals_a_hand_written_loop_with_accumulation_a_schedule_and_clipping(schedule, loader_kind):
    """53 examples in batches of 7 (the last of 4), groups of 3 (the last of 2), two parameter groups and
    a parameter outside the model, clipping, a per-step schedule: one scheduler step per optimizer step."""
    from transformers import get_linear_schedule_with_warmup

    data = toy_data(n=53)
    batches = [(data.tensors[0][i:i + 7], data.tensors[1][i:i + 7]) for i in range(0, 53, 7)]
    epochs, k, steps = 3, 3, 3 * 3  # ceil(8 batches / 3) = 3 optimizer steps an epoch
    runs = []
    for _ in range(2):
        model, extra = mlp(), nn.Parameter(torch.tensor(0.3))
        optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.1},
                                     {"params": [*model[2].parameters(), extra], "lr": 0.03}], momentum=0.9)
        scheduler = (torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[0.1, 0.03], total_steps=steps)
                     if schedule == "one-cycle" else get_linear_schedule_with_warmup(optimizer, 2, steps))
        runs.append((model, extra, optimizer, scheduler))
    hand_written(*runs[0][:2], batches, k, epochs, *runs[0][2:], clip=0.3)
    model, extra, optimizer, scheduler = runs[1]
    loader = {"DataLoader": DataLoader(data, batch_size=7), "DeviceLoader": DeviceLoader(data, 7, device=CPU),
              "loader without len()": DataLoader(NoLength(data), batch_size=7)}[loader_kind]
    fit(model, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler, grad_accum_steps=k, max_grad_norm=0.3,
        loss_fn=lambda out, y: nn.functional.cross_entropy(out, y) * extra.exp(), device=CPU, progress=False)
    assert scheduler.last_epoch == steps == runs[0][3].last_epoch
    for a, b in zip([*runs[0][0].parameters(), runs[0][1]], [*model.parameters(), extra]):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("amp, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_mixed_precision_on_the_cpu_equals_the_hand_written_autocast_loop(amp, dtype):
    """fp16 goes through the gradient scaler (unscaled before clipping), bf16 does not."""
    data = toy_data(n=64)
    by_hand, with_fit = mlp(), mlp()
    optimizer = torch.optim.SGD(by_hand.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
    for _ in range(2):
        for x, y in DataLoader(data, batch_size=16):
            with torch.autocast("cpu", dtype=dtype):
                loss = nn.functional.cross_entropy(by_hand(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(by_hand.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad()
    fit(with_fit, DataLoader(data, batch_size=16), epochs=2, optimizer=torch.optim.SGD(with_fit.parameters(), lr=0.1),
        loss_fn=nn.CrossEntropyLoss(), amp=amp, max_grad_norm=1.0, device=CPU, progress=False)
    for a, b in zip(by_hand.parameters(), with_fit.parameters()):
        assert torch.equal(a, b)


def test_a_tiny_bert_with_dict_batches_trains_exactly_as_the_hand_written_loop():
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=16, num_labels=3)  # dropout 0.1 on: the RNG must be used alike
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 50, (30, 8), generator=generator)
    mask = torch.ones_like(ids)
    mask[::3, 5:] = 0
    batches = [{"input_ids": ids[i:i + 7], "attention_mask": mask[i:i + 7], "labels": ids[i:i + 7, 0] % 3}
               for i in range(0, 30, 7)]
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(BertForSequenceClassification(config))
    by_hand, with_fit = models
    optimizer = torch.optim.AdamW(by_hand.parameters(), lr=1e-3)
    torch.manual_seed(7)
    by_hand.train()
    for _ in range(2):
        for batch in batches:
            by_hand(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    torch.manual_seed(7)
    fit(with_fit, batches, epochs=2, optimizer=torch.optim.AdamW(with_fit.parameters(), lr=1e-3), amp=False,
        device=CPU, progress=False)
    for a, b in zip(by_hand.parameters(), with_fit.parameters()):
        assert torch.equal(a, b)
    by_hand.eval()
    with torch.no_grad():
        loss = sum(by_hand(**b).loss.item() * len(b["labels"]) for b in batches) / 30
        correct = sum((by_hand(**b).logits.argmax(-1) == b["labels"]).sum().item() for b in batches)
    result = evaluate(with_fit, batches, metrics={"acc": accuracy})
    assert result["loss"] == pytest.approx(loss, rel=1e-6) and result["acc"] == pytest.approx(correct / 30)


def test_reduce_lr_on_plateau_cuts_the_rate_only_when_the_monitor_stalls():
    data = toy_data()
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=0, factor=0.5)
    scores = iter([0.5, 0.6, 0.7, 0.7, 0.8])  # improves, improves, stalls, improves
    history = fit(model, DeviceLoader(data, 32, device=CPU), epochs=5, optimizer=optimizer, scheduler=scheduler,
                  loss_fn=nn.CrossEntropyLoss(), val_loader=[data[:8]], metrics={"score": lambda o, t: next(scores)},
                  monitor="val_score", device=CPU, progress=False)
    assert list(history["lr"]) == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05])


# ---------------------------------------------------------------- no host-device sync per step
SYNCS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "cpu")


def count_syncs(monkeypatch, n_batches):
    """How often fit reads a tensor's value on the host (a GPU sync) in a 2-epoch run."""
    calls = []
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    data = toy_data(n=8 * n_batches)
    model = mlp()
    fit(model, DeviceLoader(data, 8, device=CPU), epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        loss_fn=nn.CrossEntropyLoss(), grad_accum_steps=2, max_grad_norm=1.0, device=CPU, progress=True)
    monkeypatch.undo()
    return len(calls)


def test_fit_reads_no_tensor_value_per_step(monkeypatch):
    few, many = count_syncs(monkeypatch, 4), count_syncs(monkeypatch, 40)
    assert few == many, f"{few} host reads for 4 batches, {many} for 40: fit syncs inside the step loop"
    assert few <= 8  # per epoch: the loss check and the mean loss


def test_numpy_integers_are_accepted_like_python_ints():
    history = fit(mlp(), DeviceLoader(toy_data(), 16, device=CPU), epochs=np.int64(2), lr=np.float32(1e-2),
                  grad_accum_steps=np.int32(2), max_grad_norm=np.float64(1.0), loss_fn=nn.CrossEntropyLoss(),
                  device=CPU, progress=False)
    assert len(history) == 2


def test_accuracy_of_a_one_logit_binary_classifier():
    logits = torch.tensor([[3.0], [-3.0], [2.0], [-1.0]])
    assert accuracy(logits, torch.tensor([1, 0, 1, 0])) == 1.0
    assert accuracy(logits, torch.tensor([[1.0], [0.0], [0.0], [0.0]])) == 0.75


# ---------------------------------------------------------------- a loop a learner can read
def _package_modules() -> list[str]:
    import pkgutil

    import ptcourse

    return sorted(m.name for m in pkgutil.walk_packages(ptcourse.__path__, "ptcourse."))


READABLE = _package_modules()  # every module of the package, those added later included


@pytest.mark.parametrize("module_name", READABLE)
def test_public_helpers_name_their_chapter_and_usage(module_name):
    import importlib
    import inspect

    module = importlib.import_module(module_name)
    public = [(n, obj) for n, obj in vars(module).items() if not n.startswith("_")
              and (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module_name]
    # (a package module may have no public helpers of its own, e.g. ptcourse.exercises)
    for name, obj in public:
        doc = inspect.getdoc(obj) or ""
        assert "chapter" in doc.lower() and "Usage" in doc, f"{module_name}.{name}: docstring needs its chapter and Usage"


@pytest.mark.parametrize("module_name", READABLE)
def test_no_function_is_longer_than_60_lines_of_code(module_name):
    import ast
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(module_name))
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) else node.body
            code = [ln for ln in lines[body[0].lineno - 1:node.end_lineno]
                    if ln.strip() and not ln.strip().startswith("#")] if body else []
            assert len(code) <= 60, f"{module_name}.{node.name} has {len(code)} lines of code"


def test_train_one_epoch_reads_like_the_hand_written_loop():
    """Chapter 01 points learners at train_one_epoch: forward, loss, backward, step, zero_grad in a few lines."""
    import inspect

    from ptcourse.training import optimizer_step, train_one_epoch

    epoch_src, step_src = inspect.getsource(train_one_epoch), inspect.getsource(optimizer_step)
    assert "compute_losses(" in epoch_src and ".backward()" in epoch_src and "optimizer_step(run)" in epoch_src
    assert "optimizer.zero_grad(" in step_src and "scaler.step(optimizer)" in step_src
    assert len(epoch_src.splitlines()) < 45


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_no_host_device_sync_per_step_on_cuda():
    """On a GPU, count synchronisations with torch's own detector: they must not grow with the steps."""
    import warnings

    device = torch.device("cuda")

    def syncs(n_batches):
        data = toy_data(n=8 * n_batches)
        batches = [(x.to(device), y.to(device)) for x, y in DataLoader(data, batch_size=8)]
        model = mlp().to(device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                fit(model, batches, epochs=2, lr=1e-3, loss_fn=nn.CrossEntropyLoss(), grad_accum_steps=2,
                    max_grad_norm=1.0, amp="bf16" if torch.cuda.is_bf16_supported() else False,  # fp16's
                    device=device, progress=False)  # gradient scaler reads one value per step by design
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    syncs(4)  # warm-up: first-call allocations
    assert syncs(8) == syncs(40)
