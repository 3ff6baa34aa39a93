"""Cross-layer parameter sharing (ALBERT): one set of weights serves every encoder layer, by indexing.

``share_mode="attention"``: one ``BertAttention`` (``shared_attention``) runs in every layer; each layer keeps
its own feed-forward block (``layer[i].intermediate`` / ``layer[i].output``).
``share_mode="attention_ffn"``: one whole ``BertLayer`` (``shared_layer``, its LayerNorms included) is applied
``num_hidden_layers`` times. ``share_mode=None``: ordinary BERT layers. The same module is never put twice in a
``ModuleList``, so every shared tensor has one name and is stored once.

Initialization from a source model (``share_init``): ``"mean"`` averages the source layers' weights;
``"layer:K"`` copies layer K. See ``load_shared_from_layers``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertAttention, BertIntermediate, BertLayer, BertOutput


class BertFeedForward(nn.Module):
    """The feed-forward half of a BERT layer, with BERT's names (``intermediate.dense``, ``output.dense``)."""

    def __init__(self, config):
        super().__init__()
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, attention_output: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(attention_output), attention_output)


class SharedBertEncoder(nn.Module):
    """An encoder of ``num_hidden_layers`` steps whose weights are shared according to ``config.share_mode``."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.share_mode = config.share_mode
        n = config.num_hidden_layers
        if self.share_mode is None:
            self.layer = nn.ModuleList([BertLayer(config, layer_idx=i) for i in range(n)])
        elif self.share_mode == "attention":
            self.shared_attention = BertAttention(config)
            self.layer = nn.ModuleList([BertFeedForward(config) for _ in range(n)])
        elif self.share_mode == "attention_ffn":
            self.shared_layer = BertLayer(config)
        else:
            raise ValueError(f"share_mode={self.share_mode!r} is not one of 'attention', 'attention_ffn' or None")

    def forward(self, hidden_states, attention_mask=None, output_hidden_states=False, **kwargs):
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for i in range(self.config.num_hidden_layers):
            if self.share_mode is None:
                hidden_states = self.layer[i](hidden_states, attention_mask, **kwargs)
            elif self.share_mode == "attention":
                attention_output, _ = self.shared_attention(hidden_states, attention_mask, **kwargs)
                hidden_states = self.layer[i](attention_output)
            else:
                hidden_states = self.shared_layer(hidden_states, attention_mask, **kwargs)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        return hidden_states, all_hidden_states  # (B, T, H), tuple of N+1 (B, T, H) or None


def parse_share_init(share_init: str, num_layers: int) -> list[int] | None:
    """``"mean"`` -> None (average all); ``"layer:K"`` -> [K]. Raises on anything else."""
    if share_init == "mean":
        return None
    if share_init.startswith("layer:") and share_init[6:].lstrip("-").isdigit():
        index = int(share_init[6:])
        if -num_layers <= index < num_layers:
            return [index % num_layers]
    raise ValueError(f"share_init={share_init!r} must be 'mean' or 'layer:K' with 0 <= K < {num_layers}")


@torch.no_grad()
def _average_into(target: nn.Module, sources: list[nn.Module]) -> None:
    states = [s.state_dict() for s in sources]
    target.load_state_dict({k: torch.stack([st[k].float() for st in states]).mean(0) for k in states[0]})


@torch.no_grad()
def load_shared_from_layers(encoder: SharedBertEncoder, source_layers: list[nn.Module], share_init: str = "mean") -> None:
    """Fill ``encoder`` from a source BERT's ``encoder.layer`` list (same hidden and intermediate sizes)."""
    n = len(source_layers)
    if n != encoder.config.num_hidden_layers:
        raise ValueError(f"the source has {n} layers but the config asks for {encoder.config.num_hidden_layers}")
    chosen = parse_share_init(share_init, n)
    picked = source_layers if chosen is None else [source_layers[i] for i in chosen]
    if encoder.share_mode is None:
        for own, source in zip(encoder.layer, source_layers):
            own.load_state_dict(source.state_dict())
    elif encoder.share_mode == "attention":
        _average_into(encoder.shared_attention, [layer.attention for layer in picked])
        for own, source in zip(encoder.layer, source_layers):
            own.intermediate.load_state_dict(source.intermediate.state_dict())
            own.output.load_state_dict(source.output.state_dict())
    else:
        _average_into(encoder.shared_layer, picked)
