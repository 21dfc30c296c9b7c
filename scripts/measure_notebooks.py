#!/usr/bin/env python3
"""Measure each notebook's run time and peak memory in one profile, one notebook per fresh process.

Every notebook runs in its own kernel, started by a fresh Python process, with one CPU
thread (``OMP_NUM_THREADS=1``, as on Binder's single CPU). For each one we record:

- ``wall_s``: the wall-clock time of the whole run, kernel start included;
- ``cpu_s``: the CPU time the kernel used (user + system): on a machine shared with other
  programs this is close to what the run takes on an idle core, while ``wall_s`` grows
  with the load;
- ``peak_mib``: the kernel's peak resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``);
- ``probe_s``: the speed probe of ``ptcourse.doctor`` on this machine, so that
  ``python -m ptcourse doctor`` can scale the times to another machine.

Results go to ``ptcourse/notebook_times.json`` (shipped with the package, read by the
doctor) and a table in ``binder/notebook_times.md``. Measuring some notebooks again
replaces only their rows.

Without a network, chapters 01-03 would fall back to the 8x8 digits, far smaller than
the MNIST that Binder downloads. ``--mnist-stand-in`` (the default) therefore writes
MNIST-sized files (60,000 + 10,000 images of 28x28, made from the digits scaled up and
shifted) into the measurement's data cache, so the timings are those of MNIST-sized data.
Use ``--no-mnist-stand-in`` on a machine that has the real MNIST cached: the notebooks then
read the machine's own data cache (:func:`ptcourse.paths.data_dir`).

Usage::

    python scripts/measure_notebooks.py --profile standard                      # every notebook
    python scripts/measure_notebooks.py --profile standard notebooks/06_*.ipynb  # some again
    python scripts/measure_notebooks.py --profile standard --cpu-limit 600      # stop at Binder's limit
    python scripts/measure_notebooks.py --profile fast --table                  # only rewrite the table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMES_JSON = ROOT / "ptcourse" / "notebook_times.json"
TIMES_MD = ROOT / "binder" / "notebook_times.md"
BINDER_LIMITS = {"minutes": 10.0, "memory_mib": 1536.0}  # per chapter, on Binder's 1 CPU / 2 GB


def default_notebooks() -> list[Path]:
    return sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(ROOT.glob("solutions/*.ipynb"))


def _stop_after_cpu(client, cpu_limit_s: float, spent: list[float]) -> None:
    """Watchdog: kill the kernel once it has used more than ``cpu_limit_s`` seconds of CPU."""
    import psutil  # installed with ipykernel

    while getattr(client, "km", None) is None or not client.km.has_kernel:
        time.sleep(0.5)
    kernel = psutil.Process(client.km.provisioner.process.pid)
    while kernel.is_running():
        times = kernel.cpu_times()
        spent[:] = [times.user + times.system]
        if spent[0] > cpu_limit_s:
            kernel.kill()
            return
        time.sleep(2)


def run_one(path: Path, timeout_s: float, cpu_limit_s: float | None = None) -> dict:
    """Execute one notebook in a kernel started by this process; report time and memory."""
    import threading

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout_s, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    spent: list[float] = []
    if cpu_limit_s:
        threading.Thread(target=_stop_after_cpu, args=(client, cpu_limit_s, spent), daemon=True).start()
    start, error = time.perf_counter(), None
    try:
        client.execute()  # runs on past a failing cell, so the time is that of the whole notebook
        failed = [f"cell {i}: {out['ename']}: {out['evalue']}" for i, cell in enumerate(nb.cells)
                  for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        error = "; ".join(failed) or None
    except Exception as err:  # noqa: BLE001 - a timeout or a dead kernel is a result too
        error = f"{type(err).__name__}: {err}"
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel, once it has exited
    rss_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    if cpu_limit_s and spent and spent[0] > cpu_limit_s:
        error, cpu = f"stopped after more than {cpu_limit_s:.0f} s of CPU", spent[0]
    return {"ok": error is None, "error": error and error[:300], "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "peak_mib": round(usage.ru_maxrss * rss_unit / 2**20, 1)}


def write_mnist_stand_in(root: Path) -> None:
    """MNIST-sized IDX files (train 60,000, test 10,000; 28x28) made from the bundled digits."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    big = F.interpolate(images, size=(20, 20), mode="bilinear", align_corners=False)
    rng = np.random.default_rng(0)
    for folder in ("MNIST", "FashionMNIST"):
        raw = root / folder / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for prefix, n in (("train", 60_000), ("t10k", 10_000)):
            pick = rng.integers(0, len(big), n)
            canvas = np.zeros((n, 28, 28), dtype=np.float32)
            dy, dx = rng.integers(2, 7, n), rng.integers(2, 7, n)  # centred like MNIST, +-2 pixels
            for i in range(n):
                canvas[i, dy[i]:dy[i] + 20, dx[i]:dx[i] + 20] = big[pick[i], 0].numpy()
            pixels = (np.clip(canvas + rng.normal(0, 0.05, canvas.shape), 0, 1) * 255).astype(np.uint8)
            labels = digits.target[pick].astype(np.uint8)
            (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
                np.array([2051, n, 28, 28], dtype=">u4").tobytes() + pixels.tobytes())
            (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
                np.array([2049, n], dtype=">u4").tobytes() + labels.tobytes())


