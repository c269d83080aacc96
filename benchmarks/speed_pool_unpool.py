"""Side-by-side CPU times of mattezoo's pool/unpool ops and torch's, at P3M-Net's shapes.

    python benchmarks/speed_pool_unpool.py [--size 1024] [--batch 1] [--reps 7] [--channels-last]

For each shape: check the result against torch, warm up, then time ours and
torch's alternately, back to back, and report the median of each, so both see
the same machine state. Prints per-shape milliseconds, the sums over the
encoder's five pools and the decoder's five unpools, and ratios (torch / ours,
so > 1 means mattezoo is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pool_unpool_shapes import (  # noqa: E402
    decoder_unpool_shapes,
    encoder_pool_shapes,
    pool_input,
    torch_unpool_one_thread,
    unpool_inputs,
)

from mattezoo.extension import status  # noqa: E402
from mattezoo.ops import max_pool2d_with_indices, max_unpool2d  # noqa: E402


def time_pair(ours, theirs, reps: int) -> tuple[float, float]:
    """Median ms of each, measured alternately after a warm-up of both."""
    for fn in (ours, theirs, ours, theirs):
        fn()
    t_ours, t_theirs = [], []
    for _ in range(reps):
        for fn, acc in ((ours, t_ours), (theirs, t_theirs)):
            start = time.perf_counter()
            fn()
            acc.append((time.perf_counter() - start) * 1e3)
    return statistics.median(t_ours), statistics.median(t_theirs)


def table(title: str, rows: list[tuple[str, float, float]]) -> float:
    print(f"\n{title}")
    print(f"  {'shape':<28}{'mattezoo ms':>12}{'torch ms':>10}{'ratio':>8}")
    for name, ours, theirs in rows:
        print(f"  {name:<28}{ours:>12.2f}{theirs:>10.2f}{theirs / ours:>7.2f}x")
    total_ours, total_theirs = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"  {'sum':<28}{total_ours:>12.2f}{total_theirs:>10.2f}{total_theirs / total_ours:>7.2f}x")
    return total_theirs / total_ours


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="square input size of P3M-Net (default 1024)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per op (median reported)")
    ap.add_argument("--channels-last", action="store_true", help="use channels_last tensors")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {status()}")
    print(f"P3M-Net shapes for a {args.size}² input, batch {args.batch}, channels_last={args.channels_last}")
    # Outputs of 4 MiB and more: ours on transparent huge pages unless MATTEZOO_HUGE_PAGES=0,
    # torch's only with THP_MEM_ALLOC_ENABLE=1 (benchmarks/README.md).
    print(
        f"MATTEZOO_HUGE_PAGES={os.environ.get('MATTEZOO_HUGE_PAGES', '(unset: on)')} "
        f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '(unset: off)')}"
    )

    for index_dtype in (torch.int64, torch.int32):
        rows = []
        for shape in encoder_pool_shapes(args.size, args.batch):
            x = pool_input(shape, channels_last=args.channels_last)
            ev, ei = F.max_pool2d(x, 3, 2, 1, return_indices=True)
            v, i = max_pool2d_with_indices(x, index_dtype=index_dtype)
            assert torch.equal(v, ev) and torch.equal(i.long(), ei), f"max_pool2d_with_indices differs at {shape}"
            ours, theirs = time_pair(
                lambda: max_pool2d_with_indices(x, index_dtype=index_dtype),
                lambda: F.max_pool2d(x, 3, 2, 1, return_indices=True),
                args.reps,
            )
            rows.append((f"{shape[1]}x{shape[2]}x{shape[3]}", ours, theirs))
            del x, ev, ei, v, i
        name = str(index_dtype).replace("torch.", "")
        table(f"max_pool2d_with_indices k3/s2/p1 (ours with {name} indices; torch int64)", rows)

    for index_dtype in (torch.int64, torch.int32):
        rows = []
        for shape, out_hw in decoder_unpool_shapes(args.size, args.batch):
            x, idx = unpool_inputs(shape, out_hw, index_dtype=index_dtype, channels_last=args.channels_last)
            idx64 = idx.long()
            expected = torch_unpool_one_thread(x, idx64, out_hw)
            assert torch.equal(max_unpool2d(x, idx, out_hw), expected), f"max_unpool2d differs at {shape}"
            del expected
            ours, theirs = time_pair(
                lambda: max_unpool2d(x, idx, out_hw),
                lambda: F.max_unpool2d(x, idx64, 3, 2, 1, output_size=out_hw),
                args.reps,
            )
            rows.append((f"{shape[1]}x{shape[2]}x{shape[3]} -> {out_hw[0]}x{out_hw[1]}", ours, theirs))
        name = str(index_dtype).replace("torch.", "")
        table(f"max_unpool2d (ours with {name} indices; torch int64)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
