"""Embedding factorization: the V×H word embedding becomes a V×E table and an E×H projection (ALBERT).

The P×H position table can be factorized the same way (``position_embedding_size``): a trained BERT's position
table is nearly low-rank (fine-tuned all-MiniLM-L6-v2: rank 16 of the centred 512×384 table keeps 97.7% of its
energy, and the model's CoNLL-2003 validation F1 does not drop), while at H=384 it is 196,608 parameters, a tenth
of a 10x student. Token-type embeddings stay at H. The factors are initialized from a truncated SVD of the source
table, centred first so that the projection's bias carries the mean embedding: ``W ≈ 1·μᵀ + (U_E S_E) V_Eᵀ``, the
best rank-E approximation of the centred table.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertEmbeddings
from .configuration_compressed_bert import SettingError


class FactorizedBertEmbeddings(BertEmbeddings):
    """BERT embeddings whose word table is V×E, projected up to H before positions are added."""

    def __init__(self, config):
        super().__init__(config)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.embedding_hidden_mapping_in = nn.Linear(config.embedding_size, config.hidden_size)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, **kwargs):
        if inputs_embeds is None:
            inputs_embeds = self.embedding_hidden_mapping_in(self.word_embeddings(input_ids))  # (B, T, E) -> (B, T, H)
        return super().forward(
            token_type_ids=token_type_ids, position_ids=position_ids, inputs_embeds=inputs_embeds, **kwargs
        )


class FactorizedPositionEmbedding(nn.Module):
    """A P×H position table stored as a P×E table (``table``) and an E×H projection (``projection``).

    Example:
    ```python
    >>> positions = FactorizedPositionEmbedding(512, 16, 384)
    >>> positions(torch.arange(7)[None])  # (1, 7, 384)
    ```
    """

    def __init__(self, num_positions: int, embedding_size: int, hidden_size: int):
        super().__init__()
        self.table = nn.Embedding(num_positions, embedding_size)
        self.projection = nn.Linear(embedding_size, hidden_size)

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.table(position_ids))  # (B, T) -> (B, T, E) -> (B, T, H)


def factorize_position_embeddings(embeddings: nn.Module, embedding_size: int) -> None:
    """Replace the ``position_embeddings`` of a BERT embedding module by a ``FactorizedPositionEmbedding`` of the
    same positions and width; its weights are to be loaded (``load_embeddings_from_bert`` or a checkpoint)."""
    table = embeddings.position_embeddings
    embeddings.position_embeddings = FactorizedPositionEmbedding(table.num_embeddings, embedding_size,
                                                                 table.embedding_dim).to(table.weight.device)


@torch.no_grad()
def factorize_embedding_matrix(weight: torch.Tensor, embedding_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a (V, H) table into a (V, E) table, a (H, E) projection weight and an (H,) bias."""
    vocab_size, hidden_size = weight.shape
    if not 0 < embedding_size < hidden_size:
        raise SettingError("embedding_size", embedding_size, f"must be between 1 and hidden_size-1 ({hidden_size - 1})")
    weight = weight.float()
    mean = weight.mean(dim=0)  # (H,)
    u, s, vh = torch.linalg.svd(weight - mean, full_matrices=False)  # (V, H), (H,), (H, H)
    table = u[:, :embedding_size] * s[:embedding_size]  # (V, E)
    projection = vh[:embedding_size].T.contiguous()  # (H, E): nn.Linear(E, H).weight
    return table.contiguous(), projection, mean


@torch.no_grad()
def load_embeddings_from_bert(target: nn.Module, source: BertEmbeddings) -> set[str]:
    """Fill ``target`` (BERT embeddings, maybe with a factorized word or position table) from a BERT embedding
    module: factorized tables by SVD, every other tensor copied. Returns the source parameter names it used (all)."""
    source_state = source.state_dict()
    factorized = {}  # source name -> the (table, projection) modules of target it becomes, by name
    if isinstance(target, FactorizedBertEmbeddings):
        factorized["word_embeddings.weight"] = ("word_embeddings", "embedding_hidden_mapping_in")
    if isinstance(target.position_embeddings, FactorizedPositionEmbedding):
        factorized["position_embeddings.weight"] = ("position_embeddings.table", "position_embeddings.projection")
    for name, (table_name, projection_name) in factorized.items():
        table, projection = target.get_submodule(table_name), target.get_submodule(projection_name)
        weight, mapping, bias = factorize_embedding_matrix(source_state[name], table.embedding_dim)
        table.weight.copy_(weight)
        projection.weight.copy_(mapping)
        projection.bias.copy_(bias)
    copied = {name: tensor for name, tensor in source_state.items() if name not in factorized}
    missing, unexpected = target.load_state_dict(copied, strict=False)
    filled = {f"{module}.{key}" for pair in factorized.values() for module in pair
              for key in target.get_submodule(module).state_dict()}
    if unexpected or set(missing) - filled:
        raise RuntimeError(f"embeddings do not match the source: missing {missing}, unexpected {unexpected}")
    return set(source_state)
