"""Relaxed sharing (Bae et al., *Relaxed Recursive Transformers*, arXiv 2410.20672): one shared dense weight W,
plus a per-layer low-rank correction, ``y_i = W x + B_i (A_i x) + b_i``.

The shared weights live once, bias-free, in ``SharedDenseWeights`` (under ``encoder.shared_layer`` with BERT's
names, e.g. ``encoder.shared_layer.attention.self.query.weight``). Each layer ``encoder.layer.{i}`` is an ordinary
``BertLayer`` (so its LayerNorms are per layer) whose shared dense layers are ``RelaxedLinear``: the per-layer bias
``b_i`` and the pair ``delta.down`` (A_i, R×in) / ``delta.up`` (B_i, out×R). A ``RelaxedLinear`` finds W by
attribute lookup at call time, not by registering it, so W has one name in the state dict, and whatever replaces
it in place later (a ``LowRankLinear`` for ``--rank``, an int8 layer) is what runs.

Starts (``share_delta_init``), from the residual ``W_source_i - W_shared = U S Vᵀ`` truncated to rank R:

- ``"svd"``: A_i = V_Rᵀ, B_i = U_R S_R; biases and LayerNorms are layer i's own. At R = min(in, out) every layer is
  exactly its source layer.
- ``"zero"`` (LoRA-style): the same A_i, B_i = 0, and biases and LayerNorms copied from the shared start, so the
  model starts exactly at plain sharing.

A_i carries no singular values (its rows are orthonormal) so that a layer whose residual is zero -- the layer its
group was copied from -- still gets a trainable correction: with A_i = 0 too, neither factor would get a gradient.
"""

from __future__ import annotations

import torch
from torch import nn

from .low_rank import LowRankLinear

ATTENTION_DENSE = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")
FFN_DENSE = ("intermediate.dense", "output.dense")


def shared_dense_names(share_mode: str) -> tuple[str, ...]:
    """BERT's names of the dense layers that ``share_mode`` shares."""
    return ATTENTION_DENSE if share_mode == "attention" else ATTENTION_DENSE + FFN_DENSE


def dense_shape(config, name: str) -> tuple[int, int]:
    """(in_features, out_features) of one of BERT's dense layers."""
    h, i = config.hidden_size, config.intermediate_size
    return {"intermediate.dense": (h, i), "output.dense": (i, h)}.get(name, (h, h))


class SharedDenseWeights(nn.Module):
    """The bias-free shared weights W, as ``nn.Linear`` layers under BERT's names (``attention.self.query``, ...)."""

    def __init__(self, config, names: tuple[str, ...]):
        super().__init__()
        for name in names:
            parent = self
            *path, child = name.split(".")
            for part in path:
                if part not in parent._modules:
                    parent.add_module(part, nn.Module())
                parent = parent._modules[part]
            parent.add_module(child, nn.Linear(*dense_shape(config, name), bias=False))


class RelaxedLinear(nn.Module):
    """``shared(x) + delta(x) + bias``: a shared weight W (looked up, not owned) plus this layer's rank-R correction.

    Example:
    ```python
    >>> weights = SharedDenseWeights(config, ("intermediate.dense",))
    >>> layer_0 = RelaxedLinear(weights.intermediate, "dense", 384, 1536, rank=8)
    ```
    """

    def __init__(self, shared_parent: nn.Module, shared_name: str, in_features: int, out_features: int, rank: int):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        # A plain tuple is not registered: W stays under encoder.shared_layer only, stored and counted once.
        self._shared = (shared_parent, shared_name)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.delta = LowRankLinear(in_features, out_features, rank, bias=False)  # down: A_i (R, in), up: B_i (out, R)

    @property
    def shared(self) -> nn.Module:
        parent, name = self._shared
        return getattr(parent, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(x) + self.delta(x) + self.bias  # (..., in) -> (..., out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def relax_layer(layer: nn.Module, weights: SharedDenseWeights, names: tuple[str, ...], rank: int) -> nn.Module:
    """Swap ``layer``'s dense layers ``names`` for ``RelaxedLinear``s over ``weights`` (peft-style ``setattr``)."""
    for name in names:
        path, _, child = name.rpartition(".")
        dense = layer.get_submodule(name)
        relaxed = RelaxedLinear(weights.get_submodule(path), child, dense.in_features, dense.out_features, rank)
        setattr(layer.get_submodule(path), child, relaxed)
    return layer


@torch.no_grad()
def residual_factors(source_weight: torch.Tensor, shared_weight: torch.Tensor, rank: int, zero: bool):
    """A_i (R, in) and B_i (out, R) from the truncated SVD of ``source_weight - shared_weight`` (both (out, in))."""
    u, s, vh = torch.linalg.svd((source_weight.float() - shared_weight.float()), full_matrices=False)
    down = vh[:rank]  # (R, in), orthonormal rows
    up = torch.zeros_like(u[:, :rank]) if zero else u[:, :rank] * s[:rank]  # (out, R)
    return down, up
