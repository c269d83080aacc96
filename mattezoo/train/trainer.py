"""The training loop: one engine for every learned method, driven by the method's recipe."""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.sample import Sample
from ..errors import CheckpointError, InvalidOptionError, MattezooError
from ..factory import _device, create_method
from ..registry import get_registry, split_name_tag
from ..weights import load_into, load_state_dict
from . import distributed
from .batches import StepDataset, TrainingBatches
from .checkpoint import FORMAT, VERSION, load_training_checkpoint, rng_state, save_atomic, set_rng_state
from .config import TrainConfig
from .recipe import Recipe, Stage, find_recipe, trainable_methods

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"


@dataclass
class TrainResult:
    """What :func:`train_method` leaves behind."""

    model: nn.Module  # eval mode, with .mattezoo_spec: ready for mattezoo.predict / run_method
    checkpoint: Path | None
    log: Path | None
    steps: int
    seconds: float  # wall time of the steps run by this call
    step_seconds: float | None  # median time of one step in this call
    final_loss: float | None
    history: list[dict] = field(default_factory=list)  # the logged records of this call


class _LossModule(nn.Module):
    """Model plus a stage's loss as one module, so DistributedDataParallel wraps the whole step."""

    def __init__(self, model: nn.Module, loss):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, batch):
        return self.loss(self.model, batch)


def _recipe(spec, options: dict) -> Recipe:
    recipe = find_recipe(spec, options)
    if recipe is None:
        raise InvalidOptionError(
            f"method {spec.name!r} ({spec.family}) has no training recipe and cannot be trained; "
            f"trainable methods: {', '.join(trainable_methods()) or 'none'}"
        )
    return recipe


def _amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    if mode == "off":
        return None
    if mode == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def _set_trainable(model: nn.Module, stage: Stage) -> list[nn.Parameter]:
    if stage.trainable is None:
        params = list(model.parameters())
    else:
        params = list(stage.trainable(model))
    chosen = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    return params


class _Logger:
    def __init__(self, path: Path | None):
        self.path = path
        self.records: list[dict] = []

    def write(self, record: dict) -> None:
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, sort_keys=True) + "\n")


def _progress(total: int, initial: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, leave=False)


