"""The exceptions mattezoo raises for bad input.

Each one subclasses the builtin a caller would naturally catch (``ValueError``
for bad values, ``LookupError`` for unknown names, ``TypeError`` for bad
options), so code that does not know mattezoo still handles them sensibly.
Messages name the problem and, where there is a fixed set, the valid choices.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MattezooError(Exception):
    """Base class of every error mattezoo raises on purpose."""


class UnknownMethodError(MattezooError, LookupError):
    """A method name that no registered plugin provides."""

    def __init__(self, name: str, valid: Iterable[str]):
        valid = sorted(valid)
        self.name, self.valid = name, valid
        super().__init__(f"unknown matting method {name!r}. {choices_hint(name, valid, 'registered methods')}")

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return self.args[0]


class DuplicateMethodError(MattezooError):
    """Two plugins registered the same method name."""


class InvalidOptionError(MattezooError, TypeError):
    """An option a method's factory does not accept, or a value it rejects."""


class InputError(MattezooError, ValueError):
    """An image, trimap, matte or path that cannot be used as given."""


class CheckpointError(MattezooError, ValueError):
    """A weights file that is missing, corrupt, unsafe or does not fit the model."""


class ExtensionError(MattezooError, RuntimeError):
    """The compiled extension ``mattezoo._C`` is needed but not usable."""


def choices_hint(given: str, valid: list[str], what: str) -> str:
    """``"Did you mean 'x'? Valid <what>: a, b, c."`` for error messages."""
    if not valid:
        return f"No {what} are available."
    close = difflib.get_close_matches(given, valid, n=3, cutoff=0.6)
    hint = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return f"{hint}Valid {what}: {', '.join(valid)}."
