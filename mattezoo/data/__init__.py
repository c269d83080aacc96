"""Data sets for the PPT protocols: P3M-10k, a user's own folders, and an embedded synthetic set.

Every set returns :class:`Sample` records (numpy arrays; see sample.py), so
the training engine wraps them all the same way::

    from mattezoo.data import P3M10k, FolderDataset, SyntheticP3M
    train = SyntheticP3M("train", n=200, size=256)       # or P3M10k(root, "train")
    s = train[0]; s.view("N"), s.view("B"), s.alpha, s.trimap
"""

from .folder import FolderDataset
from .p3m10k import LAYOUTS, P3M10k, write_sample
from .sample import Sample
from .sources import open_source
from .synthetic import SPLITS, SyntheticP3M, canonical_split
from .transforms import RandomCropResize, TrainAugment, random_trimap, scaled_kernel, trimap_from_alpha

__all__ = [
    "LAYOUTS",
    "SPLITS",
    "FolderDataset",
    "P3M10k",
    "RandomCropResize",
    "Sample",
    "SyntheticP3M",
    "TrainAugment",
    "canonical_split",
    "open_source",
    "random_trimap",
    "scaled_kernel",
    "trimap_from_alpha",
    "write_sample",
]
