"""ptcourse.hub: cache first, short network probes, None with one line when offline."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

from ptcourse import hub


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    hub._probe_cache.clear()
    monkeypatch.setenv("PTCOURSE_DATA", str(tmp_path / "data"))
    yield
    hub._probe_cache.clear()


def _serve(handler_cls):
    server = http.server.HTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_offline_requested_means_no_probe(monkeypatch):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    server = _serve(_Ok)
    try:
        assert not hub.reachable(f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()


def test_a_local_server_is_reachable(online):
    server = _serve(_Ok)
    try:
        assert hub.reachable(f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()


def test_a_closed_port_and_a_dead_proxy_are_unreachable_fast(online, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    assert not hub.reachable(f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "")
    assert not hub.reachable("https://huggingface.co")
    assert time.monotonic() - start < 10


def test_a_server_that_never_answers_costs_only_the_timeout(online):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never replies
    try:
        start = time.monotonic()
        assert not hub.reachable(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=1.0)
        assert time.monotonic() - start < 3
    finally:
        listener.close()


def test_unreachable_hub_gives_none_and_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from transformers import AutoTokenizer

    start = time.monotonic()
    assert hub.hf_pretrained(AutoTokenizer, "prajjwal1/bert-tiny-not-cached") is None
    assert hub.load_hf_dataset("nyu-mll/glue", "sst2") is None
    assert hub.torchvision_weights(__import__("torchvision").models.ResNet18_Weights.IMAGENET1K_V1) is None
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 3 and all(line.startswith("[ptcourse]") for line in lines)
    assert time.monotonic() - start < 10


def test_cached_dataset_loads_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    local = tmp_path / "data" / "hf" / "someone_tiny__default"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a", "b"]})}).save_to_disk(str(local))
    loaded = hub.load_hf_dataset("someone/tiny", "default")
    assert loaded["train"]["text"] == ["a", "b"]


def test_cached_model_loads_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    BertModel(config).save_pretrained(tmp_path / "tiny-bert")
    model = hub.hf_pretrained(BertModel, str(tmp_path / "tiny-bert"))
    assert model is not None and model.config.hidden_size == 8


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: hub.reachable("huggingface.co"), ValueError),
        (lambda: hub.reachable("https://x", timeout=0), ValueError),
        (lambda: hub.load_hf_dataset(""), ValueError),
        (lambda: hub.hf_pretrained(3, "bert-base-uncased"), TypeError),
        (lambda: hub.hf_pretrained(print, ""), ValueError),
        (lambda: hub.torchvision_weights("resnet18"), TypeError),
    ],
)
def test_bad_input_is_rejected_clearly(call, error):
    with pytest.raises(error):
        call()


# ---------------------------------------------------------------- found in review
def test_a_notice_is_one_line_even_when_an_error_message_is_not(capsys):
    hub.notice("loading x failed (OSError: first line\n  second line\tand a tab).")
    assert capsys.readouterr().out == "[ptcourse] loading x failed (OSError: first line second line and a tab).\n"


def test_offline_mode_is_named_as_the_reason_not_an_unreachable_network(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from transformers import AutoTokenizer

    hub.hf_pretrained(AutoTokenizer, "someone/not-cached")
    hub.load_hf_dataset("someone/not-cached")
    hub.torchvision_weights(__import__("torchvision").models.ResNet18_Weights.IMAGENET1K_V1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("offline mode is on" in line and "unreachable" not in line for line in lines)


def test_a_mirror_in_hf_endpoint_is_what_gets_probed(online, monkeypatch):
    probed = []
    monkeypatch.setattr(hub, "_head", lambda url, timeout: probed.append(url) or True)
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.example/")
    assert hub.hub_reachable() and probed == ["https://hf-mirror.example"]


def saved_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    local = tmp_path / "data" / "hf" / "someone_tiny__default"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a", "b"]})}).save_to_disk(str(local))
    return local


@pytest.mark.parametrize("damage", ["a missing shard", "a truncated shard", "corrupt JSON"])
def test_a_damaged_cached_dataset_gives_none_and_one_line_with_the_fix(damage, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    local = saved_dataset(tmp_path)
    shard = next(local.rglob("*.arrow"))
    if damage == "a missing shard":
        shard.unlink()
    elif damage == "a truncated shard":
        shard.write_bytes(shard.read_bytes()[:50])
    else:
        (local / "dataset_dict.json").write_text("{not json")
    capsys.readouterr()
    assert hub.load_hf_dataset("someone/tiny", "default") is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "is damaged" in lines[0] and "delete that folder" in lines[0]


def fake_hub(monkeypatch, save_fails: bool = False):
    datasets = pytest.importorskip("datasets")
    loaded = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a", "b"]})})
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name: loaded)
    if save_fails:  # interrupted half-way: some files written, then the disk fills up
        def save_to_disk(path):
            Path(path).mkdir(parents=True)
            (Path(path) / "dataset_dict.json").write_text('{"splits": ["train"]}')
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(loaded, "save_to_disk", save_to_disk)
    return loaded


def test_a_dataset_that_cannot_be_cached_is_still_returned_and_no_half_cache_is_left(monkeypatch, capsys, tmp_path):
    loaded = fake_hub(monkeypatch, save_fails=True)
    assert hub.load_hf_dataset("someone/tiny", "default") is loaded
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "could not be cached" in lines[0] and "No space left" in lines[0]
    assert not (tmp_path / "data" / "hf" / "someone_tiny__default").exists()  # so it is not taken for a cache


def test_a_downloaded_dataset_is_cached_whole(monkeypatch, tmp_path):
    fake_hub(monkeypatch)
    hub.load_hf_dataset("someone/tiny", "default")
    assert [p.name for p in (tmp_path / "data" / "hf").iterdir()] == ["someone_tiny__default"]
    monkeypatch.setattr(hub, "hub_reachable", lambda: pytest.fail("the cache was not used"))
    assert hub.load_hf_dataset("someone/tiny", "default")["train"]["text"] == ["a", "b"]


def fake_weights(url: str):
    """A torchvision weights enum member whose file lives at ``url``."""
    from torchvision.models._api import Weights, WeightsEnum

    class Fake(WeightsEnum):
        V1 = Weights(url=url, transforms=None, meta={})

    return Fake.V1


def test_cached_torchvision_weights_are_hash_checked(monkeypatch, capsys, tmp_path):
    import torch

    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({"w": torch.ones(3)}, folder / "file.pth")
    prefix = hub.sha256_of(folder / "file.pth")[:8]
    (folder / "file.pth").rename(folder / f"tiny-{prefix}.pth")
    weights = fake_weights(f"http://127.0.0.1:9/tiny-{prefix}.pth")
    assert torch.equal(hub.torchvision_weights(weights)["w"], torch.ones(3))
    torch.save({"w": torch.zeros(3)}, folder / f"tiny-{prefix}.pth")  # a valid file, but not the published one
    capsys.readouterr()
    assert hub.torchvision_weights(weights) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "does not match the SHA-256 prefix" in lines[0] and "Delete" in lines[0]


class _AnswersHeadHangsOnGet(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):  # noqa: N802 - the probe passes
        self.send_response(200)
        self.end_headers()

    def do_GET(self):  # noqa: N802 - the download stalls
        time.sleep(60)

    def log_message(self, *args):
        pass


def test_a_download_that_stalls_gives_up_after_the_network_timeout(online, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AnswersHeadHangsOnGet)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(hub, "TORCH_URL", url)
    result = []
    start = time.monotonic()
    worker = threading.Thread(target=lambda: result.append(hub.torchvision_weights(fake_weights(f"{url}/x-0123abcd.pth"),
                                                                                    progress=False)), daemon=True)
    worker.start()
    worker.join(hub.NETWORK_TIMEOUT_S + 15)
    server.shutdown()
    assert result == [None], "torchvision_weights hung on a stalled download"
    assert time.monotonic() - start < hub.NETWORK_TIMEOUT_S + 10
    assert "loading" in capsys.readouterr().out


def test_a_damaged_cached_model_gives_none_and_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    BertModel(config).save_pretrained(tmp_path / "tiny-bert")
    weights = tmp_path / "tiny-bert" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # an interrupted copy
    capsys.readouterr()
    assert hub.hf_pretrained(BertModel, str(tmp_path / "tiny-bert")) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "is damaged" in lines[0] and "hf cache rm" in lines[0]
