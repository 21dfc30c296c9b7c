"""Bad and edge-case input to the training loop: every row must raise, with a message that says what to do.

One table per public function (issue 7, section 3): no silent accepts, no internal tracebacks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ptcourse import accuracy, evaluate, fit
from ptcourse.batches import accumulation_groups, batch_size, named_losses
from ptcourse.checkpoints import check_writable
from ptcourse.training import TrainingRun, set_train_mode, train_one_epoch

CPU = torch.device("cpu")
X, Y = torch.randn(16, 8), torch.randint(0, 3, (16,))
BATCHES = [(X[:8], Y[:8]), (X[8:], Y[8:])]
CE = nn.CrossEntropyLoss()


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


class Empty(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter(())


def other_optimizer_scheduler():
    return torch.optim.lr_scheduler.StepLR(torch.optim.SGD(model().parameters(), lr=0.1), 1)


def plateau(mode: str) -> dict:
    """A model with an optimizer and a ReduceLROnPlateau of the given mode around it."""
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    return dict(model=net, optimizer=optimizer,
                scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode))


FIT_CASES = [
    # (name, keyword arguments that replace the good defaults, exception, message)
    ("model not a module", dict(model=lambda x: x), TypeError, "torch.nn.Module"),
    ("model without parameters", dict(model=nn.ReLU()), ValueError, "no parameters"),
    ("all parameters frozen", dict(model=model().requires_grad_(False)), ValueError, "frozen"),
    ("loader an int", dict(train_loader=3), TypeError, "must yield batches"),
    ("loader a tensor", dict(train_loader=X), TypeError, "must yield batches"),
    ("empty loader", dict(train_loader=[]), ValueError, "train_loader is empty"),
    ("empty loader without len", dict(train_loader=torch.utils.data.DataLoader(Empty())), ValueError, "no batches"),
    ("batch a bare tensor", dict(train_loader=[X]), TypeError, "tuple, list or dict"),
    ("batch without target", dict(train_loader=[(X,)]), ValueError, r"\(inputs\.\.\., target\)"),
    ("epochs 0", dict(epochs=0), ValueError, "epochs must be >= 1"),
    ("epochs numpy 0", dict(epochs=np.int64(0)), ValueError, "epochs must be >= 1"),
    ("epochs float", dict(epochs=1.5), TypeError, "epochs must be a positive int"),
    ("epochs str", dict(epochs="3"), TypeError, "epochs must be a positive int"),
    ("epochs bool", dict(epochs=True), TypeError, "epochs must be a positive int"),
    ("lr nan", dict(lr=float("nan")), ValueError, "lr must be a finite number"),
    ("lr inf", dict(lr=float("inf")), ValueError, "lr must be a finite number"),
    ("lr 0", dict(lr=0.0), ValueError, "lr must be > 0"),
    ("lr str", dict(lr="1e-3"), TypeError, "lr must be a number"),
    ("lr with an optimizer", dict(lr=0.1, optimizer=torch.optim.SGD(model().parameters(), lr=0.1)), ValueError,
     "lr is not used"),
    ("optimizer a string", dict(optimizer="adam"), TypeError, "torch.optim.Optimizer"),
    ("loss_fn not callable", dict(loss_fn=3), TypeError, "loss_fn must be callable"),
    ("loss a float", dict(loss_fn=lambda o, y: 1.0), TypeError, "could not find a loss.*got float"),
    ("loss in a dict a float", dict(loss_fn=lambda o, y: {"a": CE(o, y), "b": 1.0}), TypeError, "loss .b. must be a scalar tensor"),
    ("loss an empty dict", dict(loss_fn=lambda o, y: {}), TypeError, "could not find a loss"),
    ("loss a vector", dict(loss_fn=nn.CrossEntropyLoss(reduction="none")), ValueError, "one number per batch"),
    ("loss detached", dict(loss_fn=lambda o, y: CE(o, y).detach()), RuntimeError, "does not depend on any trainable"),
    ("val_loader an int", dict(val_loader=3), TypeError, "val_loader must yield batches"),
    ("val_loader empty", dict(val_loader=[]), ValueError, "val_loader is empty"),
    ("metrics a list", dict(metrics=[accuracy]), TypeError, "metrics must be a dict"),
    ("metric not callable", dict(metrics={"acc": 3}), TypeError, "metrics must be a dict"),
    ("metric name not a str", dict(metrics={1: accuracy}), TypeError, "metrics must be a dict"),
    ("metric returns a list", dict(metrics={"m": lambda o, y: [1]}, val_loader=BATCHES), TypeError,
     "metric 'm' must return a number"),
    ("scheduler without optimizer", dict(scheduler=other_optimizer_scheduler()), ValueError, "pass optimizer"),
    ("scheduler of another optimizer", dict(scheduler=other_optimizer_scheduler(),
                                            optimizer=torch.optim.SGD(model().parameters(), lr=0.1)),
     ValueError, "wrap the optimizer"),
    ("grad_accum_steps 0", dict(grad_accum_steps=0), ValueError, "grad_accum_steps must be >= 1"),
    ("grad_accum_steps float", dict(grad_accum_steps=2.0), TypeError, "grad_accum_steps must be a positive int"),
    ("max_grad_norm 0", dict(max_grad_norm=0), ValueError, "max_grad_norm must be > 0"),
    ("max_grad_norm nan", dict(max_grad_norm=float("nan")), ValueError, "max_grad_norm must be a finite"),
    ("max_grad_norm inf", dict(max_grad_norm=float("inf")), ValueError, "max_grad_norm must be a finite"),
    ("amp fp8", dict(amp="fp8"), ValueError, "amp must be"),
    ("amp None", dict(amp=None), ValueError, "amp must be"),
    ("device unknown", dict(device="gpu0"), ValueError, "is not a device"),
    ("patience 0", dict(early_stopping_patience=0, val_loader=BATCHES), ValueError, "early_stopping_patience"),
    ("patience float", dict(early_stopping_patience=1.5, val_loader=BATCHES), TypeError, "early_stopping_patience"),
    ("patience without val_loader", dict(early_stopping_patience=2), ValueError, "needs a val_loader"),
    ("monitor without prefix", dict(monitor="loss"), ValueError, "monitor must name a history column"),
    ("monitor not a str", dict(monitor=3), ValueError, "monitor must name a history column"),
    ("monitor not logged", dict(monitor="val_acc", early_stopping_patience=1, val_loader=BATCHES), KeyError,
     "monitor='val_acc' is not in the history columns"),
    ("resume without path", dict(resume=True), ValueError, "needs a checkpoint_path"),
    ("resume a str", dict(resume="yes"), TypeError, "resume must be True or False"),
    ("checkpoint_path an int", dict(checkpoint_path=3), TypeError, "checkpoint_path must be a str"),
    ("progress a str", dict(progress="no"), TypeError, "progress must be True or False"),
    ("channels_last an int", dict(channels_last=1), TypeError, "channels_last must be True or False"),
    ("compile a str", dict(compile="yes"), TypeError, "compile must be"),
    # found in review: each of these trained a full epoch, or silently, before
    ("train_loader a generator, 2 epochs", dict(train_loader=(b for b in BATCHES), epochs=2), TypeError,
     "train_loader is an iterator .*used up after one pass"),
    ("val_loader an iterator, 2 epochs", dict(val_loader=iter(BATCHES), epochs=2), TypeError,
     "val_loader is an iterator"),
    ("metrics without val_loader", dict(metrics={"acc": accuracy}), ValueError, "pass val_loader"),
    ("metric named like the loss", dict(metrics={"loss": lambda o, y: 0.0}, val_loader=BATCHES), ValueError,
     "metric 'loss' has the name of a loss"),
    ("metric returns a 0-d bool tensor", dict(metrics={"m": lambda o, y: torch.tensor(True)}, val_loader=BATCHES),
     TypeError, "metric 'm' must return a number"),
    ("metric returns a 0-d complex tensor", dict(metrics={"m": lambda o, y: torch.tensor(1j)}, val_loader=BATCHES),
     TypeError, "metric 'm' must return a number"),
    ("plateau minimising an accuracy", dict(**plateau("min"), val_loader=BATCHES, metrics={"acc": accuracy},
                                            monitor="val_acc"), ValueError, "mode='max'"),
    ("plateau maximising a loss", dict(**plateau("max"), val_loader=BATCHES), ValueError, "mode='min'"),
    ("plateau without val_loader", plateau("min"), ValueError, "ReduceLROnPlateau on 'val_loss' needs a val_loader"),
    ("device absent here", dict(device="cuda:99"), RuntimeError, "was asked for"),
    ("a batch without examples", dict(train_loader=[(X[:0], Y[:0])]), ValueError, "holds no examples"),
    ("no loss_fn, model cannot take the target", dict(loss_fn=None), TypeError,
     r"without loss_fn the model is called with the whole batch, model\(\*batch\)"),
    ("no loss_fn, model returns logits", dict(loss_fn=None, model=type("Logits", (nn.Linear,), {
        "forward": lambda self, x, y: nn.Linear.forward(self, x)})(8, 3)), ValueError, "pass loss_fn"),
]


@pytest.mark.parametrize("name, changes, error, match", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_rejects(name, changes, error, match):
    kwargs = dict(model=model(), train_loader=BATCHES, epochs=1, loss_fn=CE, device=CPU, progress=False)
    kwargs.update(changes)
    with pytest.raises(error, match=match):
        fit(**kwargs)


EVALUATE_CASES = [
    ("model not a module", dict(model="net"), TypeError, "torch.nn.Module"),
    ("loader an int", dict(loader=3), TypeError, "must yield batches"),
    ("empty loader", dict(loader=[]), ValueError, "loader is empty"),
    ("empty loader without len", dict(loader=torch.utils.data.DataLoader(Empty())), ValueError, "no batches"),
    ("metrics a list", dict(metrics=[accuracy]), TypeError, "metrics must be a dict"),
    ("metric returns a str", dict(metrics={"m": lambda o, y: "good"}), TypeError, "must return a number"),
    ("metric returns a vector", dict(metrics={"m": lambda o, y: o.argmax(1)}), TypeError, "must return a number"),
    ("amp fp8", dict(amp="fp8"), ValueError, "amp must be"),
    ("device unknown", dict(device="tpu9"), ValueError, "is not a device"),
    ("device absent here", dict(device="cuda:99"), RuntimeError, "was asked for"),
    ("metric named like the loss", dict(metrics={"loss": lambda o, y: 0.0}), ValueError, "name of a loss"),
    ("no loss_fn, model cannot take the target", dict(loss_fn=None, metrics={"acc": accuracy}), TypeError,
     "Pass loss_fn"),
    ("an empty batch among good ones", dict(loader=[BATCHES[0], (X[:0], Y[:0])]), ValueError, "holds no examples"),
]


@pytest.mark.parametrize("name, changes, error, match", EVALUATE_CASES, ids=[c[0] for c in EVALUATE_CASES])
def test_evaluate_rejects(name, changes, error, match):
    kwargs = dict(model=model(), loader=BATCHES, loss_fn=CE)
    kwargs.update(changes)
    with pytest.raises(error, match=match):
        evaluate(**kwargs)


LOGITS = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
ACCURACY_CASES = [
    ("targets (N,1) with (N,C) logits", LOGITS, torch.tensor([[0], [1]]), ValueError, "targets have shape"),
    ("float targets", LOGITS, torch.tensor([0.0, 1.0]), TypeError, "class indices"),
    ("one-hot targets", LOGITS, torch.tensor([[1, 0], [0, 1]]), ValueError, "targets have shape"),
    ("all ignored", LOGITS, torch.tensor([-100, -100]), ValueError, "all -100"),
    ("empty", torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), ValueError, "empty"),
    ("0-d logits", torch.tensor(1.0), torch.tensor(1), ValueError, "class dimension"),
    ("no classes", torch.zeros(2, 0), torch.tensor([0, 1]), ValueError, "class dimension"),
    ("dict without labels", LOGITS, {"input_ids": torch.tensor([0, 1])}, KeyError, "batch\\['labels'\\]"),
    ("outputs a dict", {"a": LOGITS}, torch.tensor([0, 1]), TypeError, "tensor of logits"),
    ("targets a list", LOGITS, [0, 1], TypeError, "tensor of logits"),
    ("a target beyond the classes", LOGITS, torch.tensor([0, 2]), ValueError, r"class indices 0\.\.1.*got 2"),
    ("a negative target other than -100", LOGITS, torch.tensor([0, -1]), ValueError, "got -1"),
    ("binary: a target of 2", torch.tensor([[1.0], [-1.0]]), torch.tensor([2, 0]), ValueError, "got 2"),
    ("binary: a soft target", torch.tensor([[1.0], [-1.0]]), torch.tensor([0.7, 0.0]), ValueError, "got 0.7"),
]


@pytest.mark.parametrize("name, outputs, targets, error, match", ACCURACY_CASES, ids=[c[0] for c in ACCURACY_CASES])
def test_accuracy_rejects(name, outputs, targets, error, match):
    with pytest.raises(error, match=match):
        accuracy(outputs, targets)


def test_accuracy_accepts_the_edge_cases_it_can_score():
    assert accuracy(LOGITS, torch.tensor([0, -100])) == 1.0
    assert accuracy(torch.tensor([[1.5], [-0.5]]), torch.tensor([1, 0])) == 1.0  # one logit: logit > 0
    assert accuracy(torch.tensor([[1.5], [-0.5]]), torch.tensor([[1.0], [1.0]])) == 0.5  # BCE-style targets
    assert accuracy(type("Out", (), {"logits": LOGITS})(), {"labels": torch.tensor([0, 0])}) == 0.5
    assert accuracy(torch.tensor([[1.5], [-0.5]]), torch.tensor([True, False])) == 1.0  # boolean binary targets
    tokens = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])  # (batch, tokens, classes), one token ignored
    assert accuracy(tokens, torch.tensor([[0, -100]])) == 1.0


def test_evaluate_accepts_numpy_and_tensor_metric_values():
    metrics = {"np32": lambda o, y: np.float32(0.5), "t": lambda o, y: torch.tensor(0.25), "i": lambda o, y: 1}
    result = evaluate(model(), BATCHES, loss_fn=CE, metrics=metrics)
    assert result["np32"] == 0.5 and result["t"] == 0.25 and result["i"] == 1


HELPER_CASES = [
    ("set_train_mode of a function", lambda: set_train_mode(len), TypeError, "torch.nn.Module"),
    ("train_one_epoch without a run", lambda: train_one_epoch(model(), BATCHES), TypeError, "TrainingRun"),
    ("accumulation of 0", lambda: next(accumulation_groups(BATCHES, 0)), ValueError, "grad_accum_steps"),
    ("batch_size of an empty dict", lambda: batch_size({}), ValueError, "must not be empty"),
    ("batch_size of a number", lambda: batch_size(3), TypeError, "non-empty tuple, list or dict"),
    ("batch_size of scalars", lambda: batch_size((torch.tensor(1.0),)), TypeError, "batched tensor"),
    ("batch_size of no examples", lambda: batch_size((X[:0], Y[:0])), ValueError, "holds no examples"),
    ("named_losses of a string", lambda: named_losses("loss"), TypeError, "could not find a loss"),
    ("named_losses of a missing HF loss", lambda: named_losses(type("O", (), {"loss": None})()), ValueError,
     "returned no loss"),
    ("check_writable of an int", lambda: check_writable(3), TypeError, "checkpoint_path must be"),
]


@pytest.mark.parametrize("name, call, error, match", HELPER_CASES, ids=[c[0] for c in HELPER_CASES])
def test_training_helpers_reject(name, call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_train_one_epoch_is_usable_on_its_own():
    net = model()
    run = TrainingRun(net, torch.optim.SGD(net.parameters(), lr=0.1), CE)
    before = CE(net(X), Y).item()
    for _ in range(20):
        losses = train_one_epoch(run, BATCHES)
    assert set(losses) == {"loss"} and CE(net(X), Y).item() < before
