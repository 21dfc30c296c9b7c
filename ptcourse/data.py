"""Offline-first image data: always-present digits, MNIST / Fashion-MNIST when reachable.

Usage::

    from ptcourse.data import load_splits, subset_per_class, DeviceLoader
    splits = load_splits("mnist", val_fraction=0.1)      # falls back to digits offline
    few = subset_per_class(splits.train, k=10)           # 10 labelled images per class
    loader = DeviceLoader(few, batch_size=64, shuffle=True)

Images are float32 tensors of shape (N, 1, H, W) in [0, 1]; labels are int64.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ptcourse import _checks
from ptcourse._checks import positive_int
from ptcourse.paths import data_dir

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's first MNIST mirror
_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _labels(y: object, what: str = "y") -> torch.Tensor:
    """Check that ``y`` is a 1-D integer tensor of class indices (>= 0)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{what} must be a torch tensor of class indices, got {type(y).__name__}")
    if y.ndim != 1:
        hint = f" (use {what}.flatten())" if y.ndim == 2 and 1 in y.shape else ""
        raise ValueError(f"{what} must be 1-D, one label per example, got shape {tuple(y.shape)}{hint}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"{what} must hold integer class indices, got dtype {y.dtype} (use {what}.long())")
    if len(y) and int(y.min()) < 0:
        raise ValueError(f"{what} holds a negative class index ({int(y.min())}); classes are 0, 1, 2, ...")
    return y


@dataclass(eq=False)
class ImageSet(Dataset):
    """Images ``x`` (N, C, H, W) in [0, 1] with labels ``y`` (N,), a name and class names (chapter 01).

    Usage: ``x, y = ds[0]; small = ds.subset([0, 5, 9])``
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    classes: list[str]

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or self.x.ndim != 4:
            shape = tuple(self.x.shape) if isinstance(self.x, torch.Tensor) else type(self.x).__name__
            raise ValueError(f"expected x of shape (N, C, H, W), got {shape}")
        if not self.x.dtype.is_floating_point:
            raise TypeError(f"x must be a float tensor with values in [0, 1], got dtype {self.x.dtype} "
                            "(for uint8 pixels use x.float() / 255)")
        _labels(self.y)
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} images but y has {len(self.y)} labels")
        if not torch.isfinite(self.x).all():
            raise ValueError("x contains NaN or infinite values")
        low, high = (float(self.x.min()), float(self.x.max())) if len(self.x) else (0.0, 1.0)
        if not 0 <= low <= high <= 1:
            raise ValueError(f"x must hold pixel values in [0, 1], got {low:g} to {high:g} (divide 0-255 pixels "
                             "by 255; normalise later, in the model or the loader)")
        if not isinstance(self.name, str) or not isinstance(self.classes, list) or \
                not all(isinstance(c, str) for c in self.classes):
            raise TypeError("name must be a string and classes a list of strings")
        if len(self.y) and self.classes and int(self.y.max()) >= len(self.classes):
            raise ValueError(f"label {int(self.y.max())} has no class name: there are {len(self.classes)} classes")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "ImageSet":
        """A new ImageSet with the given rows (integer indices, e.g. from :func:`per_class_indices`)."""
        idx = torch.as_tensor(np.asarray(indices) if not isinstance(indices, torch.Tensor) else indices)
        if idx.ndim != 1 or not (idx.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
                                 or len(idx) == 0):
            raise TypeError(f"indices must be a 1-D sequence of integer row numbers, got {idx.dtype} of "
                            f"shape {tuple(idx.shape)} (for a boolean mask use torch.nonzero(mask).flatten())")
        idx = idx.long()
        if len(idx) and not (-len(self) <= int(idx.min()) and int(idx.max()) < len(self)):
            raise IndexError(f"indices must be between 0 and {len(self) - 1}, got {int(idx.min())}..{int(idx.max())}")
        return ImageSet(self.x[idx], self.y[idx], self.name, self.classes)

    def __repr__(self) -> str:
        return f"ImageSet({self.name!r}, n={len(self)}, image={tuple(self.x.shape[1:])})"


class Splits(NamedTuple):
    """Disjoint train / validation / test sets (chapter 01).

    Usage: ``train, val, test = load_splits("digits")``
    """

    train: ImageSet
    val: ImageSet
    test: ImageSet


def is_online(url: str = MNIST_URL, timeout: float = 3.0) -> bool:
    """True if ``url`` answers within ``timeout`` seconds (the probe of :func:`ptcourse.hub.reachable`) (chapter 00).

    Proxies are honoured and a hanging DNS lookup cannot block longer than the timeout.
    ``PTCOURSE_OFFLINE=1`` makes it return False without trying (classrooms, tests).

    Usage: ``if is_online(): ...``
    """
    from ptcourse.hub import reachable

    return reachable(url, timeout)


def _stratified_split(y: torch.Tensor, held_out: float | int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, held) holding out a fraction (float) or a count (int), class by class."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    try:
        keep, held = train_test_split(idx, test_size=held_out, stratify=y.numpy(), random_state=seed)
    except ValueError as error:  # a part would miss a class
        raise ValueError(f"cannot split {len(y)} examples of {len(torch.unique(y))} classes, holding out {held_out}, "
                         f"so that both parts have every class ({error})") from error
    return torch.as_tensor(np.sort(keep)), torch.as_tensor(np.sort(held))


def load_digits() -> tuple[ImageSet, ImageSet]:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), as (train, test) (chapter 01).

    Always available offline. The test set is a fixed stratified 20 %, the same in
    every run and for every seed, so it can never leak into training.

    Usage: ``train, test = load_digits()``
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    keep, held = _stratified_split(y, 0.2, seed=0)
    classes = [str(c) for c in range(10)]
    return ImageSet(x[keep], y[keep], "digits", classes), ImageSet(x[held], y[held], "digits", classes)


def _from_torchvision(name: str, root: Path, download: bool) -> tuple[ImageSet, ImageSet]:
    import torchvision

    cls = getattr(torchvision.datasets, _TORCHVISION[name])
    parts = []
    for train in (True, False):
        ds = cls(root=str(root), train=train, download=download)
        x = ds.data.unsqueeze(1).float().div_(255.0)
        parts.append(ImageSet(x, ds.targets.long(), name, list(ds.classes)))
    return parts[0], parts[1]


def _raw_files(name: str, root: Path) -> list[Path]:
    """The files torchvision reads for ``name`` under ``root``."""
    folder = root / _TORCHVISION[name] / "raw"
    return [folder / f"{split}-{kind}-idx{dim}-ubyte" for split in ("train", "t10k")
            for kind, dim in (("images", 3), ("labels", 1))]


def load_torchvision(name: str, root: str | Path | None = None) -> tuple[ImageSet, ImageSet]:
    """Load ``"mnist"`` or ``"fashion_mnist"`` as (train, test) with torchvision (chapter 01).

    Uses the cache in ``root`` (default :func:`data_dir`) when it is there; otherwise
    downloads (checksums verified by torchvision) with a short network timeout. When
    the data cannot be had, or the cache is corrupt, prints one line saying so and
    returns the always-present digits.

    Usage: ``train, test = load_torchvision("fashion_mnist")``
    """
    if not isinstance(name, str) or name not in _TORCHVISION:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(_TORCHVISION)}")
    if root is not None and not isinstance(root, (str, Path)):
        raise TypeError(f"root must be a folder path (str or Path) or None, got {type(root).__name__}")
    root = Path(root).expanduser() if root is not None else data_dir()
    files = _raw_files(name, root)
    if all(f.exists() for f in files):
        try:
            return _from_torchvision(name, root, download=False)
        except Exception as err:  # noqa: BLE001 - truncated or overwritten files
            print(f"[ptcourse] the {name} cache in {files[0].parent} is corrupt ({type(err).__name__}: "
                  f"{str(err)[:80]}); delete that folder and run `python -m ptcourse prefetch` to download "
                  "it again. Using the bundled 8x8 digits instead.")
            return load_digits()
    from ptcourse.hub import socket_timeout, why_offline

    reason = why_offline(MNIST_URL)
    if is_online():
        try:
            with socket_timeout():
                return _from_torchvision(name, root, download=True)
        except Exception as err:  # any download failure falls back, never crashes
            reason = f"the download failed ({type(err).__name__})"
    print(f"[ptcourse] {name} is not cached in {files[0].parent} and {reason}: using the bundled 8x8 digits instead.")
    return load_digits()


def load_mnist(root: str | Path | None = None) -> tuple[ImageSet, ImageSet]:
    """MNIST (28x28) as (train, test); the digits when offline (chapter 00). Usage: ``train, test = load_mnist()``"""
    return load_torchvision("mnist", root)


def load_fashion_mnist(root: str | Path | None = None) -> tuple[ImageSet, ImageSet]:
    """Fashion-MNIST as (train, test); the digits when offline (chapter 01).

    Usage: ``train, test = load_fashion_mnist()``
    """
    return load_torchvision("fashion_mnist", root)


def _stratified_sample(ds: ImageSet, n: int | None, seed: int) -> ImageSet:
    if n is None or n >= len(ds):
        return ds
    n = int(n)
    n_classes = len(torch.unique(ds.y))
    if n < n_classes:
        raise ValueError(f"a stratified subset needs at least one example per class: size >= {n_classes}, got {n}")
    keep, _ = _stratified_split(ds.y, len(ds) - n, seed)
    return ds.subset(keep)


def load_splits(
    name: str = "mnist",
    *,
    val_fraction: float = 0.1,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
) -> Splits:
    """Disjoint, stratified train / validation / test sets (chapter 01).

    The test set is the dataset's own test set (optionally a fixed subsample of it);
    the validation set is carved out of the training set, so nothing is shared.
    ``train_size`` caps the training set (after the validation split).

    Usage: ``train, val, test = load_splits("mnist", train_size=5000)``
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real) \
            or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be a number strictly between 0 and 1, got {val_fraction!r}")
    for what, size in (("train_size", train_size), ("test_size", test_size)):
        if size is not None:
            positive_int(size, what)
    seed = _checks.seed(seed)
    if name == "digits":
        train, test = load_digits()
    elif name in _TORCHVISION:
        train, test = load_torchvision(name)
    else:
        raise ValueError(f"unknown dataset {name!r}; expected 'digits', 'mnist' or 'fashion_mnist'")
    keep, held = _stratified_split(train.y, float(val_fraction), seed)
    train, val = train.subset(keep), train.subset(held)
    return Splits(
        _stratified_sample(train, train_size, seed),
        val,
        _stratified_sample(test, test_size, seed=0),
    )


