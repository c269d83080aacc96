"""Deterministic training batches from any sequence of :class:`~mattezoo.data.Sample`.

Every random choice of a training sample (its trimap kernel, crop and flip) is
drawn from a generator seeded by ``(seed, global position)``, and the order of
an epoch is a permutation seeded by ``(seed, epoch)``. So the batch of step
``k`` is a pure function of ``k``: resuming at step ``k`` needs no data-loader
state, worker processes change nothing, and under DistributedDataParallel each
rank takes its slice of the same global batch that one process would see.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from ..data.sample import KINDS, Sample
from ..data.transforms import CROP_SIZES, RESIZE_TO, TRAIN_KERNEL_RANGE, RandomCropResize, random_trimap
from ..errors import InputError

# The seed's kernel sizes (15..30) are for P3M-10k photos of about 1024 px on
# the short side; other resolutions scale them.
KERNEL_REFERENCE_SIDE = 1024
DEFAULT_CACHE_BYTES = 2 << 30


def default_crop_sizes(size: int) -> tuple[int, ...]:
    """The seed's crops {512, 768, 1024} -> 512, scaled to an output ``size``."""
    return tuple(int(round(c * size / RESIZE_TO)) for c in CROP_SIZES)


def kernel_range_for(short_side: int) -> tuple[int, int]:
    lo, hi = (max(3, int(round(k * short_side / KERNEL_REFERENCE_SIDE))) for k in TRAIN_KERNEL_RANGE)
    return lo, max(lo, hi)


class TrainingBatches:
    """Global step -> this rank's batch of tensors.

    :param samples: a sequence of samples holding ``view`` and ``alpha``
        (fg/bg are derived from the image when a recipe needs them and the set
        has none, as the official code does).
    :param view: ``"blurred"`` or ``"normal"`` (``"B"``/``"N"``).
    :param batch: the global batch size (split evenly over ``world`` ranks).
    :param size: side of the square training crops.
    :param needs: batch keys to build (see :data:`mattezoo.train.recipe.BATCH_KEYS`).
    :param cache_bytes: decoded samples are kept in memory up to this size
        (synthetic samples are rendered, P3M-10k ones decoded, only once).
    """

    def __init__(self, samples: Sequence[Sample], view: str, *, batch: int, size: int, seed: int = 0,
                 needs: Sequence[str] = ("image", "alpha", "trimap"), crop_sizes: Sequence[int] | None = None,
                 rank: int = 0, world: int = 1, cache_bytes: int = DEFAULT_CACHE_BYTES):
        if len(samples) == 0:
            raise InputError("the training set is empty")
        self.view = KINDS.get(str(view).lower())
        if self.view is None:
            raise InputError(f"unknown training view {view!r}; valid views: 'blurred' ('B'), 'normal' ('N')")
        if batch < 1 or size < 1:
            raise InputError(f"batch and size must be positive, got batch={batch}, size={size}")
        if batch % world:
            raise InputError(f"the global batch {batch} cannot be split evenly over {world} processes; use a multiple of {world}")
        self.samples, self.batch, self.size, self.seed = samples, int(batch), int(size), int(seed)
        self.needs = tuple(needs)
        self.rank, self.world = int(rank), int(world)
        self.crop = RandomCropResize(tuple(crop_sizes) if crop_sizes else default_crop_sizes(self.size), self.size)
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._cache_bytes, self._cache_limit = 0, int(cache_bytes)

    def __len__(self) -> int:
        return len(self.samples)

    def order(self, epoch: int) -> np.ndarray:
        """The sample order of an epoch."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5EED, int(epoch)]))
        return rng.permutation(len(self.samples))

    def index_at(self, position: int) -> int:
        """The sample at global position ``position`` (counting over all epochs)."""
        epoch, offset = divmod(int(position), len(self.samples))
        return int(self.order(epoch)[offset])

    def positions(self, step: int) -> range:
        """Global positions of this rank's share of step ``step``."""
        local = self.batch // self.world
        start = int(step) * self.batch + self.rank * local
        return range(start, start + local)

    def _arrays(self, index: int) -> dict:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        sample = self.samples[index]
        image = sample.view(self.view)
        arrays = {"image": image, "alpha": np.asarray(sample.alpha, dtype=np.float32)}
        if image.shape[:2] != arrays["alpha"].shape:
            raise InputError(f"sample {sample.name!r}: image {image.shape[:2]} and alpha {arrays['alpha'].shape} differ in size")
        if "fg" in self.needs or "bg" in self.needs:
            arrays["fg"], arrays["bg"] = self._fg_bg(sample, image, arrays["alpha"])
        nbytes = sum(a.nbytes for a in arrays.values())
        if nbytes <= self._cache_limit:
            self._cache[index] = arrays
            self._cache_bytes += nbytes
            while self._cache_bytes > self._cache_limit:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= sum(a.nbytes for a in old.values())
        return arrays

    def _fg_bg(self, sample: Sample, image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if sample.fg is None or sample.bg is None:
            # As the official code does without fg/bg files: the image times alpha and 1 - alpha.
            a = alpha[..., None]
            return (image * a).astype(np.uint8), (image * (1.0 - a)).astype(np.uint8)
        fg = sample.fg
        if self.view == "blurred" and sample.normal is not None and sample.blurred is not None:
            # The foreground of a blurred image has a blurred face: take the pixels the blur changed.
            changed = np.any(sample.blurred != sample.normal, axis=-1)
            if changed.any():
                fg = fg.copy()
                fg[changed] = sample.blurred[changed]
        return fg, sample.bg

    def item(self, position: int) -> dict[str, np.ndarray]:
        """The augmented arrays of the sample at one global position."""
        arrays = self._arrays(self.index_at(position))
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xA116, int(position)]))
        trimap = random_trimap(arrays["alpha"], rng, kernel_range_for(min(arrays["alpha"].shape)))
        return self.crop({**arrays, "trimap": trimap}, rng)

    def batch_at(self, step: int) -> dict[str, torch.Tensor]:
        """This rank's batch of step ``step``: float tensors, images in [0,1], trimap 0/0.5/1."""
        items = [self.item(p) for p in self.positions(step)]
        out = {}
        for key in self.needs:
            stacked = np.stack([it[key] for it in items])
            t = torch.from_numpy(stacked)
            if key in ("image", "fg", "bg"):
                out[key] = t.permute(0, 3, 1, 2).float().div_(255.0).contiguous()
            elif key == "alpha":
                out[key] = t.float().unsqueeze(1)
            elif key == "trimap":
                out[key] = (t.float() / 255.0).mul_(2.0).round_().div_(2.0).unsqueeze(1)
        return out


class StepDataset(torch.utils.data.Dataset):
    """Steps ``start..stop-1`` as a map-style dataset (for DataLoader worker processes)."""

    def __init__(self, batches: TrainingBatches, start: int, stop: int):
        self.batches, self.start, self.stop = batches, int(start), int(stop)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.batches.batch_at(self.start + i)
