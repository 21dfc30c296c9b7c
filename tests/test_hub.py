"""ptcourse.hub: cache first, short network probes, None with one line when offline."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from ptcourse import hub


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    hub._probe_cache.clear()
    monkeypatch.setenv("PTCOURSE_DATA", str(tmp_path / "data"))
    yield
    hub._probe_cache.clear()


@pytest.fixture
def online(monkeypatch):
    """Allow probes (the suite runs with the network switched off on purpose)."""
    monkeypatch.setenv("PTCOURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


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
