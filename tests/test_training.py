"""fit / evaluate: real behaviour, checked numerically."""

from __future__ import annotations

import copy

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


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(epochs=0), ValueError, "epochs"),
        (dict(epochs=1.5), ValueError, "epochs"),
        (dict(epochs=1, grad_accum_steps=0), ValueError, "grad_accum_steps"),
        (dict(epochs=1, amp="fp8"), ValueError, "amp"),
        (dict(epochs=1, max_grad_norm=-1), ValueError, "max_grad_norm"),
        (dict(epochs=1, resume=True), ValueError, "checkpoint_path"),
        (dict(epochs=1, scheduler_interval="batch"), ValueError, "scheduler_interval"),
        (dict(epochs=1, metrics={"acc": 3}), TypeError, "metrics"),
        (dict(epochs=1, early_stopping_patience=2), ValueError, "val_loader"),
        (dict(epochs=1, early_stopping_patience=1.5), ValueError, "early_stopping_patience"),
        (dict(epochs=1, mode="up"), ValueError, "mode"),
        (dict(epochs=1, monitor="val_acc", early_stopping_patience=1, val_loader=[(torch.zeros(2, 8), torch.zeros(2).long())]),
         KeyError, "val_acc"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    data = toy_data()
    with pytest.raises(error, match=match):
        fit(mlp(), DeviceLoader(data, 32, device=CPU), loss_fn=nn.CrossEntropyLoss(), device=CPU,
            progress=False, **kwargs)


def test_bad_model_and_loader():
    with pytest.raises(TypeError, match="nn.Module"):
        fit(lambda x: x, [], epochs=1)
    with pytest.raises(TypeError, match="iterable"):
        fit(mlp(), 3, epochs=1)
    with pytest.raises(ValueError, match="no batches"):
        evaluate(mlp(), [], loss_fn=nn.CrossEntropyLoss())


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


class Endless(torch.utils.data.IterableDataset):
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
    loader = DataLoader(Endless(data), batch_size=8)  # 5 batches, no len()
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
    history = fit(model, loader, epochs=3, optimizer=opt, scheduler=sched, scheduler_interval="epoch",
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


def test_mode_and_nan_handling():
    data = toy_data()
    values = iter([float("nan"), 0.5, 0.7, 0.6, 0.6])
    history = fit(mlp(), DeviceLoader(data, 32, device=CPU), epochs=5, loss_fn=nn.CrossEntropyLoss(),
                  val_loader=[data[:8]], metrics={"score": lambda o, t: next(values)}, monitor="val_score",
                  mode="max", early_stopping_patience=2, device=CPU, progress=False)
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
