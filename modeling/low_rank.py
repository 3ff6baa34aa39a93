"""Layer factorization: a dense layer W (out×in) becomes a pair of Linear layers of rank r.

Initialized from the truncated SVD W ≈ (U_r √S_r)(√S_r V_rᵀ), the bias kept on the second layer. The layers to
replace are chosen by name, in the spirit of peft's ``target_modules``: a list of name suffixes, or one regex.
"""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

from .configuration_compressed_bert import SettingError

logger = logging.getLogger(__name__)


class LowRankLinear(nn.Module):
    """``up(down(x))`` with ``down``: in→rank (no bias) and ``up``: rank→out.

    Example:
    ```python
    >>> pair = LowRankLinear.from_linear(nn.Linear(384, 1536), rank=64)
    ```
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        if not isinstance(rank, int) or not 0 < rank <= min(in_features, out_features):
            raise ValueError(
                f"rank={rank!r} must be an integer between 1 and min(in_features, out_features)="
                f"{min(in_features, out_features)}"
            )
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))  # (..., in) -> (..., rank) -> (..., out)

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear, rank: int) -> "LowRankLinear":
        pair = cls(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
        u, s, vh = torch.linalg.svd(linear.weight.float(), full_matrices=False)  # (out, k), (k,), (k, in)
        root = s[:rank].sqrt()
        pair.up.weight.copy_(u[:, :rank] * root)  # (out, r)
        pair.down.weight.copy_(root[:, None] * vh[:rank])  # (r, in)
        if linear.bias is not None:
            pair.up.bias.copy_(linear.bias)
        return pair.to(linear.weight.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def rank_for_energy(weight: torch.Tensor, energy: float) -> int:
    """The smallest rank whose singular values keep ``energy`` of the squared spectrum (sum of σ²)."""
    if not 0 < energy <= 1:
        raise ValueError(f"rank energy fraction {energy!r} must be in (0, 1]")
    s = torch.linalg.svdvals(weight.detach().float())  # (min(out, in),), descending
    total = (s**2).sum()
    if total == 0:  # an all-zero layer: any rank keeps everything
        return 1
    kept = torch.cumsum(s**2, 0) / total
    # The tolerance lets energy=1.0 stop at the last singular value above float noise; the cap keeps the rank
    # within min(out, in) when rounding leaves the cumulative sum just below the target.
    return min(int(torch.searchsorted(kept, torch.tensor(energy) - 1e-6).item()) + 1, len(s))


def find_target_linears(model: nn.Module, target_modules) -> dict[str, nn.Linear]:
    """The ``nn.Linear`` modules whose names match: a list of suffixes (``"query"`` or ``"attention.output.dense"``),
    or a single regex string matched against the whole name. Raises when nothing matches."""
    if isinstance(target_modules, str):
        pattern = re.compile(target_modules)
        matches = lambda name: pattern.fullmatch(name) is not None  # noqa: E731
    else:
        targets = list(target_modules)
        matches = lambda name: any(name == t or name.endswith("." + t) for t in targets)  # noqa: E731
    found = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear) and matches(name)}
    if not found:
        raise SettingError("target_modules", target_modules, f"matches no nn.Linear layer of {type(model).__name__}")
    return found


def resolve_ranks(model: nn.Module, target_modules, rank: int | None = None, energy: float | None = None) -> dict[str, int]:
    """Per-layer ranks for the matching layers: one fixed ``rank``, or the rank that keeps ``energy``."""
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank (an integer) or energy (a fraction in (0, 1])")
    layers = find_target_linears(model, target_modules)
    ranks = {}
    for name, linear in layers.items():
        limit = min(linear.in_features, linear.out_features)
        if rank is not None and not (isinstance(rank, int) and 0 < rank <= limit):
            raise SettingError("rank", rank, f"must be an integer between 1 and min(in, out)={limit} (layer {name})")
        ranks[name] = rank if rank is not None else rank_for_energy(linear.weight, energy)
        if ranks[name] * (linear.in_features + linear.out_features) >= linear.in_features * linear.out_features:
            logger.warning("%s: rank %d saves nothing over the dense %dx%d layer", name, ranks[name],
                           linear.out_features, linear.in_features)
    return ranks


def replace_with_low_rank(model: nn.Module, ranks: dict[str, int], from_weights: bool = True) -> list[str]:
    """Swap each named ``nn.Linear`` for a ``LowRankLinear`` in its parent (peft-style ``setattr``).

    With ``from_weights`` the pair is the SVD of the layer it replaces; otherwise it is freshly initialized
    (the weights are about to be loaded from a checkpoint). Returns the replaced names.
    """
    modules = dict(model.named_modules())
    for name, rank in ranks.items():
        linear = modules.get(name)
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"low-rank target {name!r} is not an nn.Linear of {type(model).__name__}")
        parent_name, _, child = name.rpartition(".")
        pair = (
            LowRankLinear.from_linear(linear, rank)
            if from_weights
            else LowRankLinear(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
        )
        setattr(modules[parent_name] if parent_name else model, child, pair)
    logger.info("replaced %d dense layers with low-rank pairs", len(ranks))
    return list(ranks)
