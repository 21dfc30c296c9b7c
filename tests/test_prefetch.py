"""Classroom prefetch against local fake sources: downloads once, verifies, reports; no real network."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import subprocess
import sys
import threading
import urllib.request
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from ptcourse import hub, prefetch
from ptcourse.prefetch import Asset


@pytest.fixture(autouse=True)
def sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv("PTCOURSE_DATA", str(tmp_path / "data"))
    hub._probe_cache.clear()
    yield
    hub._probe_cache.clear()


class Server:
    """A local HTTP server for the files in ``folder``, counting the GET requests."""

    def __init__(self, folder: Path):
        server = self
        self.gets: list[str] = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.gets.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    s = Server(folder)
    s.folder = folder
    yield s
    s.close()


def file_asset(server, target: Path, name: str = "weights.bin") -> Asset:
    """An asset like the course's: one file, downloaded over HTTP, verified by its SHA-256."""
    content = b"pretend weights " * 1000
    (server.folder / name).write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()

    def download():
        target.parent.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(server.url + name, target)

    def verify():
        if hashlib.sha256(target.read_bytes()).hexdigest() != digest:
            raise ValueError(f"{target} does not match its SHA-256")
        return "SHA-256 ok"

    return Asset("fake", "99", "a fake asset", lambda: server.url, lambda: target, target.exists, download, verify)


def test_downloads_once_then_only_verifies(online, server, tmp_path, capsys):
    asset = file_asset(server, tmp_path / "cache" / "weights.bin")
    assert prefetch.prefetch(catalogue=[asset]) == {"fake": "downloaded"}
    assert server.gets == ["/weights.bin"]
    first = capsys.readouterr().out
    assert "downloaded in" in first and "verified: SHA-256 ok" in first and "16.0 KB" in first
    assert prefetch.prefetch(catalogue=[asset]) == {"fake": "cached"}
    assert server.gets == ["/weights.bin"], "the second run downloaded again"
    second = capsys.readouterr().out
    assert "already cached, verified" in second and "1 already cached, 0 downloaded" in second


def test_a_corrupt_copy_is_reported_with_its_fix(online, server, tmp_path, capsys):
    target = tmp_path / "cache" / "weights.bin"
    asset = file_asset(server, target)
    prefetch.prefetch(catalogue=[asset])
    target.write_bytes(b"truncated")
    capsys.readouterr()
    assert prefetch.prefetch(catalogue=[asset]) == {"fake": "failed"}
    out = capsys.readouterr().out
    assert "FAILED" in out and "SHA-256" in out and f"delete {target}" in out


def test_an_unreachable_source_fails_fast_and_the_others_go_on(online, server, tmp_path, capsys):
    good = file_asset(server, tmp_path / "cache" / "good.bin")
    dead = Asset("dead", "99", "a dead source", lambda: "http://127.0.0.1:9/", lambda: tmp_path / "none",
                 lambda: False, lambda: pytest.fail("tried to download"), lambda: "")
    assert prefetch.prefetch(catalogue=[dead, good]) == {"dead": "failed", "fake": "downloaded"}
    assert "unreachable" in capsys.readouterr().out


def test_offline_requested_downloads_nothing(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    asset = file_asset(server, tmp_path / "cache" / "weights.bin")
    assert prefetch.prefetch(catalogue=[asset]) == {"fake": "missing"}
    assert server.gets == [] and "nothing will be downloaded" in capsys.readouterr().out


def write_mnist_gz(folder: Path, n_train: int = 200, n_test: int = 50) -> list[tuple[str, str]]:
    """MNIST-format files, gzipped like the real ones; returns torchvision's (filename, md5) list."""
    resources = []
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, payload in (("images-idx3", np.array([2051, n, 28, 28], ">u4").tobytes() + images.tobytes()),
                              ("labels-idx1", np.array([2049, n], ">u4").tobytes() + labels.tobytes())):
            name = f"{prefix}-{kind}-ubyte.gz"
            (folder / name).write_bytes(gzip.compress(payload))
            resources.append((name, hashlib.md5((folder / name).read_bytes()).hexdigest()))
    return resources


def test_mnist_through_torchvision_from_a_local_mirror(online, server, monkeypatch, capsys, tmp_path):
    """The real MNIST asset: torchvision downloads and checks MD5s, prefetch verifies and reports."""
    import torchvision

    resources = write_mnist_gz(server.folder)
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [server.url])
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", resources)
    assert prefetch.prefetch(["mnist"]) == {"mnist": "downloaded"}
    requests = len(server.gets)
    assert set(server.gets) == {"/" + name for name, _ in resources}
    assert "verified: 200 + 50 images" in capsys.readouterr().out
    assert prefetch.prefetch(["mnist"]) == {"mnist": "cached"} and len(server.gets) == requests
    gz = tmp_path / "data" / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(b"tampered")
    capsys.readouterr()
    assert prefetch.prefetch(["mnist"]) == {"mnist": "failed"}
    assert "fails its MD5 checksum" in capsys.readouterr().out


