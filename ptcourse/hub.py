"""Pretrained weights and hub datasets, online when possible, never stuck offline.

Every loader here first looks in the local cache, then asks the network with a short
timeout, and otherwise returns ``None`` after one line saying why, so the chapter can
fall back to the course's own data or models. Nothing hangs when the Wi-Fi is down,
the hub is unreachable or a proxy is dead.

Usage::

    from ptcourse.hub import load_hf_dataset, hf_pretrained, torchvision_weights
    sst2 = load_hf_dataset("nyu-mll/glue", "sst2")            # DatasetDict or None
    model = hf_pretrained(BertForSequenceClassification, "prajjwal1/bert-tiny", num_labels=2)
    state = torchvision_weights(ResNet18_Weights.IMAGENET1K_V1)  # state_dict or None

``PTCOURSE_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) skips the network on purpose; the
caches are still used. A download with torchvision that receives nothing for
``NETWORK_TIMEOUT_S`` seconds fails; the Hugging Face libraries keep their own timeouts
(some of their requests have none, so a server that answers the probe and then stalls
can hold them). Introduced in chapter 06; used by chapters 07 and 08.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ptcourse.paths import data_dir

__all__ = ["reachable", "hub_reachable", "load_hf_dataset", "hf_pretrained", "torchvision_weights", "notice"]

HF_URL = "https://huggingface.co"  # or the mirror in $HF_ENDPOINT: see hf_endpoint()
TORCH_URL = "https://download.pytorch.org"
PROBE_TIMEOUT_S = 3.0
NETWORK_TIMEOUT_S = 5.0  # a download that receives nothing for this long fails
_probe_cache: dict[str, tuple[float, bool]] = {}


def notice(message: str) -> None:
    """Print one ``[ptcourse]`` line, the course's way of saying it fell back (chapter 06).

    Line breaks in ``message`` become spaces.

    Usage: ``notice("sst2 is not cached: using the bundled sentences")``
    """
    if not isinstance(message, str) or not message.strip():
        raise ValueError(f"message must be a non-empty string, got {message!r}")
    print("[ptcourse] " + " ".join(message.split()))


def offline_requested() -> bool:
    """True when ``PTCOURSE_OFFLINE`` or ``HF_HUB_OFFLINE`` asks not to use the network (chapter 06).

    Usage: ``if not offline_requested(): ...``
    """
    return any(os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no")
               for v in ("PTCOURSE_OFFLINE", "HF_HUB_OFFLINE"))


def why_offline(url: str) -> str:
    """Why ``url`` is not used: offline mode is on, or it does not answer (chapter 06).

    Usage: ``notice(f"sst2 is not cached and {why_offline(hf_endpoint())}")``
    """
    if offline_requested():
        return "offline mode is on (PTCOURSE_OFFLINE or HF_HUB_OFFLINE)"
    return f"{url} does not answer"


def hf_endpoint() -> str:
    """The Hugging Face hub's address: ``$HF_ENDPOINT`` (a mirror) if set, else ``HF_URL`` (chapter 06).

    Usage: ``reachable(hf_endpoint())``
    """
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or HF_URL


@contextmanager
def socket_timeout(seconds: float = NETWORK_TIMEOUT_S) -> Iterator[None]:
    """urllib downloads (torchvision's) fail after ``seconds`` without data, not hang (chapter 06).

    Usage: ``with socket_timeout(): weights.get_state_dict()``
    """
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _head(url: str, timeout: float) -> bool:
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "ptcourse"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:  # the server answered (e.g. 404): it is reachable
        return True
    except Exception:  # noqa: BLE001 - DNS failure, refused, dead proxy, TLS error, ...
        return False


def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if ``url`` answers an HTTP HEAD within ``timeout`` seconds (proxies honoured) (chapter 00).

    The probe runs in a thread, so even a DNS lookup that hangs cannot block longer than
    ``timeout``. Answers are remembered for a minute. Always False when offline is requested.

    Usage: ``reachable("https://huggingface.co")``
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"url must be an http(s) URL, got {url!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not 0 < timeout <= 600:
        raise ValueError(f"timeout must be a positive number of seconds, at most 600 (a probe), got {timeout!r}")
    timeout = float(timeout)
    if offline_requested():
        return False
    cached = _probe_cache.get(url)
    if cached is not None and time.monotonic() - cached[0] < 60:
        return cached[1]
    answer: list[bool] = []
    probe = threading.Thread(target=lambda: answer.append(_head(url, timeout)), daemon=True)
    probe.start()
    probe.join(timeout + 0.5)
    ok = bool(answer and answer[0])
    _probe_cache[url] = (time.monotonic(), ok)
    return ok


def hub_reachable() -> bool:
    """True if the Hugging Face hub (or ``$HF_ENDPOINT``) answers quickly (chapter 06).

    Usage: ``if hub_reachable(): ...``
    """
    return reachable(hf_endpoint())


def _slug(*parts: str | None) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", p) for p in parts if p)


def load_hf_dataset(path: str, name: str | None = None) -> Any:
    """A Hugging Face ``DatasetDict`` from the course's cache or the hub, else ``None`` (chapter 06).

    The first successful download is saved with ``save_to_disk`` under
    ``data_dir()/hf/``; later calls load it from there without any network.

    Usage: ``wiki = load_hf_dataset("Salesforce/wikitext", "wikitext-103-raw-v1")``
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"path must be a dataset name on the hub such as 'nyu-mll/glue', got {path!r}")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"name must be None or a configuration name such as 'sst2', got {name!r}")
    local = data_dir() / "hf" / _slug(path, name)
    what = path + (f" ({name})" if name else "")
    import datasets

    if (local / "dataset_dict.json").exists():
        try:
            return datasets.load_from_disk(str(local))
        except Exception as err:  # noqa: BLE001 - a file missing, truncated or overwritten
            notice(f"the cached {what} in {local} is damaged ({type(err).__name__}: {str(err)[:100]}): delete "
                   "that folder and run `python -m ptcourse prefetch` while online.")
            return None
    if not hub_reachable():
        notice(f"{what} is not cached in {local} and {why_offline(hf_endpoint())}.")
        return None
    try:
        loaded = datasets.load_dataset(path, name)
    except Exception as err:  # noqa: BLE001 - any hub failure falls back, never crashes
        notice(f"downloading {what} failed ({type(err).__name__}: {str(err)[:120]}).")
        return None
    _save_dataset(loaded, local, what)
    return loaded


