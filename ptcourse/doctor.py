"""The environment doctor: is this machine ready for the course, and if not, what to do.

Checks Python, PyTorch and the device (CUDA / MPS, bf16, TF32), every course dependency
against its lower bound, the caches (writable? what do they hold?), the online sources,
the profile in force, and estimates each chapter's run time here. Each problem comes
with a one-line fix; the exit status is 1 when there is any.

Usage::

    python -m ptcourse doctor          # in a terminal (make doctor)
    from ptcourse.doctor import run    # in a notebook (chapter 00)
    checks = run()
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import platform
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

OK, WARN, PROBLEM = "ok", "warning", "problem"
_MARK = {OK: "✔", WARN: "!", PROBLEM: "✘"}
TIMES_FILE = Path(__file__).with_name("notebook_times.json")  # written by scripts/measure_notebooks.py


@dataclass
class Check:
    """One line of the report: what was checked, what was found, and the fix when it is not ok (chapter 00).

    Usage: ``Check("caches", "datasets", "/data is not writable", PROBLEM, "export PTCOURSE_DATA=...")``
    """

    section: str
    name: str
    found: str
    level: str = OK
    fix: str = ""

    def line(self) -> str:
        text = f" {_MARK[self.level]} {self.name:<24} {self.found}"
        label = "fix" if self.level == PROBLEM else "hint"
        return text + (f"\n   {'':<24} {label}: {self.fix}" if self.fix else "")


# ---------------------------------------------------------------- Python, torch, device
def check_platform() -> list[Check]:
    """Python against the package's Requires-Python, then torch and the device (chapter 00).

    Usage: ``for check in check_platform(): print(check.line())``
    """
    from packaging.specifiers import SpecifierSet

    checks = []
    wanted = _package_metadata().get("Requires-Python") or ">=3.10"
    here = platform.python_version()
    if SpecifierSet(wanted).contains(here):
        checks.append(Check("platform", "python", f"{here} ({sys.executable})"))
    else:
        checks.append(Check("platform", "python", f"{here}, the course needs {wanted}", PROBLEM,
                            "install Python 3.11 (or newer) and run `make setup` with it: make PYTHON=python3.11 setup"))
    try:
        import torch
    except ImportError:
        return checks + [Check("platform", "torch", "not installed", PROBLEM, 'pip install "torch>=2.4"')]
    checks.append(Check("platform", "torch", f"{torch.__version__} (CUDA build {torch.version.cuda or 'none'})"))
    return checks + check_device(torch)


def check_device(torch) -> list[Check]:
    """The device get_device() picks, and what its number formats can do (chapter 00).

    Usage: ``check_device(torch)``
    """
    from ptcourse.device import get_device

    try:
        device = get_device()
    except (ValueError, RuntimeError) as err:
        return [Check("device", "device", str(err), PROBLEM, "unset PTCOURSE_DEVICE, or set it to cpu")]
    checks = [Check("device", "device", f"{device} ({torch.get_num_threads()} CPU threads)")]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        ampere = props.major >= 8
        checks += [
            Check("device", "GPU", f"{props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability "
                                   f"{props.major}.{props.minor}"),
            Check("device", "bf16", "native" if ampere else "emulated only: fit uses fp16 with a gradient scaler"),
            Check("device", "TF32", "yes: fit enables it for its matrix products" if ampere else "no (pre-Ampere GPU)"),
        ]
    elif device.type == "mps":
        checks.append(Check("device", "bf16 / fp16", "MPS: fp16 autocast from torch 2.5, bf16 from 2.6 on macOS 14"))
    else:
        gpu_hint = "" if torch.cuda.is_available() else " (no CUDA GPU or MPS found)"
        checks += [Check("device", "bf16", f"CPU autocast supports bf16; fit leaves it off on the CPU{gpu_hint}"),
                   Check("device", "TF32", "not applicable on the CPU")]
    return checks


# ---------------------------------------------------------------- dependencies
def _package_metadata() -> dict:
    try:
        return dict(metadata.metadata("ptcourse").items())
    except metadata.PackageNotFoundError:
        return {}


def requirements() -> list[str]:
    """The installed ptcourse's requirements, e.g. ``["torch>=2.4", ...]`` (chapter 00).

    Usage: ``requirements()``
    """
    return metadata.requires("ptcourse") or []


def check_dependencies() -> list[Check]:
    """Each dependency's installed version against its lower bound; extras only when installed (chapter 00).

    Usage: ``[c for c in check_dependencies() if c.level == PROBLEM]``
    """
    from packaging.requirements import Requirement

    try:
        reqs = [Requirement(r) for r in requirements()]
    except metadata.PackageNotFoundError:
        return [Check("dependencies", "ptcourse", "imported but not installed as a package", PROBLEM,
                      'pip install -e . in the course folder (or run make setup)')]
    extras = metadata.metadata("ptcourse").get_all("Provides-Extra") or []
    checks = []
    for req in reqs:
        extra = _extra_of(req, extras)
        if extra == "":
            continue  # a marker that does not apply here (e.g. another Python version)
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            level, fix = (WARN, f"pip install -e '.[{extra}]' if you need it") if extra else \
                         (PROBLEM, f'pip install "{req.name}{req.specifier}"')
            checks.append(Check("dependencies", req.name, f"not installed (needs {req.specifier})"
                                + (f", only for the '{extra}' extra" if extra else ""), level, fix))
            continue
        if req.specifier.contains(version, prereleases=True):
            checks.append(Check("dependencies", req.name, f"{version} ({req.specifier})"))
        else:
            checks.append(Check("dependencies", req.name, f"{version} is below the course's bound {req.specifier}",
                                PROBLEM, f'pip install -U "{req.name}{req.specifier}"'))
    return checks


def _extra_of(req, extras: list[str]) -> str | None:
    """None for a dependency of the package itself, the extra's name for an optional one,
    "" for one whose marker does not apply to this machine."""
    if req.marker is None or req.marker.evaluate({"extra": ""}):
        return None
    return next((e for e in extras if req.marker.evaluate({"extra": e})), "")


# ---------------------------------------------------------------- caches
def _writable(folder: Path) -> str | None:
    """None if a file can be written in ``folder`` (created if needed), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ptcourse-doctor-"):
            pass
        return None
    except OSError as err:
        return err.strerror or type(err).__name__