def measure(paths: list[Path], profile: str, cache: Path, timeout_s: float,
            cpu_limit_s: float | None = None, note: str = "", offline: bool = False,
            data: Path | None = None) -> dict:
    """Run each notebook in a fresh process, saving each row as soon as it is measured.

    Checkpoints and results go to ``cache``; datasets come from ``data`` (default: the
    machine's own data cache, so a real MNIST cached there is what gets measured)."""
    sys.path.insert(0, str(ROOT))
    from ptcourse.doctor import speed_probe
    from ptcourse.paths import data_dir

    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the inline backend, as for a learner
    env.update(PTCOURSE_PROFILE=profile, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PTCOURSE_DATA=str(data or data_dir()), PTCOURSE_CHECKPOINTS=str(cache / "checkpoints"),
               PTCOURSE_RESULTS=str(cache / "results"), PYTHONPATH=str(ROOT))
    if offline:
        env.update(PTCOURSE_OFFLINE="1", HF_HUB_OFFLINE="1")
    key = f"{profile}-offline" if offline else profile
    table: dict = {}
    for path in paths:
        rel = path.resolve().relative_to(ROOT).as_posix()
        probe, load = speed_probe(), os.getloadavg()[0]
        print(f"{rel}: running in profile {profile} (load {load:.1f}, probe {probe * 1e3:.0f} ms) ...", flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(path), "--timeout", str(timeout_s)]
        cmd += ["--cpu-limit", str(cpu_limit_s)] if cpu_limit_s else []
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, _ = child.communicate(timeout=timeout_s + 60)
            row = json.loads(out.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            row = {"ok": False, "error": f"stopped after {timeout_s:.0f} s", "wall_s": timeout_s,
                   "cpu_s": None, "peak_mib": None}
        except (ValueError, IndexError):
            row = {"ok": False, "error": "the measuring process printed no result", "wall_s": None,
                   "cpu_s": None, "peak_mib": None}
        row.update(probe_s=round(probe, 4), load_before=round(load, 2), load_after=round(os.getloadavg()[0], 2),
                   measured=time.strftime("%Y-%m-%d %H:%M"))
        table = save(key, {rel: row}, note)
        print(f"    {'ok' if row['ok'] else 'FAILED: ' + str(row['error'])}; wall {row['wall_s']} s, "
              f"cpu {row['cpu_s']} s, peak {row['peak_mib']} MiB", flush=True)
    return table


def machine() -> dict:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "platform": platform.platform(terse=True), "threads": 1}


def save(profile: str, rows: dict[str, dict], note: str) -> dict:
    """Merge ``rows`` into the JSON file (other notebooks' rows are kept) and return it."""
    table = json.loads(TIMES_JSON.read_text()) if TIMES_JSON.exists() else {}
    entry = table.setdefault(profile, {"notebooks": {}})
    entry["machine"], entry["note"] = machine(), note
    entry["notebooks"].update(rows)
    entry["notebooks"] = dict(sorted(entry["notebooks"].items()))
    TIMES_JSON.write_text(json.dumps(table, indent=1) + "\n")
    return table