def test_a_hub_dataset_is_saved_once_and_loaded_from_disk(online, monkeypatch, capsys):
    """SST-2 through ptcourse.hub.load_hf_dataset, with the hub replaced by a small local dataset."""
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(path, name):
        calls.append((path, name))
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict({"sentence": ["good", "bad"],
                                                                          "label": [1, 0]})})

    monkeypatch.setattr(hub, "reachable", lambda url, timeout=3.0: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert prefetch.prefetch(["sst2"]) == {"sst2": "downloaded"}
    assert calls == [prefetch.SST2] and "verified: train 2 rows" in capsys.readouterr().out
    assert prefetch.prefetch(["sst2"]) == {"sst2": "cached"} and len(calls) == 1


def test_torchvision_weights_are_checked_against_the_hash_in_their_name(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    resnet = next(a for a in prefetch.assets() if a.id == "resnet18")
    assert resnet.location().name.startswith("resnet18-") and not resnet.is_cached()
    resnet.location().parent.mkdir(parents=True)
    resnet.location().write_bytes(b"not the real weights")
    assert prefetch.prefetch(["resnet18"]) == {"resnet18": "failed"}
    assert "SHA-256 prefix" in capsys.readouterr().out


def test_hub_blobs_are_checked_against_their_sha256(tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    content = b"model weights"
    (blobs / hashlib.sha256(content).hexdigest()).write_bytes(content)
    (blobs / "0123abcd").write_bytes(b"small text files are stored under their git hash")
    assert prefetch._check_blobs(blobs) == 1
    (blobs / hashlib.sha256(content).hexdigest()).write_bytes(b"tampered")
    with pytest.raises(ValueError, match="SHA-256"):
        prefetch._check_blobs(blobs)


def test_the_catalogue_has_every_chapter_asset_with_the_agreed_ids():
    ids = [a.id for a in prefetch.assets()]
    assert len(ids) == len(set(ids))
    assert ids == ["mnist", "fashion_mnist", "wikitext-103", "sst2", "bert-small", "bert-base",
                   "resnet18", "resnet50", "oxford-pets"]
    assert prefetch.WIKITEXT == ("Salesforce/wikitext", "wikitext-103-raw-v1")
    assert prefetch.SST2 == ("nyu-mll/glue", "sst2")
    assert (prefetch.BERT_SMALL, prefetch.BERT_BASE) == ("google/bert_uncased_L-4_H-256_A-4",
                                                         "google-bert/bert-base-uncased")
    assert (prefetch.RESNET18, prefetch.RESNET50) == ("ResNet18_Weights.IMAGENET1K_V1", "ResNet50_Weights.IMAGENET1K_V2")
    assert [a.id for a in prefetch.assets() if "standard" in a.profiles and "bert" in a.id] == ["bert-small"]
    with pytest.raises(ValueError, match="unknown asset"):
        prefetch.prefetch(["imagenet"])


def test_the_command_lists_without_downloading(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PTCOURSE_DATA": str(tmp_path / "data"), "TORCH_HOME": str(tmp_path / "t"),
           "HF_HOME": str(tmp_path / "hf"), "PTCOURSE_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    out = subprocess.run([sys.executable, "-m", "ptcourse", "prefetch", "--list"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(" not cached  (") == 9 and "0 already cached, 0 downloaded, 9 not cached" in out.stdout


def prefetch_command(tmp_path, *args, **env):
    full = {"PATH": "/usr/bin:/bin", "PTCOURSE_DATA": str(tmp_path / "data"), "TORCH_HOME": str(tmp_path / "t"),
            "HF_HOME": str(tmp_path / "hf"), "PTCOURSE_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1]),
            **env}
    return subprocess.run([sys.executable, "-m", "ptcourse", "prefetch", *args], env=full, capture_output=True,
                          text=True, timeout=120)


def test_a_prefetch_that_downloads_nothing_offline_fails(tmp_path):
    out = prefetch_command(tmp_path, "mnist")
    assert out.returncode == 1 and "nothing will be downloaded" in out.stdout
    assert prefetch_command(tmp_path, "mnist", "--list").returncode == 0  # listing is not fetching


def test_a_data_folder_that_is_a_file_is_one_line_not_a_traceback(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = prefetch_command(tmp_path, "--list", PTCOURSE_DATA=str(blocker))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "is a file, not a folder: point PTCOURSE_DATA at a folder" in out.stderr