def cache_folders() -> dict[str, tuple[Path | OSError, str]]:
    """{what: (folder, or the error naming it raised; the environment variable that moves it)} (chapter 00).

    Usage: ``cache_folders()["datasets"]``
    """
    from ptcourse.paths import checkpoint_dir, data_dir, results_dir

    folders: dict[str, tuple[Path | OSError, str]] = {}
    for what, folder, variable in (("datasets", data_dir, "PTCOURSE_DATA"),
                                   ("checkpoints", checkpoint_dir, "PTCOURSE_CHECKPOINTS"),
                                   ("results", results_dir, "PTCOURSE_RESULTS")):
        try:
            folders[what] = (folder(), variable)
        except OSError as err:  # e.g. the variable names a file
            folders[what] = (err, variable)
    try:
        import torch

        folders["torch hub weights"] = (Path(torch.hub.get_dir()), "TORCH_HOME")
    except ImportError:
        pass
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        folders["Hugging Face hub"] = (Path(HF_HUB_CACHE), "HF_HOME")
    except ImportError:
        pass
    return folders


def check_caches() -> list[Check]:
    """Each cache folder: writable, and how much it holds; then which course assets are cached (chapter 00).

    Usage: ``check_caches()``
    """
    from ptcourse.prefetch import assets, human, size_of

    checks = []
    folders = cache_folders()
    for what, (folder, variable) in folders.items():
        if isinstance(folder, OSError):
            checks.append(Check("caches", what, str(folder).split(":")[0], PROBLEM,
                                f"export {variable}=/a/writable/folder (or unset it) before starting Jupyter"))
            continue
        why = _writable(folder)
        if why:
            checks.append(Check("caches", what, f"{folder} is not writable ({why})", PROBLEM,
                                f"export {variable}=/a/writable/folder before starting Jupyter"))
        else:
            checks.append(Check("caches", what, f"{folder} ({human(size_of(folder))})"))
    if any(isinstance(folder, OSError) for folder, _ in folders.values()):
        return checks  # the assets live in those folders
    try:
        cached = [a.id for a in assets() if a.is_cached()]
        missing = [a.id for a in assets() if a.id not in cached]
    except Exception as err:  # noqa: BLE001 - an unreadable cache must not stop the doctor
        return checks + [Check("caches", "course assets", f"could not be listed ({type(err).__name__}: {err})", WARN)]
    found = f"{len(cached)} of {len(cached) + len(missing)} cached" + (f": {', '.join(cached)}" if cached else "")
    fix = "make prefetch (while online) to fetch " + ", ".join(missing) if missing else ""
    return checks + [Check("caches", "course assets", found, WARN if missing else OK, fix)]