def make_adam(params: list[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam at a fixed learning rate (the seed's optimiser), fused where torch has the kernel.

    The fused update reads and writes each tensor once instead of once per
    arithmetic step: for P3M-Net's 39.5 M parameters it took 30 ms per step
    on the 2-core CPU box instead of 180 ms, about a fifth of a quick-preset step.
    """
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, fused=True if fused else None)


def train_method(
    cfg: TrainConfig,
    train_set: Sequence[Sample],
    view: str | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = True,
    init: str | Path | None = None,
) -> TrainResult:
    """Train ``cfg.method`` on ``train_set`` with the method's recipe.

    :param cfg: the run's settings (:class:`TrainConfig`).
    :param train_set: samples holding the ``view`` images and alpha mattes
        (any mattezoo data set: SyntheticP3M, P3M10k, FolderDataset, a list).
    :param view: ``"blurred"``/``"normal"`` (``"B"``/``"N"``); overrides ``cfg.view``.
    :param out: folder for ``checkpoint.pt`` and ``log.jsonl``; ``None`` writes nothing.
    :param resume: continue from ``out/checkpoint.pt`` when it exists (a finished
        run returns at once); ``False`` starts over and replaces it.
    :param init: model weights to start from (a plain state dict such as an
        official release, or a mattezoo checkpoint); ignored when resuming.
    """
    if view is not None:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "view": view})
    spec = get_registry().get(cfg.method)
    if split_name_tag(cfg.method)[1] is not None:
        raise InvalidOptionError(f"train a method by its plain name, not {cfg.method!r}; give starting weights with init=")
    recipe = _recipe(spec, cfg.recipe_options)
    info = distributed.from_env()
    device = distributed.setup(info, _device(cfg.device))
    out = Path(out) if out is not None else None
    ckpt_path = out / CHECKPOINT_NAME if out is not None else None
    state = None
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = load_training_checkpoint(ckpt_path)
        mismatch = cfg.resume_mismatch(state["config"]) if state["method"] == spec.name else [f"method: {state['method']!r} -> {spec.name!r}"]
        if mismatch:
            raise CheckpointError(
                f"{str(ckpt_path)!r} was written by a run with other settings ({'; '.join(mismatch)}); "
                f"use the same settings, another output folder, or resume=False (--no-resume) to start over"
            )
    torch.manual_seed(cfg.seed)
    model = create_method(spec.name, **cfg.options)
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise InvalidOptionError(f"method {spec.name!r} has no parameters to train")
    if state is not None:
        load_into(model, state["model"], source=f"checkpoint {str(ckpt_path)!r}")
    elif init is not None:
        load_into(model, load_state_dict(init), source=f"init weights {str(init)!r}")
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if info.enabled and cfg.sync_bn:
        model = distributed.convert_batchnorm(model, device)
    model.train()

    lr = cfg.lr if cfg.lr is not None else recipe.lr
    optimizer = make_adam(list(model.parameters()), lr, device)
    amp_dtype = _amp_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)
    start = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start = int(state["step"])
    batches = TrainingBatches(train_set, cfg.view, batch=cfg.batch, size=cfg.size, seed=cfg.seed, needs=recipe.needs,
                              crop_sizes=cfg.crop_sizes, rank=info.rank, world=info.world)
    if info.is_main and out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if not resume and ckpt_path.exists():
            ckpt_path.unlink()
            (out / LOG_NAME).unlink(missing_ok=True)
    logger = _Logger(out / LOG_NAME if (info.is_main and out is not None) else None)
    if start == 0 or start < cfg.steps:
        logger.write({"event": "start", "step": start, "config": cfg.to_dict(), "world": info.world, "device": str(device),
                      "recipe": recipe.description, "lr": lr, "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32"})

    step_times: list[float] = []
    last_parts: dict[str, float] = {}
    t_begin = time.perf_counter()
    bar = _progress(cfg.steps, start, cfg.progress and info.is_main, f"train {spec.name} ({cfg.view})")
    ddp_stage, step_module = None, None
    try:
        loader = _batch_iter(batches, start, cfg.steps, cfg.workers)
        for step in range(start, cfg.steps):
            stage = recipe.stage_at(step, cfg.steps)
            if stage is not ddp_stage:
                _set_trainable(model, stage)
                step_module = _LossModule(model, stage.loss)
                if info.enabled:
                    # static_graph: the graph is the same every step of a stage, and DDP then
                    # copes with parameters a model holds but never uses (P3M-Net's ResNet fc).
                    step_module = nn.parallel.DistributedDataParallel(
                        step_module, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True
                    )
                ddp_stage = stage
            t0 = time.perf_counter()
            batch = {k: v.to(device, non_blocking=True) for k, v in next(loader).items()}
            if cfg.channels_last:
                batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
            optimizer.zero_grad(set_to_none=True)
            autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
            with distributed.batchnorm_step():
                with autocast:
                    parts = step_module(batch)
                loss = parts["loss"]
                if not torch.isfinite(loss.detach()):
                    raise MattezooError(f"training {spec.name!r} diverged at step {step}: the loss is {loss.item()} ({ {k: float(v) for k, v in parts.items()} })")
                scaler.scale(loss).backward()
            if cfg.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            step_times.append(dt)
            done = step + 1
            if done % max(1, cfg.log_every) == 0 or done == cfg.steps:
                last_parts = _global_parts(parts, info)
                record = {"event": "step", "step": done, "stage": stage.name, "lr": lr, "seconds": round(dt, 5),
                          "images_per_s": round(cfg.batch / dt, 3) if dt > 0 else None, **last_parts}
                logger.write(record)
                if bar is not None:
                    bar.set_postfix(loss=f"{last_parts['loss']:.4f}", img_s=f"{cfg.batch / dt:.1f}")
            if bar is not None:
                bar.update(1)
            if ckpt_path is not None and (done == cfg.steps or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0)):
                _save(ckpt_path, info, spec.name, cfg, done, model, optimizer, scaler, float(loss.detach()))
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t_begin
    if step_times:
        logger.write({"event": "done", "step": cfg.steps, "seconds": round(seconds, 3), "step_seconds": round(statistics.median(step_times), 5)})
    distributed.barrier(info)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    model.mattezoo_spec = spec
    final = last_parts.get("loss")
    if final is None and state is not None:
        final = state.get("final_loss")
    return TrainResult(
        model=model,
        checkpoint=ckpt_path if ckpt_path is not None and ckpt_path.exists() else None,
        log=(out / LOG_NAME) if out is not None and (out / LOG_NAME).exists() else None,
        steps=cfg.steps,
        seconds=seconds,
        step_seconds=statistics.median(step_times) if step_times else None,
        final_loss=final if final is None or math.isfinite(final) else None,
        history=[r for r in logger.records if r.get("event") == "step"],
    )


def _global_parts(parts, info) -> dict[str, float]:
    """The logged loss parts: each rank's mean over the ranks (the loss of the global batch)."""
    names = sorted(parts)
    values = torch.stack([parts[k].detach().float().reshape(()) for k in names])
    if info.enabled:
        values = values.clone()
        torch.distributed.all_reduce(values)
        values /= info.world
    return dict(zip(names, values.tolist()))


def _batch_iter(batches: TrainingBatches, start: int, stop: int, workers: int):
    if workers == 0:
        return (batches.batch_at(step) for step in range(start, stop))
    loader = torch.utils.data.DataLoader(
        StepDataset(batches, start, stop), batch_size=None, shuffle=False, num_workers=workers,
        multiprocessing_context="spawn", persistent_workers=False, worker_init_fn=_worker_init,
    )
    return iter(loader)


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)


def _save(path: Path, info, method: str, cfg: TrainConfig, step: int, model: nn.Module, optimizer, scaler, final_loss: float) -> None:
    if not info.is_main:
        return
    save_atomic(
        {
            "format": FORMAT,
            "version": VERSION,
            "method": method,
            "step": step,
            "config": cfg.to_dict(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "rng": rng_state(),
            "final_loss": final_loss,
        },
        path,
    )
