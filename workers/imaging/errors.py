"""The one exception the imaging core raises for bad input.

Every refusal (unreadable bytes, unsupported transfer syntax, decompression bomb, unsafe zip
entry) is an :class:`ImagingError` whose message names the file (the caller's ``name``, which
must not carry PHI) and the problem, so callers can report per-file results without parsing
library-specific exceptions.
"""

from __future__ import annotations


class ImagingError(ValueError):
    """Bad or unsupported input. ``str(err)`` is safe to show to users and to log (no PHI)."""

    def __init__(self, message: str, *, name: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.problem = problem or message


def fail(name: str | None, problem: str) -> ImagingError:
    """An :class:`ImagingError` reading ``"<name>: <problem>"`` (or just the problem without a name)."""
    label = name or "input"
    return ImagingError(f"{label}: {problem}", name=name, problem=problem)
