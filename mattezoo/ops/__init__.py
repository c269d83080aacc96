"""Compiled ops with pure-PyTorch fallbacks.

Each public function checks its arguments (raising :class:`mattezoo.errors.InputError`),
then runs ``torch.ops.mattezoo.<name>`` when ``mattezoo._C`` provides a kernel for
the tensor's device, and the matching function in :mod:`mattezoo.ops.reference`
otherwise (``MATTEZOO_DISABLE_EXT=1`` forces that path).
"""

from .max_pool import max_pool2d_with_indices
from .max_unpool import max_unpool2d

__all__ = ["max_pool2d_with_indices", "max_unpool2d"]
