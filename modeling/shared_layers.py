"""Cross-layer parameter sharing (ALBERT): one set of weights serves every encoder layer, by indexing.

``share_mode="attention"``: one attention block (``shared_layer.attention``) runs in every layer; each layer keeps
its own feed-forward block (``layer[i].intermediate`` / ``layer[i].output``).
``share_mode="attention_ffn"``: one whole ``BertLayer`` (``shared_layer``, its LayerNorms included) is applied
``num_hidden_layers`` times. ``share_mode=None``: ordinary BERT layers. The same module is never put twice in a
``ModuleList``, so every shared tensor has one name and is stored once.

Whatever is shared lives under ``encoder.shared_layer`` and whatever is per layer under ``encoder.layer.{i}``, both
with ``BertLayer``'s own names below that (``attention.self.query``, ``intermediate.dense``, ...), so that
``target_modules`` suffixes such as ``"attention.self.query"`` match in every mode.

Groups (``num_shared_groups`` G): G distinct shared modules, each serving a contiguous run of N/G layers.
Relaxed sharing (``share_delta_rank`` R > 0): see ``relaxed_sharing``.

Initialization from a source model (``share_init``), per group: ``"layer:K"`` copies the K-th layer of the run
(the default, ``layer:1``); ``"mean"`` averages the run's layers. See ``load_shared_from_layers``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.bert.modeling_bert import BertAttention, BertIntermediate, BertLayer, BertOutput

from .relaxed_sharing import SharedDenseWeights, relax_layer, residual_factors, shared_dense_names
from .configuration_compressed_bert import SettingError


# Both halves are checkpointing layers like BertLayer, so that gradient checkpointing works in every sharing mode.
class BertFeedForward(GradientCheckpointingLayer):
    """The feed-forward half of a BERT layer, with BERT's names (``intermediate.dense``, ``output.dense``)."""

    def __init__(self, config):
        super().__init__()
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, attention_output: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(attention_output), attention_output)


class BertAttentionHalf(GradientCheckpointingLayer):
    """The attention half of a BERT layer, with BERT's names (``attention.self.query``, ``attention.output.dense``)."""

    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)

    def forward(self, hidden_states: torch.Tensor, attention_mask=None, **kwargs) -> torch.Tensor:
        attention_output, _ = self.attention(hidden_states, attention_mask, **kwargs)  # (B, T, H), weights
        return attention_output