# ---------------------------------------------------------------- network
def check_network(timeout: float = 2.0) -> list[Check]:
    """Whether each online source answers within ``timeout`` seconds (probed in parallel) (chapter 00).

    Usage: ``check_network(timeout=2.0)``
    """
    from ptcourse import hub
    from ptcourse.data import MNIST_URL

    if hub.offline_requested():
        return [Check("network", "online sources", "not tried: PTCOURSE_OFFLINE or HF_HUB_OFFLINE is set", WARN,
                      "unset PTCOURSE_OFFLINE and HF_HUB_OFFLINE to use the network")]
    sources = {"Hugging Face hub": hub.hf_endpoint(), "PyTorch downloads": hub.TORCH_URL, "MNIST mirror": MNIST_URL}
    with ThreadPoolExecutor(len(sources)) as pool:
        answers = dict(zip(sources, pool.map(lambda url: hub.reachable(url, timeout), sources.values())))
    proxy = urllib.request.getproxies().get("https")
    hint = "the chapters fall back to bundled data; make prefetch while online"
    if proxy:
        hint = f"is the proxy {proxy} (HTTPS_PROXY) up? Otherwise " + hint
    return [Check("network", name, f"{sources[name]} answers" if up else f"{sources[name]} does not answer", OK if up
                  else WARN, "" if up else hint) for name, up in answers.items()]


# ---------------------------------------------------------------- profile and run times
def check_profile() -> list[Check]:
    """The profile in force, and the thread setting the run-time estimates assume (chapter 00).

    Usage: ``check_profile()``
    """
    from ptcourse.profiles import profile

    try:
        name = profile()
    except ValueError as err:
        return [Check("profile", "profile", str(err).split(". Fix")[0], PROBLEM,
                      "export PTCOURSE_PROFILE=standard (or fast, full, auto), or unset it")]
    threads = os.environ.get("OMP_NUM_THREADS", "not set")
    return [Check("profile", "profile", f"{name} (PTCOURSE_PROFILE={os.environ.get('PTCOURSE_PROFILE', 'auto')}, "
                                        f"OMP_NUM_THREADS={threads})")]


def speed_probe(repeats: int = 7) -> float:
    """CPU seconds of a fixed small training step on one thread (the fastest of ``repeats``) (chapter 00).

    CPU time rather than wall time, so that a machine busy with other programs still
    measures the speed of its cores (as the measured notebook times do).

    Usage: ``speed_probe()  # a few hundredths of a second on a recent laptop core``
    """
    import torch
    from torch import nn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        x, y = torch.rand(128, 1, 28, 28, generator=gen), torch.randint(0, 10, (128,), generator=gen)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
        best = float("inf")
        for _ in range(repeats + 1):  # the first run warms up
            start = time.thread_time()
            nn.functional.cross_entropy(model(x), y).backward()
            best = min(best, time.thread_time() - start)
        return best
    finally:
        torch.set_num_threads(threads)


