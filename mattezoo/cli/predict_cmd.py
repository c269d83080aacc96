"""``mattezoo predict IMAGE_OR_DIR --method NAME``: write alpha mattes as PNG files."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import InputError, InvalidOptionError, MattezooError
from ..factory import create_method, method_options
from ..images import list_images, read_image, write_png
from ..inference import predict, predict_trimap, spec_of, trimap_providers
from ..registry import get_registry, split_name_tag


def add_parser(sub):
    p = sub.add_parser("predict", help="predict alpha mattes for an image or a folder of images")
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("--method", required=True, help="a registered method name, optionally name.tag for weights")
    p.add_argument("--trimap", help="trimap file (for one image) or folder of trimaps paired by file stem")
    p.add_argument("--trimap-from", metavar="METHOD",
                   help="make each trimap with a trimap-free method that has one (e.g. p3m_net.p3m10k), "
                        "instead of --trimap; for trimap-based and classical methods")
    p.add_argument("--trimap-checkpoint", metavar="PATH", help="local weights file for the --trimap-from method")
    p.add_argument("--save-trimap", action="store_true",
                   help="also write NAME_trimap.png: the trimap used (--trimap-from) or made (trimap-free methods that make one)")
    p.add_argument("--checkpoint", help="local weights file for a learned method")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--strategy", metavar="NAME",
                   help="test-time strategy of methods that have one, e.g. hybrid or resize for p3m_net and basic "
                        "(the method checks the value and lists its valid ones)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option, e.g. -o radius=2 (values are Python literals; repeatable)")
    p.add_argument("--out", default="mattezoo-predictions", help="output folder (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--cutout", action="store_true",
                   help="also write NAME_cutout.png, an RGBA cutout whose colours come from multi-level "
                        "foreground estimation (no background bleeding)")
    return p


def parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidOptionError(f"option {pair!r} is not KEY=VALUE")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw  # a bare word such as strategy=hybrid
        options[key.strip()] = value
    return options


def methods_with_strategies() -> list[str]:
    """Registered methods whose factory takes a ``strategy`` option."""
    names = []
    for name in get_registry().names():
        try:
            if "strategy" in method_options(name):
                names.append(name)
        except MattezooError:  # a plugin whose factory cannot be imported has no usable strategies
            continue
    return names


def strategy_option(method: str, strategy: str | None, options: dict) -> dict:
    """``options`` with ``strategy`` added for a method that has strategies; a clear error otherwise."""
    if strategy is None:
        return options
    if "strategy" in options:
        raise InvalidOptionError(f"--strategy {strategy!r} and -o strategy={options['strategy']!r} both given; pass one")
    base, _tag = split_name_tag(method)
    if "strategy" not in method_options(base):
        having = methods_with_strategies()
        listed = ", ".join(having) if having else "none of the registered methods"
        raise InvalidOptionError(f"method {base!r} has no test-time strategies, so --strategy does not apply; methods with strategies: {listed}")
    return {**options, "strategy": strategy}


def cutout_rgba(image, alpha):
    """``H×W×4`` uint8 RGBA: estimated foreground colours with ``alpha`` as opacity."""
    import numpy as np

    from ..classical import estimate_foreground

    foreground = estimate_foreground(image, alpha)
    rgba = np.concatenate([foreground, alpha[..., None]], axis=2)
    return (np.clip(rgba, 0, 1) * 255.0).round().astype(np.uint8)


def trimap_method(args):
    """The method named by ``--trimap-from`` (on ``--device``), or ``None``; clear errors for misuse."""
    if args.trimap_from is None:
        if args.trimap_checkpoint:
            raise InvalidOptionError("--trimap-checkpoint needs --trimap-from METHOD")
        return None
    if args.trimap is not None:
        raise InvalidOptionError("--trimap and --trimap-from both given; pass one")
    spec = get_registry().get(split_name_tag(args.trimap_from)[0])
    if not spec.provides_trimap:
        providers = ", ".join(trimap_providers()) or "none is registered"
        raise InvalidOptionError(f"--trimap-from {args.trimap_from!r}: {spec.name!r} does not make trimaps; methods that do: {providers}")
    options = {}
    if args.trimap_checkpoint:
        options["pretrained"] = args.trimap_checkpoint
    if args.device:
        options["device"] = args.device
    maker = create_method(args.trimap_from, **options)
    warn_if_untrained(args.trimap_from, maker, options, "--trimap-checkpoint")
    return maker


def warn_if_untrained(name: str, method, options: dict, flag: str) -> None:
    """Say so when a learned method runs from random initialisation: its mattes then mean nothing."""
    if isinstance(method, torch.nn.Module) and options.get("pretrained") is None and split_name_tag(name)[1] is None:
        print(f"mattezoo predict: warning: {name!r} has no trained weights (no {flag} given), so it runs from random "
              f"initialisation and its output is not a real matte. Pass {flag} PATH, or a weight tag "
              f"({name}.TAG) resolved in MATTEZOO_WEIGHTS.", file=sys.stderr)


def _pairs(args) -> list[tuple[Path, Path | None]]:
    source = Path(args.input)
    if source.is_dir():
        images = list_images(source)
        if not images:
            raise InputError(f"{str(source)!r} holds no image files")
    elif source.is_file():
        images = [source]
    else:
        raise InputError(f"{str(source)!r}: no such file or folder")
    if args.trimap is None:
        return [(p, None) for p in images]
    trimaps = Path(args.trimap)
    if trimaps.is_file():
        if len(images) != 1:
            raise InputError("--trimap is a single file but the input is a folder; pass a folder of trimaps")
        return [(images[0], trimaps)]
    by_stem = {p.stem: p for p in list_images(trimaps)}
    missing = [p.name for p in images if p.stem not in by_stem]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"no trimap in {str(trimaps)!r} for {shown} (trimaps are paired by file stem)")
    return [(p, by_stem[p.stem]) for p in images]


def run(args) -> int:
    options = strategy_option(args.method, args.strategy, parse_options(args.option))
    if args.checkpoint:
        options["pretrained"] = args.checkpoint
    if args.device:
        options["device"] = args.device
    method = create_method(args.method, **options)
    spec = spec_of(method)
    warn_if_untrained(args.method, method, options, "--checkpoint")
    if not spec.needs_trimap and (args.trimap is not None or args.trimap_from is not None):
        raise InputError(f"{spec.name!r} is trimap-free and takes no trimap; drop --trimap/--trimap-from")
    maker = trimap_method(args)
    if spec.needs_trimap and args.trimap is None and maker is None:
        providers = ", ".join(trimap_providers()) or "none is registered"
        raise InputError(f"{spec.name!r} is a {spec.family} method: pass --trimap FILE_OR_FOLDER, "
                         f"or --trimap-from METHOD to make trimaps with one of: {providers}")
    if args.save_trimap and maker is None and not spec.provides_trimap:
        raise InvalidOptionError(f"--save-trimap: {spec.name!r} makes no trimap and no --trimap-from was given")
    pairs = _pairs(args)
    out = Path(args.out)
    inputs = {p.resolve() for pair in pairs for p in pair if p is not None}
    if out.resolve() in {p.parent for p in inputs}:
        raise InputError(f"--out {str(out)!r} is the input folder; choose another folder so no input is overwritten")
    out.mkdir(parents=True, exist_ok=True)
    failed, written, skipped = [], 0, 0
    for image_path, trimap_path in tqdm(pairs, desc=f"predict {spec.name}", unit="img", disable=len(pairs) < 2 or not sys.stderr.isatty()):
        target = out / f"{image_path.stem}.png"
        if target.exists() and not args.overwrite:
            skipped += 1
            continue
        try:
            image = read_image(image_path)
            trimap = predict_trimap(maker, image) if maker is not None else trimap_path
            alpha = predict(method, image, trimap)
            write_png(target, alpha)
            if args.save_trimap:
                made = trimap if maker is not None else predict_trimap(method, image)
                write_png(out / f"{image_path.stem}_trimap.png", made)
            if args.cutout:
                write_png(out / f"{image_path.stem}_cutout.png", cutout_rgba(image, alpha))
            written += 1
        except MattezooError as exc:
            failed.append((image_path, exc))
            print(f"mattezoo predict: skipped {image_path}: {exc}", file=sys.stderr)
    print(f"{written} matte(s) written to {out}" + (f", {skipped} existing kept (use --overwrite)" if skipped else "")
          + (f", {len(failed)} failed" if failed else ""))
    return 1 if failed else 0
