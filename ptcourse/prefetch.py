"""Classroom prefetch: download every online asset of every chapter before the lesson.

Run it while the network works; afterwards every chapter finds its data and weights in
the caches, and a room full of learners does not download the same files at once.
Each asset is fetched with the course's own loaders (the code the chapters run), then
verified (checksums, and that it loads); assets already cached are only verified, so a
second run downloads nothing.

Usage::

    python -m ptcourse prefetch                   # everything (make prefetch)
    python -m ptcourse prefetch --list            # what is cached; downloads nothing
    python -m ptcourse prefetch sst2 bert-small   # some assets, by id
    python -m ptcourse prefetch --profile standard  # only what that profile uses

The asset ids below are the ones the chapters load; keep them in step.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ptcourse import hub
from ptcourse.paths import data_dir

# The course's online assets: one place, used by the chapters and by this prefetch.
MNIST = "mnist"                                              # ch01-03, torchvision
FASHION_MNIST = "fashion_mnist"                              # ch01-03, torchvision
WIKITEXT = ("Salesforce/wikitext", "wikitext-103-raw-v1")    # ch06, load_hf_dataset
SST2 = ("nyu-mll/glue", "sst2")                              # ch07, load_hf_dataset
BERT_SMALL = "google/bert_uncased_L-4_H-256_A-4"             # ch07 (standard), hf_pretrained
BERT_BASE = "google-bert/bert-base-uncased"                  # ch07 (full), hf_pretrained
RESNET18 = "ResNet18_Weights.IMAGENET1K_V1"                  # ch08, torchvision_weights
RESNET50 = "ResNet50_Weights.IMAGENET1K_V2"                  # ch08, torchvision_weights
PET_SPLITS = ("trainval", "test")                            # ch08, OxfordIIITPet(root=data_dir())


@dataclass(frozen=True)
class Asset:
    """One downloadable thing: where it comes from, where it is kept, how to get and check it (chapter 00).

    Usage: ``[a.id for a in assets() if a.is_cached()]``
    """

    id: str
    chapters: str
    description: str
    source: Callable[[], str]          # a URL probed before downloading
    location: Callable[[], Path]       # the file or folder that holds it once cached
    is_cached: Callable[[], bool]
    download: Callable[[], None]       # raises if it cannot
    verify: Callable[[], str]          # raises if the cached copy is broken; else a summary
    profiles: tuple[str, ...] = ("fast", "standard", "full")


# ---------------------------------------------------------------- torchvision datasets
def _mnist_like(name: str) -> Asset:
    from ptcourse import data

    cls_name = data._TORCHVISION[name]

    def cls():
        import torchvision

        return getattr(torchvision.datasets, cls_name)

    def download() -> None:
        with hub.socket_timeout():
            data._from_torchvision(name, data_dir(), download=True)

    def verify() -> str:
        from torchvision.datasets.utils import check_integrity

        raw = data_dir() / cls_name / "raw"
        for filename, md5 in cls().resources:
            if (raw / filename).exists() and not check_integrity(str(raw / filename), md5):
                raise ValueError(f"{raw / filename} fails its MD5 checksum")
        train, test = data._from_torchvision(name, data_dir(), download=False)
        return f"{len(train):,} + {len(test):,} images"

    return Asset(name, "01-03", f"{cls_name} (torchvision)", lambda: cls().mirrors[0],
                 lambda: data_dir() / cls_name, lambda: all(f.exists() for f in data._raw_files(name, data_dir())),
                 download, verify)


def _pets() -> Asset:
    def pets(split: str, download: bool):
        import torchvision

        return torchvision.datasets.OxfordIIITPet(root=str(data_dir()), split=split, download=download)

    def source() -> str:
        import torchvision

        return torchvision.datasets.OxfordIIITPet._RESOURCES[0][0]

    def download() -> None:
        with hub.socket_timeout():
            for split in PET_SPLITS:
                pets(split, download=True)

    def verify() -> str:
        import torchvision
        from torchvision.datasets.utils import check_integrity

        folder = data_dir() / "oxford-iiit-pet"
        for url, md5 in torchvision.datasets.OxfordIIITPet._RESOURCES:
            archive = folder / os.path.basename(url)
            if archive.exists() and not check_integrity(str(archive), md5):
                raise ValueError(f"{archive} fails its MD5 checksum")
        sizes = {split: len(pets(split, download=False)) for split in PET_SPLITS}
        return " + ".join(f"{n:,} {split}" for split, n in sizes.items()) + " images"

    folder = lambda: data_dir() / "oxford-iiit-pet"  # noqa: E731
    return Asset("oxford-pets", "08", "Oxford-IIIT Pet (torchvision)", source, folder,
                 lambda: (folder() / "images").is_dir() and (folder() / "annotations").is_dir(), download, verify)


# ---------------------------------------------------------------- Hugging Face
def _hf_dataset(asset_id: str, path: str, name: str, chapters: str) -> Asset:
    local = lambda: data_dir() / "hf" / hub._slug(path, name)  # noqa: E731 - where load_hf_dataset keeps it

    def download() -> None:
        if hub.load_hf_dataset(path, name) is None:
            raise RuntimeError("the hub did not deliver it (see the line above)")

    def verify() -> str:
        import datasets

        loaded = datasets.load_from_disk(str(local()))
        empty = [split for split, part in loaded.items() if part.num_rows == 0]
        if empty:
            raise ValueError(f"the splits {empty} are empty")
        return " / ".join(f"{split} {part.num_rows:,}" for split, part in loaded.items()) + " rows"

    return Asset(asset_id, chapters, f"{path} ({name}) from the Hugging Face hub", hub.hf_endpoint, local,
                 lambda: (local() / "dataset_dict.json").exists(), download, verify)


def _hf_model_folder(repo_id: str) -> Path:
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"


def _hf_model(asset_id: str, repo_id: str, chapters: str, profiles: tuple[str, ...]) -> Asset:
    def is_cached() -> bool:
        from huggingface_hub import try_to_load_from_cache

        found = [try_to_load_from_cache(repo_id, f) for f in ("config.json", "vocab.txt",
                                                              "model.safetensors", "pytorch_model.bin")]
        return all(isinstance(f, str) for f in found[:2]) and any(isinstance(f, str) for f in found[2:])

    def download() -> None:
        from transformers import AutoModel, AutoTokenizer

        for loader in (AutoTokenizer, AutoModel):
            if hub.hf_pretrained(loader, repo_id) is None:
                raise RuntimeError("the hub did not deliver it (see the line above)")

    def verify() -> str:
        from transformers import AutoConfig, AutoTokenizer

        checked = _check_blobs(_hf_model_folder(repo_id) / "blobs")
        config = AutoConfig.from_pretrained(repo_id, local_files_only=True)
        AutoTokenizer.from_pretrained(repo_id, local_files_only=True)
        return f"{config.num_hidden_layers} layers, width {config.hidden_size}; {checked} file(s) SHA-256 checked"

    return Asset(asset_id, chapters, f"{repo_id} (tokenizer + weights, Hugging Face hub)", hub.hf_endpoint,
                 lambda: _hf_model_folder(repo_id), is_cached, download, verify, profiles)


def _check_blobs(folder: Path) -> int:
    """Large hub files are stored under their SHA-256: recompute it. Returns how many were checked."""
    checked = 0
    for blob in folder.iterdir() if folder.is_dir() else []:
        if len(blob.name) == 64 and all(c in "0123456789abcdef" for c in blob.name):
            if hub.sha256_of(blob) != blob.name:
                raise ValueError(f"{blob} does not match its SHA-256")
            checked += 1
    return checked


# ---------------------------------------------------------------- torchvision weights
def _weights(name: str) -> Asset:
    def weights():
        import torchvision

        return torchvision.models.get_weight(name)

    def location() -> Path:
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights().url)

    def download() -> None:
        if hub.torchvision_weights(weights()) is None:
            raise RuntimeError("the download did not succeed (see the line above)")

    def verify() -> str:
        return f"SHA-256 starts with {hub.check_torch_hash(location())}, as its name says"

    return Asset(name.split("_")[0].lower(), "08", f"torchvision {name}", lambda: hub.TORCH_URL, location,
                 lambda: location().exists(), download, verify)


def assets() -> list[Asset]:
    """Every online asset of the course, in chapter order. Usage: ``[a.id for a in assets()]``"""
    return [
        _mnist_like(MNIST), _mnist_like(FASHION_MNIST),
        _hf_dataset("wikitext-103", *WIKITEXT, chapters="06"),
        _hf_dataset("sst2", *SST2, chapters="07"),
        _hf_model("bert-small", BERT_SMALL, "07", ("fast", "standard", "full")),
        _hf_model("bert-base", BERT_BASE, "07", ("full",)),
        _weights(RESNET18), _weights(RESNET50),
        _pets(),
    ]


# ---------------------------------------------------------------- the command
def size_of(path: Path) -> int:
    """Bytes in a file or under a folder (links not followed) (chapter 00). Usage: ``size_of(data_dir())``"""
    if path.is_symlink() or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human(n: int) -> str:
    """``1536`` -> ``'1.5 KB'`` (chapter 00).

    Usage: ``human(size_of(data_dir()))``
    """
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _one(asset: Asset, download: bool) -> str:
    """Fetch (if asked and missing) and verify one asset; returns "cached", "downloaded",
    "missing" or "failed", after printing one line about it."""
    head = f"{asset.id:<14} ch{asset.chapters:<6}"
    cached = asset.is_cached()
    if not cached and not download:
        print(f"{head} not cached  ({asset.description})")
        return "missing"
    start = time.perf_counter()
    try:
        if not cached:
            if not hub.reachable(asset.source()):
                raise ConnectionError(f"{asset.source()} is unreachable")
            print(f"{head} downloading {asset.description} ...", flush=True)
            asset.download()
        summary = asset.verify()
    except Exception as err:  # noqa: BLE001 - report every asset, never stop at the first failure
        fix = f"delete {asset.location()} and run again" if asset.is_cached() else "run again when the network works"
        print(f"{head} FAILED: {type(err).__name__}: {str(err)[:160]} -> {fix}")
        return "failed"
    how = "already cached" if cached else f"downloaded in {time.perf_counter() - start:.0f} s"
    print(f"{head} {how}, verified: {summary}; {human(size_of(asset.location()))} in {asset.location()}")
    return "cached" if cached else "downloaded"


def prefetch(ids: Sequence[str] = (), profile: str | None = None, download: bool = True,
             catalogue: Sequence[Asset] | None = None) -> dict[str, str]:
    """Fetch and verify the assets (all, or the given ids / profile); returns {id: status} (chapter 00).

    Usage: ``prefetch(["sst2"])``
    """
    catalogue = list(catalogue) if catalogue is not None else assets()
    known = [a.id for a in catalogue]
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"unknown asset id(s) {unknown}; the course has {known}")
    chosen = [a for a in catalogue if (not ids or a.id in ids) and (profile is None or profile in a.profiles)]
    if download and hub.offline_requested():
        hub.notice("PTCOURSE_OFFLINE or HF_HUB_OFFLINE is set: nothing will be downloaded (unset it to prefetch).")
        download = False
    print(f"[ptcourse] {len(chosen)} asset(s); datasets in {data_dir()}")
    status = {a.id: _one(a, download) for a in chosen}
    counts = {s: list(status.values()).count(s) for s in ("cached", "downloaded", "missing", "failed")}
    total = sum(size_of(a.location()) for a in chosen)
    print(f"[ptcourse] {counts['cached']} already cached, {counts['downloaded']} downloaded, "
          f"{counts['missing']} not cached, {counts['failed']} failed; {human(total)} on disk.")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ptcourse prefetch [ids] [--list] [--profile P]``; exit 1 if anything failed or, unless
    ``--list``, is still not cached (e.g. offline mode is on); exit 2 for a bad argument or cache folder (chapter 00).

    Usage: ``sys.exit(main(["--list"]))``
    """
    parser = argparse.ArgumentParser(prog="python -m ptcourse prefetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help=f"asset ids (default: all): {', '.join(a.id for a in assets())}")
    parser.add_argument("--list", action="store_true", help="only report what is cached")
    parser.add_argument("--profile", choices=["fast", "standard", "full"], help="only the assets this profile uses")
    args = parser.parse_args(argv)
    try:
        status = prefetch(args.ids, args.profile, download=not args.list)
    except (ValueError, OSError) as err:  # an unknown id; a cache variable that names a file
        parser.error(str(err))
    return 1 if "failed" in status.values() or (not args.list and "missing" in status.values()) else 0
