"""An embedded synthetic portrait set with exact mattes and normal/blurred twins."""

from .generator import SPLITS, Portrait, SyntheticP3M, canonical_split, render_portrait
from .identity import Identity, make_identity

__all__ = ["SPLITS", "Identity", "Portrait", "SyntheticP3M", "canonical_split", "make_identity", "render_portrait"]