def _save_dataset(loaded: Any, local: Path, what: str) -> None:
    """``save_to_disk`` into a temporary folder renamed at the end: an interruption never leaves half a cache."""
    partial = local.with_name(local.name + ".partial")
    try:
        shutil.rmtree(partial, ignore_errors=True)
        loaded.save_to_disk(str(partial))
        partial.rename(local)
    except OSError as err:
        notice(f"{what} was downloaded but could not be cached in {local} ({err.strerror or err}); it will be "
               "downloaded again next time.")


def hf_pretrained(loader: Callable[..., Any] | type, repo_id: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained(repo_id, **kwargs)`` from the cache or the hub, else ``None`` (chapter 07).

    ``loader`` is a class with ``from_pretrained`` (``AutoTokenizer``,
    ``BertForSequenceClassification``, ...) or the function itself.

    Usage: ``tok = hf_pretrained(AutoTokenizer, "prajjwal1/bert-tiny")``
    """
    load = getattr(loader, "from_pretrained", loader)
    if not callable(load):
        raise TypeError(f"loader must have from_pretrained or be callable, got {type(loader).__name__}")
    if not isinstance(repo_id, str) or not repo_id.strip():
        raise ValueError(f"repo_id must be a model name on the hub such as 'bert-base-uncased', got {repo_id!r}")
    if "local_files_only" in kwargs:
        raise TypeError("hf_pretrained decides local_files_only itself (cache first, then the hub): "
                        "do not pass it; set PTCOURSE_OFFLINE=1 to stay offline")
    try:
        return load(repo_id, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass  # not cached
    except Exception as err:  # noqa: BLE001 - e.g. a truncated weights file: the hub would not replace it
        notice(f"the cached {repo_id} is damaged ({type(err).__name__}: {str(err)[:100]}): remove it with "
               f"`hf cache rm model/{repo_id}` and load it again while online.")
        return None
    if not hub_reachable():
        notice(f"{repo_id} is not cached and {why_offline(hf_endpoint())}.")
        return None
    try:
        return load(repo_id, **kwargs)
    except Exception as err:  # noqa: BLE001
        notice(f"loading {repo_id} from the hub failed ({type(err).__name__}: {str(err)[:120]}).")
        return None


def torchvision_weights(weights: Any, progress: bool = True) -> dict[str, Any] | None:
    """The state_dict of torchvision ``weights`` from the cache or online, else ``None`` (chapter 08).

    The file's SHA-256 is checked against the prefix in its name, for a cached file too
    (torch itself checks only while downloading).

    Usage: ``state = torchvision_weights(ResNet18_Weights.IMAGENET1K_V1)``
    """
    url = getattr(weights, "url", None)
    if not isinstance(url, str):
        raise TypeError(f"weights must be a torchvision weights enum such as ResNet18_Weights.DEFAULT, got {weights!r}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    import torch

    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    if not cached.exists() and not reachable(TORCH_URL):
        notice(f"{weights} is not cached in {cached.parent} and {why_offline(TORCH_URL)}.")
        return None
    try:
        if cached.exists():
            check_torch_hash(cached)
        with socket_timeout():
            return weights.get_state_dict(progress=progress, check_hash=True)
    except Exception as err:  # noqa: BLE001
        fix = f" Delete {cached} and run again while online." if cached.exists() else ""
        notice(f"loading {weights} failed ({type(err).__name__}: {str(err)[:120]}).{fix}")
        return None


def check_torch_hash(path: Path) -> str:
    """Check that ``path``'s SHA-256 starts with the hex digits in its name (torch.hub's convention,
    ``resnet18-f37072fd.pth``); return them, or raise ``ValueError`` (chapter 08).

    Usage: ``check_torch_hash(Path(torch.hub.get_dir()) / "checkpoints" / "resnet18-f37072fd.pth")``
    """
    import torch

    match = torch.hub.HASH_REGEX.search(path.name)
    if match is None:
        raise ValueError(f"{path.name} carries no hash prefix in its name")
    if not sha256_of(path).startswith(match.group(1)):
        raise ValueError(f"{path.name} does not match the SHA-256 prefix {match.group(1)} in its name")
    return match.group(1)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read 1 MB at a time (chapter 08).

    Usage: ``sha256_of(Path("model.safetensors"))``
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
