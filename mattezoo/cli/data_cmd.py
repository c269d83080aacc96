"""``mattezoo data``: write the synthetic set in the P3M-10k layout, or check a P3M-10k tree.

    mattezoo data synth --out DIR --n 200 --size 256 [--seed 0] [--split train P3M-500-NP] [--overwrite]
    mattezoo data check ROOT [--split P3M-500-P] [--sizes]
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import InputError


def add_parser(sub):
    p = sub.add_parser("data", help="make the synthetic P3M set, or check a P3M-10k folder tree")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    s = dsub.add_parser("synth", help="write synthetic portraits (normal + blurred twins, alpha, trimap, fg, bg, facemask) in the P3M-10k layout")
    s.add_argument("--out", required=True, type=Path, help="root folder to write (train/, validation/P3M-500-P/, validation/P3M-500-NP/)")
    s.add_argument("--n", type=int, default=100, help="samples per split (default 100)")
    s.add_argument("--size", default="256", help="side in pixels, or HxW such as 320x256 (default 256)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--split", nargs="+", default=None, help="splits to write (default: train P3M-500-P P3M-500-NP)")
    s.add_argument("--per-identity", type=int, default=None, help="photos per identity (default 4 in train, 1 in the test splits)")
    s.add_argument("--overwrite", action="store_true", help="replace files that exist already")
    c = dsub.add_parser("check", help="check a P3M-10k tree: folders, pairing and (with --sizes) image sizes")
    c.add_argument("root", type=Path)
    c.add_argument("--split", nargs="+", default=None, help="splits to check (default: all found)")
    c.add_argument("--sizes", action="store_true", help="also compare every file's size (reads headers)")
    return p


def _parse_size(text: str):
    parts = str(text).lower().split("x")
    try:
        values = [int(v) for v in parts]
    except ValueError:
        raise InputError(f"--size must be N or HxW (e.g. 256 or 320x256), got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return tuple(values)
    raise InputError(f"--size must be N or HxW (e.g. 256 or 320x256), got {text!r}")


def _synth(args) -> int:
    from ..data import SPLITS, SyntheticP3M, canonical_split
    from ..data.p3m10k import planned_paths, write_sample

    if args.n < 1:
        raise InputError(f"--n must be at least 1, got {args.n}")
    splits = [canonical_split(s) for s in (args.split or SPLITS)]
    size = _parse_size(args.size)
    sets = [SyntheticP3M(split, n=args.n, size=size, seed=args.seed, per_identity=args.per_identity) for split in splits]
    if not args.overwrite:
        # Names and paths are known before anything is drawn: refuse before writing a single file.
        existing = [p for ds in sets for i in range(len(ds)) for p in planned_paths(args.out, ds.split, _NameOnly(ds.name(i))).values() if p.exists()]
        if existing:
            raise InputError(f"{len(existing)} file(s) under {args.out} exist already, e.g. {existing[0]}; pass --overwrite to replace them")
    for ds in sets:
        start = time.perf_counter()
        for i in range(len(ds)):
            write_sample(args.out, ds.split, ds[i], overwrite=True)
        took = time.perf_counter() - start
        print(f"{ds.split}: {len(ds)} samples at {ds.size[0]}×{ds.size[1]} in {took:.1f} s")
    print(f"wrote {args.out} (read it with mattezoo.data.P3M10k({str(args.out)!r}, split))")
    return 0


class _NameOnly:
    """Stand-in for a synthetic sample when only its output paths are needed (it has every field)."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, field):
        return True


def _check(args) -> int:
    from ..data import SPLITS, P3M10k, canonical_split

    root = args.root
    if not root.is_dir():
        raise InputError(f"{str(root)!r} is not a folder")
    splits = [canonical_split(s) for s in args.split] if args.split else list(SPLITS)
    found = 0
    for split in splits:
        try:
            ds = P3M10k(root, split, check_sizes=args.sizes)
        except InputError as exc:
            if args.split or "not found" not in str(exc):
                raise
            continue
        found += 1
        print(f"{split}: {len(ds)} samples; folders: {', '.join(ds.folders)}")
    if not found:
        raise InputError(f"{root} holds none of the P3M-10k splits {', '.join(splits)}")
    return 0


def run(args) -> int:
    return _synth(args) if args.data_command == "synth" else _check(args)