def reference_times() -> dict:
    """The measured table shipped with the package ({} if there is none) (chapter 00).

    Usage: ``reference_times()["fast"]``
    """
    return json.loads(TIMES_FILE.read_text()) if TIMES_FILE.exists() else {}


def estimate_minutes(key: str, probe_s: float, table: dict | None = None) -> dict[str, tuple[float, bool]]:
    """{notebook: (estimated minutes on one thread here, whether that is only a lower bound)}.

    The measured CPU time of each chapter, scaled by how much slower (or faster) this
    machine's speed probe is than the reference's; a measurement that was stopped early
    gives a lower bound. ``key`` is a profile, or ``"<profile>-offline"`` for the bundled data.

    Usage: ``estimate_minutes("standard", speed_probe())``
    """
    rows = (reference_times() if table is None else table).get(key, {}).get("notebooks", {})
    return {name: (row["cpu_s"] * probe_s / row["probe_s"] / 60, str(row.get("error")).startswith("stopped"))
            for name, row in rows.items() if name.startswith("notebooks/") and row.get("cpu_s") and row.get("probe_s")}


def check_run_times() -> list[Check]:
    """Each chapter's estimated run time here, from the measured table and the speed probe (chapter 00).

    Usage: ``check_run_times()``
    """
    from ptcourse.hub import offline_requested
    from ptcourse.profiles import profile

    try:
        name = profile()
        probe = speed_probe()
    except (ValueError, ImportError):
        return []  # reported by check_profile / check_platform
    key = f"{name}-offline" if offline_requested() and f"{name}-offline" in reference_times() else name
    estimates = estimate_minutes(key, probe)
    if not estimates:
        return [Check("run times", "estimates", f"no reference times for the {name} profile "
                                                 "(scripts/measure_notebooks.py measures them)", WARN)]
    data = "the bundled data (offline)" if key.endswith("-offline") else "the downloaded datasets"
    checks = [Check("run times", "speed probe", f"{probe * 1e3:.0f} ms of CPU; the estimates are for one CPU "
                                                f"thread with {data} (a GPU is faster)")]
    for nb, (minutes, lower_bound) in sorted(estimates.items()):
        about = "more than" if lower_bound else "about"
        checks.append(Check("run times", Path(nb).stem, f"{about} {max(minutes, 0.1):.1f} min in the {name} profile"))
    return checks


# ---------------------------------------------------------------- the report
SECTIONS = (check_platform, check_dependencies, check_caches, check_network, check_profile, check_run_times)


def run(verbose: bool = True) -> list[Check]:
    """Run every check, print the report (if ``verbose``) and return the checks (chapter 00).

    Usage: ``problems = [c for c in run() if c.level == "problem"]``
    """
    checks: list[Check] = []
    for section in SECTIONS:
        try:
            found = section()
        except Exception as err:  # noqa: BLE001 - the doctor reports, it never crashes
            found = [Check(section.__name__, section.__name__, f"crashed: {type(err).__name__}: {err}", PROBLEM,
                           "please report this at the course's issue tracker")]
        checks += found
        if verbose and found:
            print(f"{found[0].section}:", *[c.line() for c in found], sep="\n", flush=True)
    problems = [c for c in checks if c.level == PROBLEM]
    if verbose:
        print(f"\n{len(problems)} problem(s)" + (":" if problems else ": ready for the course."))
        for c in problems:
            print(f" ✘ {c.name}: {c.fix}")
    return checks


def main(argv: list[str] | None = None) -> int:
    """``python -m ptcourse doctor``: exit status 1 if any problem was found (chapter 00).

    Usage: ``sys.exit(main([]))``
    """
    if argv:
        print("usage: python -m ptcourse doctor  (no options)", file=sys.stderr)
        return 2
    return 1 if any(c.level == PROBLEM for c in run()) else 0
