"""Bad and edge-case input to the core modules: every rejection is clear, nothing passes silently.

One table per module: (call, exception type, words the message must contain). A second
table lists inputs that must be *accepted* (NumPy integers where Python ints are, ...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ptcourse import data, device, hub, paths, plots, profiles, repro, results
from ptcourse.data import DeviceLoader, ImageSet

X = torch.rand(6, 1, 4, 4)
Y = torch.tensor([0, 1, 2, 0, 1, 2])


def image_set(x=X, y=Y, name="toy", classes=("a", "b", "c")):
    return ImageSet(x, y, name, list(classes) if isinstance(classes, tuple) else classes)


HISTORY = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "note": ["a", "b"]})

BAD = {
    # --- data.ImageSet
    "ImageSet x not 4-D": (lambda: image_set(x=torch.rand(6, 4, 4)), ValueError, "(N, C, H, W)"),
    "ImageSet x a list": (lambda: image_set(x=[[0.0]]), ValueError, "(N, C, H, W)"),
    "ImageSet uint8 pixels": (lambda: image_set(x=torch.zeros(6, 1, 4, 4, dtype=torch.uint8)), TypeError, "255"),
    "ImageSet labels (N, 1)": (lambda: image_set(y=Y.unsqueeze(1)), ValueError, "flatten"),
    "ImageSet float labels": (lambda: image_set(y=Y.float()), TypeError, "integer class indices"),
    "ImageSet negative label": (lambda: image_set(y=torch.tensor([0, 1, 2, 0, 1, -1])), ValueError, "negative"),
    "ImageSet length mismatch": (lambda: image_set(y=Y[:5]), ValueError, "6 images but y has 5"),
    "ImageSet NaN pixel": (lambda: image_set(x=torch.full((6, 1, 4, 4), float("nan"))), ValueError, "NaN"),
    "ImageSet label without class": (lambda: image_set(classes=("a", "b")), ValueError, "no class name"),
    "ImageSet classes not strings": (lambda: image_set(classes=[0, 1, 2]), TypeError, "list of strings"),
    "subset with bool mask": (lambda: image_set().subset([True, False] * 3), TypeError, "nonzero"),
    "subset with float indices": (lambda: image_set().subset([0.5, 1.7]), TypeError, "integer row numbers"),
    "subset out of range": (lambda: image_set().subset([0, 6]), IndexError, "between 0 and 5"),
    "subset 2-D indices": (lambda: image_set().subset([[0, 1]]), TypeError, "1-D"),
    "ImageSet 0-255 floats": (lambda: image_set(x=X * 255), ValueError, "divide 0-255 pixels by 255"),
    "ImageSet negative pixels": (lambda: image_set(x=X - 0.5), ValueError, "pixel values in [0, 1]"),
    # --- data: per_class_indices / subset_per_class / load_splits / load_torchvision
    "per_class (N, 1) labels": (lambda: data.per_class_indices(Y.unsqueeze(1), k=1), ValueError, "flatten"),
    "per_class float labels": (lambda: data.per_class_indices(Y.float(), k=1), TypeError, "integer"),
    "per_class labels a list": (lambda: data.per_class_indices([0, 1], k=1), TypeError, "torch tensor"),
    "per_class empty labels": (lambda: data.per_class_indices(torch.tensor([], dtype=torch.long), k=1),
                               ValueError, "empty"),
    "per_class k=0": (lambda: data.per_class_indices(Y, k=0), ValueError, "positive int"),
    "per_class k float": (lambda: data.per_class_indices(Y, k=1.0), TypeError, "positive int"),
    "per_class negative seed": (lambda: data.per_class_indices(Y, k=1, seed=-1), ValueError, "seed"),
    "per_class seed 2**70": (lambda: data.per_class_indices(Y, k=1, seed=2**70), ValueError,
                             "seed must be in [0, 2**32)"),
    "per_class k too large": (lambda: data.per_class_indices(Y, k=3), ValueError, "fewer than k=3"),
    "subset_per_class of tensors": (lambda: data.subset_per_class((X, Y), k=1), TypeError, "ImageSet"),
    "load_splits val_fraction 0": (lambda: data.load_splits("digits", val_fraction=0), ValueError, "between 0 and 1"),
    "load_splits val_fraction NaN": (lambda: data.load_splits("digits", val_fraction=float("nan")),
                                     ValueError, "between 0 and 1"),
    "load_splits val_fraction str": (lambda: data.load_splits("digits", val_fraction="0.1"),
                                     ValueError, "between 0 and 1"),
    "load_splits train_size float": (lambda: data.load_splits("digits", train_size=500.0), TypeError, "train_size"),
    "load_splits test_size 0": (lambda: data.load_splits("digits", test_size=0), ValueError, "test_size"),
    "load_splits seed negative": (lambda: data.load_splits("digits", seed=-3), ValueError, "seed"),
    "load_splits seed 2**40": (lambda: data.load_splits("digits", seed=2**40), ValueError,
                               "seed must be in [0, 2**32)"),
    "load_splits val_fraction 0.999": (lambda: data.load_splits("digits", val_fraction=0.999), ValueError,
                                       "cannot split 1437 examples of 10 classes"),
    "load_splits unknown name": (lambda: data.load_splits("cifar"), ValueError, "unknown dataset"),
    "load_torchvision list name": (lambda: data.load_torchvision(["mnist"]), ValueError, "unknown dataset"),
    "load_torchvision root int": (lambda: data.load_torchvision("mnist", root=3), TypeError, "root"),
    # --- data.DeviceLoader
    "DeviceLoader empty": (lambda: DeviceLoader((X[:0], Y[:0]), 2, device="cpu"), ValueError, "empty"),
    "DeviceLoader drop_last no batch": (lambda: DeviceLoader((X, Y), 8, drop_last=True, device="cpu"),
                                        ValueError, "no batches"),
    "DeviceLoader batch_size float": (lambda: DeviceLoader((X, Y), 2.0, device="cpu"), TypeError, "batch_size"),
    "DeviceLoader batch_size 0": (lambda: DeviceLoader((X, Y), 0, device="cpu"), ValueError, "batch_size"),
    "DeviceLoader shuffle str": (lambda: DeviceLoader((X, Y), 2, shuffle="yes", device="cpu"), TypeError, "shuffle"),
    "DeviceLoader 0-d tensor": (lambda: DeviceLoader((torch.tensor(1.0),), 2, device="cpu"), ValueError, "0-d"),
    "DeviceLoader bad device": (lambda: DeviceLoader((X, Y), 2, device="gpu"), ValueError, "not a device"),
    "DeviceLoader list of ints": (lambda: DeviceLoader([1, 2, 3], 2, device="cpu"), TypeError, "ImageSet"),
    # --- device
    "as_device unknown": (lambda: device.as_device("tpu"), ValueError, "not a device"),
    "as_device int": (lambda: device.as_device(0), TypeError, "torch.device"),
    "amp_dtype int": (lambda: device.amp_dtype(0), TypeError, "torch.device"),
    "hardware_summary bad": (lambda: device.hardware_summary("cuda:x"), ValueError, "not a device"),
    # --- repro
    "seed str": (lambda: repro.seed_everything("7"), TypeError, "int"),
    "seed float": (lambda: repro.seed_everything(7.0), TypeError, "int"),
    "seed bool": (lambda: repro.seed_everything(True), TypeError, "int"),
    "seed too big": (lambda: repro.seed_everything(2**32), ValueError, "2**32"),
    "deterministic str": (lambda: repro.seed_everything(0, deterministic="no"), TypeError, "True or False"),
    # --- profiles (the bad environment variable is in its own test below)
    "by_profile missing size": (lambda: profiles.by_profile(fast=1, standard=2), TypeError, "full"),
    # --- plots
    "plot empty history": (lambda: plots.plot_history([]), ValueError, "empty"),
    "plot dict history": (lambda: plots.plot_history({"epoch": [1]}), TypeError, "list of row dicts"),
    "plot no epoch column": (lambda: plots.plot_history([{"train_loss": 1.0}]), KeyError, "epoch"),
    "plot no columns": (lambda: plots.plot_history(HISTORY, columns=[]), ValueError, "one or more"),
    "plot missing column": (lambda: plots.plot_history(HISTORY, columns=["val_acc"]), KeyError, "val_acc"),
    "plot text column": (lambda: plots.plot_history(HISTORY, columns=["note"]), TypeError, "numbers"),
    "plot bad ax": (lambda: plots.plot_history(HISTORY, ["train_loss"], ax="left"), TypeError, "Axes"),
    # --- hub
    "reachable no scheme": (lambda: hub.reachable("huggingface.co"), ValueError, "http(s) URL"),
    "reachable timeout 0": (lambda: hub.reachable("https://x.org", timeout=0), ValueError, "positive"),
    "reachable timeout inf": (lambda: hub.reachable("https://x.org", timeout=float("inf")), ValueError, "at most 600"),
    "reachable timeout NaN": (lambda: hub.reachable("https://x.org", timeout=float("nan")), ValueError, "at most 600"),
    "reachable timeout 1e300": (lambda: hub.reachable("https://x.org", timeout=1e300), ValueError, "at most 600"),
    "reachable timeout bool": (lambda: hub.reachable("https://x.org", timeout=True), ValueError, "seconds"),
    "dataset empty path": (lambda: hub.load_hf_dataset(""), ValueError, "nyu-mll/glue"),
    "dataset name int": (lambda: hub.load_hf_dataset("nyu-mll/glue", 2), ValueError, "configuration name"),
    "pretrained not callable": (lambda: hub.hf_pretrained(3, "bert-base-uncased"), TypeError, "from_pretrained"),
    "pretrained empty id": (lambda: hub.hf_pretrained(print, " "), ValueError, "model name"),
    "pretrained local_files_only": (lambda: hub.hf_pretrained(print, "x/y", local_files_only=True),
                                    TypeError, "PTCOURSE_OFFLINE"),
    "weights a string": (lambda: hub.torchvision_weights("resnet18"), TypeError, "weights enum"),
    "notice not text": (lambda: hub.notice(None), ValueError, "non-empty string"),
    # --- results
    "record chapter numpy float": (lambda: results.record_result(np.float64(1), "e", "m", [1.0], dataset="d"),
                                   ValueError, "chapter must be an int"),
    "record values 2-D": (lambda: results.record_result(1, "e", "m", np.ones((2, 2)), dataset="d"),
                          ValueError, "finite number"),
    "record values generator": (lambda: results.record_result(1, "e", "m", (v for v in [1.0]), dataset="d"),
                                TypeError, "list of numbers"),
    "record values inf": (lambda: results.record_result(1, "e", "m", [float("inf")], dataset="d"),
                          ValueError, "finite"),
    "record notes not str": (lambda: results.record_result(1, "e", "m", [1.0], dataset="d", notes=3),
                             TypeError, "notes"),
    "record device int": (lambda: results.record_result(1, "e", "m", [1.0], dataset="d", device=0),
                          TypeError, "device"),
    "record at not dict": (lambda: results.record_result(1, "e", "m", [1.0], dataset="d", at=[("k", 1)]),
                           TypeError, "at must be None"),
    "results_file chapter str": (lambda: results.results_file("3"), ValueError, "chapter must be an int"),
    "load_results unknown profile": (lambda: results.load_results(profile="huge"), ValueError, "profile"),
    "summarise a list": (lambda: results.summarise([1, 2]), TypeError, "load_results"),
}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("PTCOURSE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("PTCOURSE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PTCOURSE_DEVICE", "cpu")


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_rejected_with_a_clear_message(case):
    call, error, words = BAD[case]
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value), f"the message should mention {words!r}: {info.value}"


GOOD = {
    "per_class numpy k and seed": lambda: data.per_class_indices(Y, k=np.int64(2), seed=np.int32(1)),
    "load_splits numpy sizes": lambda: data.load_splits("digits", train_size=np.int64(200), seed=np.int64(1)),
    "load_splits numpy fraction": lambda: data.load_splits("digits", val_fraction=np.float32(0.2)),
    "subset numpy indices": lambda: image_set().subset(np.array([0, 5])),
    "subset tensor indices": lambda: image_set().subset(torch.tensor([1, 2])),
    "DeviceLoader numpy batch": lambda: DeviceLoader((X, Y), np.int64(4), device="cpu"),
    "seed numpy int": lambda: repro.seed_everything(np.int64(3)),
    "reachable numpy timeout": lambda: hub.reachable("https://x.org", timeout=np.float32(0.5)),
    "record numpy chapter": lambda: results.record_result(np.int64(1), "e", "m", np.array([0.5]), dataset="d"),
    "record torch device": lambda: results.record_result(1, "e", "m", [0.5], dataset="d", device=torch.device("cpu")),
    "as_device upper case": lambda: device.as_device(" CPU "),
    "plot default columns without val": lambda: plots.plot_history(HISTORY),
}


@pytest.mark.parametrize("case", list(GOOD), ids=list(GOOD))
def test_valid_input_of_other_types_is_accepted(case, monkeypatch):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    GOOD[case]()


def test_numpy_inputs_give_the_same_result_as_python_ints():
    assert torch.equal(data.per_class_indices(Y, k=np.int64(2), seed=np.int64(4)),
                       data.per_class_indices(Y, k=2, seed=4))
    loader = DeviceLoader((X, Y), np.int64(4), device="cpu")
    assert len(loader) == 2 and type(loader.batch_size) is int


def test_labels_of_shape_n_by_1_never_give_wrong_indices():
    """The (N, 1) bug: torch.nonzero on a column gave (row, col) pairs, flattened into fake indices."""
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="flatten"):
        data.per_class_indices(y.unsqueeze(1), k=2)
    assert sorted(data.per_class_indices(y.unsqueeze(1).flatten(), k=3).tolist()) == list(range(6))


@pytest.mark.parametrize("value", ["huge", "standard-ish", "1"])
def test_a_bad_profile_variable_says_how_to_fix_it(monkeypatch, value):
    monkeypatch.setenv("PTCOURSE_PROFILE", value)
    with pytest.raises(ValueError) as info:
        profiles.by_profile(fast=1, standard=2, full=3)
    assert "fast, standard, full or auto" in str(info.value) and "%env PTCOURSE_PROFILE" in str(info.value)


@pytest.mark.parametrize("value", ["tpu", "cuda:x", "gpu"])
def test_a_bad_device_variable_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("PTCOURSE_DEVICE", value)
    with pytest.raises(ValueError, match="PTCOURSE_DEVICE"):
        device.get_device()


def test_a_cache_variable_pointing_at_a_file_is_rejected(tmp_path, monkeypatch):
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    monkeypatch.setenv("PTCOURSE_DATA", str(afile))
    with pytest.raises(NotADirectoryError, match="PTCOURSE_DATA"):
        paths.data_dir()


def test_a_corrupt_mnist_cache_is_reported_as_corrupt_with_its_folder(tmp_path, capsys):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\x00\x00\x08\x03truncated")
    train, _ = data.load_mnist(root=tmp_path)
    out = capsys.readouterr().out
    assert train.name == "digits"
    assert "corrupt" in out and str(raw) in out and "prefetch" in out and "not cached" not in out
    assert len(out.strip().splitlines()) == 1


def test_a_missing_mnist_cache_names_the_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    data.load_mnist(root=tmp_path)
    out = capsys.readouterr().out
    assert "not cached in" in out and str(tmp_path / "MNIST" / "raw") in out and "offline mode is on" in out
