"""The reproducibility record of a benchmark run: what produced these numbers, on what."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path


def git_commit(path: Path | None = None) -> dict:
    """``{"commit": sha, "dirty": bool}`` of the checkout mattezoo runs from, or ``{}`` outside git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return {}
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10)
        return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_record(config, started_at: str, wall_s: float, timings: dict) -> dict:
    import numpy
    import torch

    from .. import __version__
    from ..extension import status as extension_status

    device = {"requested": config.device, "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        device["cuda"] = torch.version.cuda
        device["gpu"] = torch.cuda.get_device_name(0)
    return {
        "started_at": started_at,
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": wall_s,
        "timings": dict(timings),
        "seed": config.preset.seed,
        "preset": config.preset.to_dict(),
        "argv": list(config.argv),
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "mattezoo": __version__,
            "extension": extension_status(),
        },
        "git": git_commit(),
        "platform": platform.platform(),
        "device": device,
    }
