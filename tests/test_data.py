"""Offline-first data: real torchvision loading on small IDX files, fallbacks, splits, loaders."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from ptcourse import data
from ptcourse.data import DeviceLoader, ImageSet, load_digits, load_splits, subset_per_class


def write_idx(root, folder: str, n_train: int = 200, n_test: int = 50) -> None:
    """Write MNIST-format IDX files whose every image is unique (its index is in the pixels)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n, offset in (("train", n_train, 0), ("t10k", n_test, 10_000)):
        idx = np.arange(offset, offset + n)
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 0, 0], images[:, 0, 1] = idx // 256, idx % 256
        labels = (idx % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def image_ids(ds: ImageSet) -> set[int]:
    pixels = (ds.x[:, 0, 0, :2] * 255).round().long()
    return set((pixels[:, 0] * 256 + pixels[:, 1]).tolist())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_loader_reads_cached_idx_files(tmp_path, name, folder, capsys):
    write_idx(tmp_path, folder)
    train, test = data.load_torchvision(name, root=tmp_path)
    assert train.x.shape == (200, 1, 28, 28) and test.x.shape == (50, 1, 28, 28)
    assert train.x.dtype == torch.float32 and 0 <= train.x.min() and train.x.max() <= 1
    assert train.y.dtype == torch.long and train.name == name and len(train.classes) == 10
    assert capsys.readouterr().out == ""  # no fallback notice


def test_splits_are_disjoint_and_stratified(tmp_path, monkeypatch):
    write_idx(tmp_path, "MNIST", n_train=400, n_test=100)
    monkeypatch.setenv("PTCOURSE_DATA", str(tmp_path))
    train, val, test = load_splits("mnist", val_fraction=0.25, train_size=200, test_size=50, seed=3)
    ids = [image_ids(s) for s in (train, val, test)]
    assert [len(i) for i in ids] == [200, 100, 50]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert torch.bincount(val.y).tolist() == [10] * 10  # stratified
    # the test set is the same whatever the seed
    assert image_ids(load_splits("mnist", test_size=50, seed=7).test) == ids[2]


def test_offline_fallback_is_fast_and_says_one_line(tmp_path, monkeypatch, capsys):
    from ptcourse import hub

    monkeypatch.setenv("PTCOURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub._probe_cache.clear()

    def unreachable(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.perf_counter()
    train, test = data.load_mnist(root=tmp_path)
    assert time.perf_counter() - start < 10
    assert train.name == "digits" and train.x.shape[1:] == (1, 8, 8)
    lines = capsys.readouterr().out.strip().splitlines()
    hub._probe_cache.clear()
    assert len(lines) == 1 and "mnist/ does not answer" in lines[0] and "digits" in lines[0]


def test_failed_download_falls_back(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "is_online", lambda *a, **k: True)
    real = data._from_torchvision

    def failing(name, root, download):
        if download:
            raise OSError("connection reset")
        return real(name, root, download)

    monkeypatch.setattr(data, "_from_torchvision", failing)
    train, _ = data.load_fashion_mnist(root=tmp_path)
    assert train.name == "digits"
    assert "download failed (OSError)" in capsys.readouterr().out


def test_offline_env_skips_the_network(monkeypatch):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("network was tried"))
    assert data.is_online() is False


def test_digits_are_always_there_with_a_fixed_test_set():
    train, test = load_digits()
    assert len(train) + len(test) == 1797 and train.x.shape[1:] == (1, 8, 8)
    assert 0 <= float(train.x.min()) and float(train.x.max()) <= 1
    assert torch.equal(load_digits()[1].y, test.y)


def test_subset_per_class():
    train, _ = load_digits()
    few = subset_per_class(train, k=3, seed=1)
    assert torch.bincount(few.y).tolist() == [3] * 10
    assert not torch.equal(few.x, subset_per_class(train, k=3, seed=2).x)
    assert torch.equal(few.x, train.x[data.per_class_indices(train.y, k=3, seed=1)])
    with pytest.raises(ValueError, match="k must be >= 1"):
        subset_per_class(train, k=0)
    with pytest.raises(ValueError, match="fewer than k"):
        subset_per_class(train, k=10_000)


def test_bad_dataset_arguments():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_splits("cifar")
    with pytest.raises(ValueError, match="val_fraction"):
        load_splits("digits", val_fraction=1.5)
    with pytest.raises(ValueError, match="one example per class"):
        load_splits("digits", train_size=5)
    with pytest.raises(ValueError, match="shape"):
        ImageSet(torch.zeros(3, 8, 8), torch.zeros(3), "x", [])


def test_device_loader_visits_every_row_once_per_epoch():
    x = torch.arange(10).float().unsqueeze(1)
    loader = DeviceLoader((x, torch.arange(10)), batch_size=4, shuffle=True, device="cpu")
    assert len(loader) == 3
    for _ in range(2):
        seen = torch.cat([xb for xb, _ in loader]).flatten()
        assert sorted(seen.tolist()) == list(range(10))
    kept = DeviceLoader(TensorDataset(x), batch_size=4, drop_last=True, device="cpu")
    assert len(kept) == 2 and [len(b[0]) for b in kept] == [4, 4]


def test_device_loader_errors():
    with pytest.raises(TypeError, match="ImageSet"):
        DeviceLoader([1, 2, 3], batch_size=2)
    with pytest.raises(ValueError, match="same length"):
        DeviceLoader((torch.zeros(3), torch.zeros(4)), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader((torch.zeros(3),), batch_size=0)
