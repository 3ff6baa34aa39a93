"""A flag's bounds, declared once in its dataclass, and the one function that checks them.

Each argument dataclass of the training script (its groups, the distillation and transfer settings) declares the
limits of its numeric flags in a ``BOUNDS`` table at the top of the class (field metadata cannot hold them:
``HfArgumentParser`` passes every metadata key to argparse) and calls ``check_fields(self)`` in ``__post_init__``,
which also runs for a .json/.yaml config file. Choices given as metadata (argparse choices) are checked there too,
since a config file bypasses argparse. The message names the flag as the user types it.

```python
>>> @dataclass
... class Args:
...     BOUNDS: ClassVar[dict] = {"rank": Bounds(min=1)}
...     rank: int | None = field(default=None, metadata={"help": "..."})
...     def __post_init__(self):
...         check_fields(self)            # --rank 0 -> ValueError: --rank 0 must be >= 1
```
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Bounds:
    """A finite number within [min, max]; ``above``: strictly greater than it. None (an unset flag) passes."""

    min: float | None = None
    max: float | None = None
    above: float | None = None

    def problem(self, value) -> str | None:
        """Why ``value`` is out of bounds (``must be a finite number >= 0``), or None."""
        if value is None:
            return None
        low = f"> {self.above}" if self.above is not None else f">= {self.min}" if self.min is not None else None
        wanted = " and ".join(part for part in (low, None if self.max is None else f"<= {self.max}") if part)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"must be a finite number {wanted}".rstrip()
        if ((self.above is not None and value <= self.above) or (self.min is not None and value < self.min)
                or (self.max is not None and value > self.max)):
            return f"must be {wanted}"
        return None


def check_value(flag: str, value, limits: Bounds) -> None:
    """``--flag value`` within ``limits``, else a ValueError naming the flag."""
    problem = limits.problem(value)
    if problem:
        raise ValueError(f"--{flag} {value} {problem}")


def check_fields(instance) -> None:
    """Each field's bounds (the ``BOUNDS`` tables of the instance's class and its bases) and choices (its
    metadata), in field order."""
    limits = {}
    for cls in reversed(type(instance).__mro__):
        limits.update(vars(cls).get("BOUNDS", {}))
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name, None)
        if f.name in limits:
            check_value(f.name, value, limits[f.name])
        choices = f.metadata.get("choices")
        if choices is not None and value is not None and value not in choices:
            raise ValueError(f"--{f.name} {value!r} must be one of {', '.join(map(str, choices))}")
