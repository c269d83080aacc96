"""P3M-Net inference, mattezoo's against the official implementation's way, in one process.

    python benchmarks/speed_p3m.py [--size 512] [--batch 1] [--reps 5] [--device cpu|cuda]

The same random weights run as:

* ``official``: torch's ``F.max_pool2d(return_indices=True)`` / ``F.max_unpool2d``
  (``pooling="torch"``), fp32, contiguous tensors, ``torch.no_grad`` — how the
  official code runs the model;
* ``ours fp32``: the compiled pool/unpool ops, ``torch.inference_mode``;
* ``ours fp32 channels_last``: the same with channels_last weights and input;
* ``ours bf16 channels_last``: plus bf16 autocast.

Each variant is checked against ``official`` first (fp32 variants: local matte
and logits to 1e-4; bf16: the local matte's largest difference is printed, the
fused matte is not compared: bf16 flips argmax ties of random weights), then
all are warmed up and timed round-robin, back to back, and the medians and the
ratios official / variant (> 1: faster than official) are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from mattezoo.extension import status
from mattezoo_methods.p3m.model import build_p3m_net


def build_variants(device: torch.device):
    torch.manual_seed(0)
    official = build_p3m_net(pooling="torch").eval().to(device)
    ours = build_p3m_net().eval().to(device)
    ours.load_state_dict(official.state_dict())
    ours_cl = build_p3m_net().eval().to(device)
    ours_cl.load_state_dict(official.state_dict())
    ours_cl.to(memory_format=torch.channels_last)
    return official, ours, ours_cl


def make_runs(official, ours, ours_cl, image: torch.Tensor):
    image_cl = image.contiguous(memory_format=torch.channels_last)
    device = image.device.type

    def run(model, x, amp: bool = False, mode=torch.inference_mode):
        def call():
            autocast = torch.autocast(device, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
            with mode(), autocast:
                return model.forward_intermediates(x)
        return call

    return {
        "official": run(official, image, mode=torch.no_grad),
        "ours fp32": run(ours, image),
        "ours fp32 channels_last": run(ours_cl, image_cl),
        "ours bf16 channels_last": run(ours_cl, image_cl, amp=True),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def check(runs: dict) -> dict[str, float]:
    """Largest |local matte| difference of each variant from the official run (asserted for fp32)."""
    ref = runs["official"]()
    diffs = {}
    for name, call in runs.items():
        out = call()
        diffs[name] = float((out.local.float() - ref.local).abs().max())
        if "fp32" in name:
            torch.testing.assert_close(out.local.float(), ref.local, rtol=0, atol=1e-4)
            torch.testing.assert_close(out.global_logits.float(), ref.global_logits, rtol=1e-4, atol=1e-4)
    return diffs


def time_round_robin(runs: dict, reps: int, device: torch.device) -> dict[str, float]:
    for call in runs.values():  # warm-up: allocator, oneDNN primitives, CUDA kernels
        call()
    times = {name: [] for name in runs}
    for _ in range(reps):
        for name, call in runs.items():
            sync(device)
            start = time.perf_counter()
            call()
            sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="square input side, a multiple of 32 (default 512)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5, help="timed runs per variant (median reported)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}; {status()}")
    print(f"P3M-Net forward, batch {args.batch}, {args.size}², random weights (seed 0)")
    image = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)).to(device)
    runs = make_runs(*build_variants(device), image)
    diffs = check(runs)
    medians = time_round_robin(runs, args.reps, device)
    base = medians["official"]
    print(f"  {'variant':<26}{'ms':>10}{'official/this':>15}{'max |Δlocal|':>14}")
    for name, ms in medians.items():
        print(f"  {name:<26}{ms:>10.1f}{base / ms:>14.2f}x{diffs[name]:>14.2g}")
    best = min((n for n in medians if n != "official"), key=medians.get)
    print(f"fastest: {best}, {base / medians[best]:.2f}x the official way")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