def per_class_indices(y: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``k`` randomly chosen examples of every class in the labels ``y`` (chapter 02).

    Usage: ``idx = per_class_indices(train.y, k=5, seed=1)  # then train.x[idx]``
    """
    y = _labels(y)
    k = positive_int(k, "k")
    if len(y) == 0:
        raise ValueError("y is empty: there are no examples to choose from")
    gen = torch.Generator().manual_seed(_checks.seed(seed))
    chosen = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        if len(idx) < k:
            raise ValueError(f"class {int(c)} has only {len(idx)} examples, fewer than k={k}")
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
    return torch.sort(torch.cat(chosen)).values


def subset_per_class(ds: ImageSet, k: int, seed: int = 0) -> ImageSet:
    """Exactly ``k`` randomly chosen examples of every class (a few-label training set) (chapter 01).

    Usage: ``few = subset_per_class(train, k=5, seed=1)``
    """
    if not isinstance(ds, ImageSet):
        raise TypeError(f"ds must be an ImageSet (e.g. from load_splits), got {type(ds).__name__}")
    return ds.subset(per_class_indices(ds.y, k, seed))


class DeviceLoader:
    """Batches of tensors that already live on the device: no workers, no copies (chapter 01).

    For datasets that fit in device memory this is much faster than a DataLoader.
    Shuffling draws a permutation on the device (its RNG is seeded by
    ``seed_everything`` and saved in ``fit`` checkpoints).

    Usage::

        loader = DeviceLoader(train_set, batch_size=128, shuffle=True)
        for x, y in loader: ...
    """

    def __init__(
        self,
        data: ImageSet | TensorDataset | Sequence[torch.Tensor],
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(data, ImageSet):
            tensors = (data.x, data.y)
        elif isinstance(data, TensorDataset):
            tensors = data.tensors
        elif isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
            tensors = tuple(data)
        else:
            raise TypeError("data must be an ImageSet, a TensorDataset or a tuple of tensors")
        if any(t.ndim == 0 for t in tensors):
            raise ValueError("every tensor needs a first (example) dimension; got a 0-d tensor")
        if len({len(t) for t in tensors}) != 1:
            raise ValueError(f"all tensors need the same length, got {[len(t) for t in tensors]}")
        batch_size = positive_int(batch_size, "batch_size")
        for what, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                raise TypeError(f"{what} must be True or False, got {flag!r}")
        n = len(tensors[0])
        if n == 0:
            raise ValueError("data is empty: a loader over 0 examples yields no batches")
        if drop_last and n < batch_size:
            raise ValueError(f"drop_last=True with batch_size={batch_size} > {n} examples yields no batches")
        from ptcourse.device import as_device, get_device

        self.device = get_device() if device is None else as_device(device)
        self.tensors = tuple(t.to(self.device) for t in tensors)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.dataset = data if isinstance(data, Dataset) else TensorDataset(*tensors)  # like DataLoader.dataset

    def __len__(self) -> int:
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self.tensors[0])
        order = torch.randperm(n, device=self.device) if self.shuffle else None
        for i in range(len(self)):
            if order is None:
                yield tuple(t[i * self.batch_size:(i + 1) * self.batch_size] for t in self.tensors)
            else:
                idx = order[i * self.batch_size:(i + 1) * self.batch_size]
                yield tuple(t[idx] for t in self.tensors)