def within_binder(row: dict) -> bool:
    """Time and memory within Binder's limits (a failing cell is shown in the result column)."""
    return bool(row["cpu_s"] is not None and row["cpu_s"] < 60 * BINDER_LIMITS["minutes"]
                and row["peak_mib"] is not None and row["peak_mib"] < BINDER_LIMITS["memory_mib"])


def markdown(table: dict) -> str:
    lines = ["# Notebook run times and peak memory, one CPU thread",
             "",
             "Generated by `scripts/measure_notebooks.py` (do not edit by hand). Each notebook ran in a",
             "fresh kernel with `OMP_NUM_THREADS=1`. *CPU* is the kernel's CPU time (close to the time",
             "on an idle core); *wall* also counts waiting for a busy machine (see the load average).",
             f"Binder's limits per chapter: {BINDER_LIMITS['minutes']:.0f} minutes and "
             f"{BINDER_LIMITS['memory_mib'] / 1024:.1f} GiB; *Binder?* judges the CPU time and the peak memory.", ""]
    for profile, entry in sorted(table.items()):
        m = entry["machine"]
        lines += [f"## Profile `{profile}`", "",
                   f"Machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, torch {m['torch']}. "
                   f"{entry.get('note', '')}", "",
                   "| notebook | result | CPU (min) | wall (min) | peak memory (MiB) | load avg | Binder? |",
                   "|---|---|---:|---:|---:|---:|---|"]
        for rel, r in entry["notebooks"].items():
            minutes = lambda s: "—" if s is None else f"{s / 60:.1f}"  # noqa: E731
            result = "ok" if r["ok"] else f"failed: {r['error']}"
            lines.append(f"| {rel} | {result} | {minutes(r['cpu_s'])} | {minutes(r['wall_s'])} | "
                         f"{'—' if r['peak_mib'] is None else round(r['peak_mib'])} | {r['load_before']:.1f} | "
                         f"{'yes' if within_binder(r) else '**no**'} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/ and solutions/")
    parser.add_argument("--profile", default="standard", choices=["fast", "standard", "full"])
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per notebook (default 1800)")
    parser.add_argument("--cpu-limit", type=float, default=None,
                        help="stop a notebook after this many seconds of kernel CPU time (e.g. 600: "
                             "past Binder's limit, the rest need not be measured)")
    parser.add_argument("--mnist-stand-in", action=argparse.BooleanOptionalAction, default=True,
                        help="MNIST-sized stand-in data when MNIST is not cached (default: on)")
    parser.add_argument("--offline", action="store_true",
                        help="run with PTCOURSE_OFFLINE=1 (the bundled data, as in the tests); stored as PROFILE-offline")
    parser.add_argument("--table", action="store_true", help="only rewrite the markdown table from the JSON")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.timeout, args.cpu_limit)))
        return 0
    if not args.table:
        paths = args.notebooks or default_notebooks()
        with tempfile.TemporaryDirectory(prefix="ptcourse-measure-") as tmp:
            note, data = "Data: this machine's data cache (the real MNIST / Fashion-MNIST).", None
            if args.offline:
                note = "Offline (PTCOURSE_OFFLINE=1): the bundled data and the course's own models, as in the tests."
                data = Path(tmp) / "data"
            elif args.mnist_stand_in:
                data = Path(tmp) / "data"
                write_mnist_stand_in(data)
                note = ("Data: MNIST-sized stand-ins (60,000 + 10,000 images, 28x28) made from the bundled "
                        "digits, because this machine has no network; the hub datasets fall back offline.")
            table = measure(paths, args.profile, Path(tmp), args.timeout, args.cpu_limit, note, args.offline, data)
    else:
        table = json.loads(TIMES_JSON.read_text())
    TIMES_MD.parent.mkdir(exist_ok=True)
    TIMES_MD.write_text(markdown(table))
    print(f"wrote {TIMES_JSON.relative_to(ROOT)} and {TIMES_MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
