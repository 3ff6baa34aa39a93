"""A word table with fewer rows than token ids: every id is looked up through a stored id→row index.

Vocabulary pruning that keeps the tokenizer as it is (``export.vocab_pruning``, ``unseen="nearest"``) keeps K of
the V rows and sends each dropped id to a kept row. Tokenizer files hold one id per piece, so the many-to-one map
lives in the model: a persistent int32 buffer ``token_index`` of V entries (4·V bytes on disk, 122 KB for BERT's
30,522 pieces). It is a buffer, not a parameter: it is never trained and not counted as a parameter.
"""

from __future__ import annotations

import torch
from torch import nn


class IndexedEmbedding(nn.Embedding):
    """An ``nn.Embedding`` of ``num_rows`` rows whose forward takes token ids ``0..num_tokens-1``:
    ``embedding(ids) = weight[token_index[ids]]``.

    ``padding_idx`` stays None: the padding token's row is known only once ``token_index`` is loaded, and its
    gradient does not matter for a tagger whose padded positions carry no label.

    Example:
    ```python
    >>> table = IndexedEmbedding.from_rows(weight[kept_ids], token_index)  # (K, H) rows, (V,) row of every id
    >>> table(torch.tensor([[101, 2023, 102]]))  # (1, 3, H)
    ```
    """

    def __init__(self, num_tokens: int, num_rows: int, embedding_dim: int, **kwargs):
        if not 0 < num_rows <= num_tokens:
            raise ValueError(f"num_rows={num_rows} must be between 1 and num_tokens={num_tokens}")
        super().__init__(num_rows, embedding_dim, **kwargs)
        self.num_tokens = num_tokens
        # a placeholder until the saved index is loaded: the first K ids keep their own rows
        index = torch.arange(num_tokens, dtype=torch.int32).clamp_(max=num_rows - 1)
        self.register_buffer("token_index", index.to(self.weight.device), persistent=True)  # (V,)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(self.token_index[input_ids])  # (B, T) ids -> (B, T) rows -> (B, T, dim)

    @classmethod
    @torch.no_grad()
    def from_rows(cls, weight: torch.Tensor, token_index: torch.Tensor) -> "IndexedEmbedding":
        """The table of ``weight`` (K, dim) with ``token_index`` (V,) naming each id's row (each in 0..K-1)."""
        (num_rows, dim), (num_tokens,) = weight.shape, token_index.shape
        if not 0 <= int(token_index.min()) <= int(token_index.max()) < num_rows:
            raise ValueError(f"token_index holds rows outside 0..{num_rows - 1}")
        table = cls(num_tokens, num_rows, dim, device=weight.device, dtype=weight.dtype)
        table.weight.copy_(weight)
        table.token_index.copy_(token_index)
        return table

    def extra_repr(self) -> str:
        return f"num_tokens={self.num_tokens}, " + super().extra_repr()


def index_word_embeddings(embeddings: nn.Module, num_rows: int) -> None:
    """Replace the ``word_embeddings`` of a BERT embedding module (V×H, or the V×E table of factorized
    embeddings) by an ``IndexedEmbedding`` of ``num_rows`` rows over the same V ids; its weights are to be loaded."""
    table = embeddings.word_embeddings
    embeddings.word_embeddings = IndexedEmbedding(table.num_embeddings, num_rows, table.embedding_dim,
                                                  device=table.weight.device, dtype=table.weight.dtype)
