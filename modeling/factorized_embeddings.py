"""Embedding factorization: the V×H word embedding becomes a V×E table and an E×H projection (ALBERT).

Position and token-type embeddings stay at H. The factors are initialized from a truncated SVD of the
source table, centred first so that the projection's bias carries the mean embedding:
``W ≈ 1·μᵀ + (U_E S_E) V_Eᵀ``, the best rank-E approximation of the centred table.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertEmbeddings


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


@torch.no_grad()
def factorize_embedding_matrix(weight: torch.Tensor, embedding_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a (V, H) table into a (V, E) table, a (H, E) projection weight and an (H,) bias."""
    vocab_size, hidden_size = weight.shape
    if not 0 < embedding_size < hidden_size:
        raise ValueError(f"embedding_size={embedding_size} must be between 1 and hidden_size-1 ({hidden_size - 1})")
    weight = weight.float()
    mean = weight.mean(dim=0)  # (H,)
    u, s, vh = torch.linalg.svd(weight - mean, full_matrices=False)  # (V, H), (H,), (H, H)
    table = u[:, :embedding_size] * s[:embedding_size]  # (V, E)
    projection = vh[:embedding_size].T.contiguous()  # (H, E): nn.Linear(E, H).weight
    return table.contiguous(), projection, mean


@torch.no_grad()
def load_factorized_from_embeddings(target: FactorizedBertEmbeddings, source: BertEmbeddings) -> set[str]:
    """Fill ``target`` from a BERT embedding module; returns the source parameter names it used."""
    table, projection, bias = factorize_embedding_matrix(source.word_embeddings.weight, target.word_embeddings.embedding_dim)
    target.word_embeddings.weight.copy_(table)
    target.embedding_hidden_mapping_in.weight.copy_(projection)
    target.embedding_hidden_mapping_in.bias.copy_(bias)
    kept = ["position_embeddings.weight", "token_type_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias"]
    source_state = source.state_dict()
    target.load_state_dict({name: source_state[name] for name in kept}, strict=False)
    return {"word_embeddings.weight", *kept}