class SharedBertEncoder(nn.Module):
    """An encoder of ``num_hidden_layers`` steps whose weights are shared according to ``config.share_mode``.

    With ``num_shared_groups`` G > 1, ``shared_layer`` is a ModuleList of G distinct modules and layer i runs
    ``shared_layer[i * G // N]``. With ``share_delta_rank`` R > 0 (relaxed sharing, see ``relaxed_sharing``),
    ``shared_layer`` holds only the bias-free shared weights and every ``layer[i]`` is a ``BertLayer`` whose
    shared dense layers add their own rank-R correction, bias and LayerNorms.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.share_mode = config.share_mode
        n = config.num_hidden_layers
        self.num_groups = getattr(config, "num_shared_groups", 1)
        self.relaxed = bool(getattr(config, "share_delta_rank", 0))
        if self.share_mode is None:
            self.layer = nn.ModuleList([BertLayer(config, layer_idx=i) for i in range(n)])
            return
        if self.share_mode not in ("attention", "attention_ffn"):
            raise ValueError(f"share_mode={self.share_mode!r} is not one of 'attention', 'attention_ffn' or None")
        if self.relaxed:
            names = shared_dense_names(self.share_mode)
            groups = [SharedDenseWeights(config, names) for _ in range(self.num_groups)]
            self.layer = nn.ModuleList([
                relax_layer(BertLayer(config, layer_idx=i), groups[self.group_of(i)], names, config.share_delta_rank)
                for i in range(n)
            ])
        elif self.share_mode == "attention":
            groups = [BertAttentionHalf(config) for _ in range(self.num_groups)]
            self.layer = nn.ModuleList([BertFeedForward(config) for _ in range(n)])
        else:
            groups = [BertLayer(config) for _ in range(self.num_groups)]
        # one group keeps the single module (and the checkpoint names) of plain ALBERT-style sharing
        self.shared_layer = groups[0] if self.num_groups == 1 else nn.ModuleList(groups)

    def group_of(self, i: int) -> int:
        """The group that serves layer ``i``: contiguous runs of N / G layers."""
        return i * self.num_groups // self.config.num_hidden_layers

    def shared_module(self, group: int) -> nn.Module:
        return self.shared_layer if self.num_groups == 1 else self.shared_layer[group]

    def forward(self, hidden_states, attention_mask=None, output_hidden_states=False, **kwargs):
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for i in range(self.config.num_hidden_layers):
            if self.share_mode is None or self.relaxed:  # relaxed layers find their shared weights themselves
                hidden_states = self.layer[i](hidden_states, attention_mask, **kwargs)
            elif self.share_mode == "attention":
                shared = self.shared_module(self.group_of(i))
                hidden_states = self.layer[i](shared(hidden_states, attention_mask, **kwargs))
            else:
                hidden_states = self.shared_module(self.group_of(i))(hidden_states, attention_mask, **kwargs)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        return hidden_states, all_hidden_states  # (B, T, H), tuple of N+1 (B, T, H) or None


# The shared layer starts as the teacher's layer 1: on validation it scored best of the six layers, well above their
# mean (docs/results.md, run 1, under "Recipe").
DEFAULT_SHARE_INIT = "layer:1"
# Relaxed sharing's start. "zero" begins exactly at plain sharing, so it can only add capacity; it beat "svd" on
# validation in both sharing sweeps (results/history/cpu_transfer/README.md, results/gpu_h100/README.md). Neither start beats
# plain sharing at equal parameters there, so --share_delta_rank defaults to 0.
DEFAULT_SHARE_DELTA_INIT = "zero"


def parse_share_init(share_init: str, num_layers: int) -> list[int] | None:
    """``"mean"`` -> None (average all); ``"layer:K"`` -> [K]. Raises on anything else.

    ``num_layers`` is the length of one group's run (all layers when there is one group): K counts within it.
    """
    if share_init == "mean":
        return None
    if share_init.startswith("layer:") and share_init[6:].lstrip("-").isdigit():
        index = int(share_init[6:])
        if -num_layers <= index < num_layers:
            return [index % num_layers]
    raise SettingError("share_init", share_init, f"must be 'mean' or 'layer:K' with 0 <= K < {num_layers} "
                       "(the layers each shared module serves)")


@torch.no_grad()
def _average_into(target: nn.Module, sources: list[nn.Module]) -> None:
    target.load_state_dict(_average_states(sources))  # strict: every tensor filled, no source tensor left over


def _average_states(sources: list[nn.Module]) -> dict[str, torch.Tensor]:
    states = [s.state_dict() for s in sources]
    for state in states[1:]:
        if state.keys() != states[0].keys():
            different = sorted(state.keys() ^ states[0].keys())
            raise RuntimeError(f"the source layers to share hold different tensors: {different}")
    return {k: torch.stack([st[k].float() for st in states]).mean(0) for k in states[0]}


@torch.no_grad()
def load_shared_from_layers(
    encoder: SharedBertEncoder,
    source_layers: list[nn.Module],
    share_init: str = DEFAULT_SHARE_INIT,
    share_delta_init: str = DEFAULT_SHARE_DELTA_INIT,
) -> tuple[set[str], set[str]]:
    """Fill ``encoder`` from a source BERT's ``encoder.layer`` list (same hidden and intermediate sizes).

    Each group starts from its own run of layers: ``"layer:K"`` copies the K-th layer of the run, ``"mean"``
    averages the run. Returns the source tensors used and those deliberately dropped, as
    ``"{layer index}.{name in the layer}"``: with ``"layer:K"`` the shared part of a run's other layers is dropped,
    except that relaxed sharing uses every layer's dense weights (its corrections start from the residuals).
    """
    n = len(source_layers)
    if n != encoder.config.num_hidden_layers:
        raise ValueError(f"the source has {n} layers but the config asks for {encoder.config.num_hidden_layers}")

    def names(index: int, part: str = "") -> set[str]:  # the source tensors of one layer, or of one part of it
        module = source_layers[index].get_submodule(part)  # "" is the layer itself
        return {".".join(filter(None, (str(index), part, key))) for key in module.state_dict()}

    used, dropped = set(), set()
    if encoder.share_mode is None:  # share_init means nothing here (the default layer:1 does not fit one layer)
        for i, (own, source) in enumerate(zip(encoder.layer, source_layers)):
            own.load_state_dict(source.state_dict())
            used |= names(i)
        return used, dropped
    size = n // encoder.num_groups
    chosen = parse_share_init(share_init, size)
    runs = [list(range(g * size, (g + 1) * size)) for g in range(encoder.num_groups)]
    picked = [run if chosen is None else [run[chosen[0]]] for run in runs]
    shared_part = "attention" if encoder.share_mode == "attention" else ""
    if encoder.relaxed:
        dense = shared_dense_names(encoder.share_mode)
        for g, run in enumerate(runs):
            start = _average_states([source_layers[i] for i in picked[g]])  # the group's plain-sharing start
            for name in dense:  # the shared weights W: as plain sharing would start them
                encoder.shared_module(g).get_submodule(name).weight.copy_(start[f"{name}.weight"])
            from_start = {f"{name}.weight" for name in dense}
            for i in run:
                used_i, dropped_i, start_i = _load_relaxed_layer(
                    encoder.layer[i], source_layers[i], start, shared_part, zero=share_delta_init == "zero")
                used |= {f"{i}.{key}" for key in used_i}
                dropped |= {f"{i}.{key}" for key in dropped_i}
                from_start |= start_i
            used |= {f"{i}.{key}" for i in picked[g] for key in from_start}
        return used, dropped - used
    for g, run in enumerate(runs):
        target = encoder.shared_module(g)
        if encoder.share_mode == "attention":
            _average_into(target.attention, [source_layers[i].attention for i in picked[g]])
        else:
            _average_into(target, [source_layers[i] for i in picked[g]])
        used |= {name for i in picked[g] for name in names(i, shared_part)}
        dropped |= {name for i in run if i not in picked[g] for name in names(i, shared_part)}
    if encoder.share_mode == "attention":
        for i, (own, source) in enumerate(zip(encoder.layer, source_layers)):
            own.intermediate.load_state_dict(source.intermediate.state_dict())
            own.output.load_state_dict(source.output.state_dict())
            used |= names(i, "intermediate") | names(i, "output")
    return used, dropped


def _load_relaxed_layer(own, source, start, shared_part, zero):
    """Fill one relaxed layer from its ``source`` layer and its group's plain-sharing ``start`` (the picked layer,
    or the run's mean). Returns the names within the layer used from ``source``, those of ``source`` deliberately
    dropped, and those used from ``start``."""
    source_state = source.state_dict()
    state, used, dropped, from_start = {}, set(), set(), set()
    for key in own.state_dict():
        name, _, tail = key.partition(".delta.")
        if tail:  # the correction of a shared dense layer, from the residual against the shared weight
            rank = own.get_submodule(name).rank
            down, up = residual_factors(source_state[f"{name}.weight"], start[f"{name}.weight"], rank, zero)
            state[key] = down if tail == "down.weight" else up  # A_i (R, in), B_i (out, R)
            used.add(f"{name}.weight")
        elif zero and key.startswith(shared_part):  # biases, LayerNorms: the shared start, as in plain sharing
            state[key] = start[key]
            dropped.add(key)
            from_start.add(key)
        else:  # the svd start's biases and LayerNorms, and the per-layer feed-forward block of "attention" sharing
            state[key] = source_state[key]
            used.add(key)
    own.load_state_dict(state)  # strict: every tensor of the layer is filled
    return used, dropped, from_start
