"""P3M-Net inference, mattezoo's against the official implementation's way, in one process.

    python benchmarks/speed_p3m.py [--size 512] [--batch 1] [--reps 5] [--device cpu|cuda]

The same random weights (BatchNorm statistics randomised too, so that folding
them is not a no-op) run two jobs:

* **pass**: one network pass over a ``size²`` input, giving the segmentation
  logits and the local matte;
* **hybrid**: ``infer_details`` on a ``size²`` image with the official HYBRID
  strategy (a ½-scale and a full-scale pass, skimage-style resizing, fusion).

and each job in these variants:

* ``official``: torch's ``F.max_pool2d(return_indices=True)`` / ``F.max_unpool2d``
  (``pooling="torch"``), fp32, contiguous, ``torch.no_grad``, every pass the
  whole network (the dBFI side outputs included), as the official code runs it;
* ``ours plain``: the compiled pool/unpool ops, channels_last, ``torch.inference_mode``,
  the unfused module graph (``fused_inference = False``);
* ``ours``: what a user gets: the fused inference pass (``mattezoo.fusion``: BatchNorm
  folded, ReLU and residual adds inside the conv, weights pre-reordered, int32
  pooling indices, and only what the requested outputs need);
* on CUDA also ``ours bf16``: ``ours`` under bf16 autocast, and for the pass
  ``ours bf16 graph``: that, captured once in a CUDA graph and replayed (issue #8's
  H200 targets: 1024² in ≤ 3 ms, 2048² in ≤ 8 ms; the official way measured 12.1 ms
  and 42.7 ms there).

Each variant is first checked (see :func:`check`; the largest difference of
the local matte from ``official`` is printed), then all are warmed up and timed round-robin, back to back, and the
medians and the ratios official / variant (> 1: faster) are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from mattezoo.extension import status
from mattezoo_methods.p3m.model import build_p3m_net


def build_models(device: torch.device):
    torch.manual_seed(0)
    official = build_p3m_net(pooling="torch").eval()
    for module in official.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    official.fused_inference = False
    plain = build_p3m_net().eval()
    plain.load_state_dict(official.state_dict())
    plain.fused_inference = False
    plain.to(memory_format=torch.channels_last)
    ours = build_p3m_net().eval()
    ours.load_state_dict(official.state_dict())
    return official.to(device), plain.to(device), ours.to(device)


def make_jobs(official, plain, ours, size: int, batch: int, device: torch.device) -> dict:
    image = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    image_cl = image.contiguous(memory_format=torch.channels_last)

    def run(fn, mode=torch.inference_mode, amp=False):
        def call():
            autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
            with mode(), autocast:
                return fn()
        return call

    def pass_of(model, x):
        return lambda: model.inference_maps(x)

    def hybrid_of(model, x):
        return lambda: model.infer_details(x, strategy="hybrid")

    jobs = {}
    for job, of in (("pass", pass_of), ("hybrid", hybrid_of)):
        variants = {
            "official": run(of(official, image), mode=torch.no_grad),
            "ours plain": run(of(plain, image_cl)),
            "ours": run(of(ours, image)),
        }
        if device.type == "cuda":
            variants["ours bf16"] = run(of(ours, image), amp=True)
            if job == "pass":
                variants["ours bf16 graph"] = cuda_graph(run(of(ours, image), amp=True))
        jobs[job] = variants
    return jobs


def cuda_graph(call):
    """``call`` captured once in a CUDA graph (after warm-up on a side stream); replays return its outputs.

    The input stays the captured tensor: a pass at one fixed size is what the
    graph is for. Should the capture fail (an op that syncs with the host, say),
    the variant reports the error instead of a time.
    """
    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                call()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = call()
    except Exception as exc:  # noqa: BLE001 - reported, the other variants still run
        message = f"CUDA graph capture failed: {type(exc).__name__}: {exc}"

        def failed():
            raise RuntimeError(message)
        return failed

    def replay():
        graph.replay()
        return out
    return replay


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def mostly_close(got: torch.Tensor, expected: torch.Tensor, what: str, tol: float = 1e-4) -> None:
    """All but 0.01 % of the elements within ``tol`` (relative to the largest magnitude, at least 1).

    Not all of them: where two inputs of a max-pool window (or two logits) are
    equal to float rounding, another summation order may pick the other one,
    and that pixel's path through the unpools changes. Random weights make
    such near-ties common enough to show up in a 512² run.
    """
    scale = max(1.0, float(expected.abs().max()))
    off = float(((got.float() - expected.float()).abs() > tol * scale).float().mean())
    assert off <= 1e-4, f"{what}: {off:.3%} of the elements differ by more than {tol * scale:.2g}"


def check(variants: dict) -> dict[str, float]:
    """Largest |local matte| difference of each variant from the official run.

    fp32 variants: local matte, logits (pass) and trimap (hybrid) against the
    official run, see :func:`mostly_close`. bf16: only printed.
    """
    ref = variants["official"]()
    diffs = {}
    for name, call in variants.items():
        out = call()
        diffs[name] = float((out.local.float() - ref.local).abs().max())
        if "bf16" in name:
            continue
        mostly_close(out.local, ref.local, f"{name}: local matte")
        if hasattr(out, "global_logits"):
            mostly_close(out.global_logits, ref.global_logits, f"{name}: logits")
        else:
            mostly_close(out.trimap, ref.trimap, f"{name}: HYBRID trimap", tol=0.0)
    return diffs


def time_round_robin(variants: dict, reps: int, device: torch.device) -> dict[str, float]:
    for call in variants.values():  # warm-up: allocator, oneDNN primitives, fused copies, CUDA kernels
        call()
    times = {name: [] for name in variants}
    for _ in range(reps):
        for name, call in variants.items():
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
    ap.add_argument("--jobs", nargs="+", default=["pass", "hybrid"], choices=["pass", "hybrid"])
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}; {status()}")
    print(f"P3M-Net, batch {args.batch}, {args.size}², random weights (seed 0), medians of {args.reps}")
    jobs = make_jobs(*build_models(device), args.size, args.batch, device)
    for job in args.jobs:
        variants = jobs[job]
        broken = {}
        for name, call in list(variants.items()):
            try:
                call()
            except RuntimeError as exc:
                if name == "official":
                    raise
                broken[name] = str(exc)
                del variants[name]
        diffs = check(variants)
        medians = time_round_robin(variants, args.reps, device)
        base = medians["official"]
        print(f"{job}:")
        print(f"  {'variant':<16}{'ms':>10}{'official/this':>15}{'max |Δlocal|':>14}")
        for name, ms in medians.items():
            print(f"  {name:<16}{ms:>10.2f}{base / ms:>14.2f}x{diffs[name]:>14.2g}")
        for name, why in broken.items():
            print(f"  {name:<16} not timed: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
