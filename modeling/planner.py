"""The budget planner: compression settings for a source BERT's shape so that its unique parameters land at, or
just past, a target ratio (or count).

```python
>>> from modeling import planner
>>> plan = planner.plan(bert.config, target_ratio=10, embedding_rows=16000)   # typed settings, no weights
>>> print(plan.table())
>>> model = planner.compress_to(bert, target_ratio=10)                         # plan, then recipes.compress
```

Every count is of the real model: the planned model is built on the meta device (exact modules and shapes, no
memory) and counted as ``count_unique_parameters`` counts the trained one.

The rules come from the measured rows behind ``recipes.NAMED_RECIPES`` (results/README.md lists them):

1. Always the sharing family: whole layers (attention + FFN) shared within groups, distilled with the hidden-state
   MSE. The position table factorized at 16 (free: at the teacher it moved validation F1 by +0.14 points).
2. Stage ``shared`` (the 5x recipe's kind): full-rank shared layers, the most groups that still leave the word
   table its E >= 32, then E as large as the budget allows. The 5x recipe's training settings.
3. Stage ``grouped low rank`` (the 10x recipe's kind): two groups, E=32, the student's word table pruned to the
   training split's pieces (when their count is known), every shared dense layer low rank with the largest rank
   that fits, down to 32. The 10x recipe's training settings (lr 1e-3, chosen on validation for this student).
4. Stage ``one low-rank layer``: the same with one group, E 32 then 16, rank down to 8.

Ranks and embedding sizes are multiples of 8. Never planned, because they did not pay where measured: relaxed
sharing (``share_delta_rank``), the ``mean`` start, ``rank_energy``, attention-only sharing, and low rank without
sharing (``low_rank``).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass

import torch

from .configuration_compressed_bert import DEFAULT_LOW_RANK_TARGETS, CompressedBertConfig, source_settings
from .indexed_embedding import index_word_embeddings
from .low_rank import replace_with_low_rank, resolve_ranks
from .modeling_compressed_bert import CompressedBertForTokenClassification
from .parameters import count_unique_parameters
from .recipes import NAMED_RECIPES, TrainingRecipe, compress

STEP = 8  # ranks and embedding sizes are multiples of 8
POSITION_EMBEDDING_SIZE = 16  # free at the teacher (validation 0.8721 -> 0.8735 on the CPU's MiniLM teacher)
MIN_SHARED_E = 32  # the smallest E measured in a recipe (the 10x recipe's)
LOW_RANK_E = (32, 16)  # E of the low-rank stages, largest first
MIN_GROUPED_RANK = 32  # below it, one group at twice the rank costs the same
MIN_RANK = 8


@dataclass(frozen=True)
class Plan:
    """Settings planned for one source shape and budget: what ``run_ner_compress.py`` and ``compress`` take."""

    stage: str  # which rule of the module docstring chose them
    num_shared_groups: int
    embedding_size: int | None
    position_embedding_size: int | None
    rank: int | None
    prune_student_vocab: bool
    embedding_rows: int | None  # the word table's rows after --prune_student_vocab (None: one per token id)
    training: TrainingRecipe
    num_parameters: int  # unique parameters of the planned model
    source_num_parameters: int
    budget: int  # at most this many unique parameters
    model_type: str = "shared_ffn"

    @property
    def ratio(self) -> float:
        return self.source_num_parameters / self.num_parameters

    def compression_settings(self) -> dict:
        """Keywords of ``recipes.compress(bert, self.model_type, ...)`` (vocabulary pruning is applied after)."""
        return dict(num_shared_groups=self.num_shared_groups, embedding_size=self.embedding_size,
                    position_embedding_size=self.position_embedding_size, rank=self.rank)

    def flags(self) -> dict:
        """The run_ner_compress.py flags this plan sets, by flag name (values as the dataclasses hold them)."""
        return {"model_type": self.model_type, **self.compression_settings(),
                "prune_student_vocab": self.prune_student_vocab, **asdict(self.training)}

    def to_dict(self) -> dict:
        return {"stage": self.stage, **self.flags(), "embedding_rows": self.embedding_rows,
                "num_parameters": self.num_parameters, "source_num_parameters": self.source_num_parameters,
                "budget": self.budget, "ratio": round(self.ratio, 3)}

    def table(self, title: str = "plan") -> str:
        """A short two-column table of the settings, for the log before training."""
        rows = [("stage", self.stage), ("model_type", self.model_type),
                ("num_shared_groups", self.num_shared_groups),
                ("embedding_size", self.embedding_size or "full"),
                ("position_embedding_size", self.position_embedding_size or "full"),
                ("rank", self.rank or "full"),
                ("prune_student_vocab", f"yes ({self.embedding_rows:,} rows)" if self.prune_student_vocab else "no"),
                *((name, value) for name, value in asdict(self.training).items()),
                ("unique parameters", f"{self.num_parameters:,} (budget {self.budget:,})"),
                ("compression", f"{self.ratio:.2f}x of {self.source_num_parameters:,}")]
        width = max(len(name) for name, _ in rows)
        return "\n".join([title] + [f"  {name:<{width}}  {value}" for name, value in rows])


class BudgetError(ValueError):
    """No setting of the planner reaches the budget; the message names the smallest reachable ratio."""


def source_parameters(config, num_labels: int | None = None) -> int:
    """Unique parameters of a BertForTokenClassification of this shape (the fine-tuned source)."""
    from transformers import BertConfig, BertForTokenClassification

    settings = {k: v for k, v in source_settings(config).items() if k in BertConfig().to_dict()}
    shape = BertConfig(**settings)
    if num_labels is not None:
        shape.num_labels = num_labels
    with torch.device("meta"):
        return count_unique_parameters(BertForTokenClassification(shape))


def planned_parameters(config, *, num_shared_groups: int, embedding_size: int | None,
                       position_embedding_size: int | None, rank: int | None, embedding_rows: int | None = None,
                       num_labels: int | None = None) -> int:
    """Unique parameters of the sharing-family model with these settings (built on the meta device)."""
    settings = {k: v for k, v in source_settings(config).items() if k in CompressedBertConfig().to_dict()}
    settings.update(embedding_size=embedding_size, position_embedding_size=position_embedding_size,
                    share_mode="attention_ffn", num_shared_groups=num_shared_groups, share_delta_rank=0,
                    low_rank_ranks=None, embedding_rows=None)
    if num_labels is not None:
        settings.update(num_labels=num_labels, id2label={i: f"LABEL_{i}" for i in range(num_labels)},
                        label2id={f"LABEL_{i}": i for i in range(num_labels)})
    with torch.device("meta"), _quiet("modeling.low_rank"):  # the planner builds many: no line per build
        model = CompressedBertForTokenClassification(CompressedBertConfig(**settings))
        if rank is not None:
            replace_with_low_rank(model.bert, resolve_ranks(model.bert, DEFAULT_LOW_RANK_TARGETS, rank=rank),
                                  from_weights=False)
        if embedding_rows is not None:
            index_word_embeddings(model.bert.embeddings, embedding_rows)
    return count_unique_parameters(model)


class _quiet:
    def __init__(self, name: str):
        self.logger = logging.getLogger(name)

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.WARNING)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def _saving_rank(config) -> int:
    """The largest rank (a multiple of STEP) at which every encoder dense layer's pair is smaller than the layer."""
    h, i = config.hidden_size, config.intermediate_size
    limit = min((h * h - 1) // (2 * h), (h * i - 1) // (h + i))
    return limit // STEP * STEP


def _largest(low: int, high: int, fits) -> int | None:
    """The largest multiple of STEP in [low, high] for which ``fits`` holds (monotone: fits at v implies below)."""
    low, high = -(-low // STEP) * STEP, high // STEP * STEP
    if low > high or not fits(low):
        return None
    while low < high:  # binary search on the multiples of STEP
        middle = (low + high + STEP) // (2 * STEP) * STEP
        low, high = (middle, high) if fits(middle) else (low, middle - STEP)
    return low


def _candidates(config, embedding_rows: int | None):
    """(stage, groups, E, position E, rank range or None, pruned) in the planner's order of preference."""
    n, h = config.num_hidden_layers, config.hidden_size
    positions = POSITION_EMBEDDING_SIZE if POSITION_EMBEDDING_SIZE < h else None
    for groups in sorted((g for g in range(1, n // 2 + 1) if n % g == 0), reverse=True):
        yield "shared", groups, (MIN_SHARED_E, h - 1), positions, None, False
    pruned = embedding_rows is not None
    top = _saving_rank(config)
    if 2 <= n and n % 2 == 0:
        yield "grouped low rank", 2, LOW_RANK_E[0], positions, (MIN_GROUPED_RANK, top), pruned
    for e in LOW_RANK_E:
        yield "one low-rank layer", 1, e, positions, (MIN_RANK, top), pruned


def plan(config, target_ratio: float | None = None, target_params: int | None = None,
         embedding_rows: int | None = None, num_labels: int | None = None) -> Plan:
    """The planner's settings for a source of this config's shape: unique parameters at most the budget
    (``source / target_ratio``, or ``target_params``), and as close to it as the rules allow.

    ``embedding_rows``: the rows --prune_student_vocab would keep (the training split's pieces); None plans
    without pruning. Raises ``BudgetError`` naming the smallest reachable ratio when nothing fits.
    """
    if (target_ratio is None) == (target_params is None):
        raise ValueError("give exactly one of target_ratio and target_params")
    source = source_parameters(config, num_labels)
    if target_ratio is not None:
        if not (isinstance(target_ratio, (int, float)) and math.isfinite(target_ratio) and target_ratio > 1):
            raise ValueError(f"target_ratio={target_ratio!r} must be a finite number above 1")
        budget = math.floor(source / target_ratio)
    else:
        if not (isinstance(target_params, int) and 0 < target_params < source):
            raise ValueError(f"target_params={target_params!r} must be a whole number between 1 and the source's "
                             f"{source:,} unique parameters")
        budget = target_params
    h = config.hidden_size

    def count(groups, e, pos, rank, pruned):
        return planned_parameters(config, num_shared_groups=groups, embedding_size=e, position_embedding_size=pos,
                                  rank=rank, embedding_rows=embedding_rows if pruned else None,
                                  num_labels=num_labels)

    for stage, groups, e, pos, ranks, pruned in _candidates(config, embedding_rows):
        if ranks is None:  # full-rank layers; fill the budget with E
            e = _largest(*e, lambda v: count(groups, v, pos, None, pruned) <= budget)
            rank = None
        else:  # E fixed; fill the budget with the rank
            if e >= h:
                continue
            rank = _largest(*ranks, lambda v: count(groups, e, pos, v, pruned) <= budget)
        if e is None or (ranks is not None and rank is None):
            continue
        recipe = NAMED_RECIPES["5x" if ranks is None else "10x"]
        return Plan(stage=stage, num_shared_groups=groups, embedding_size=e, position_embedding_size=pos, rank=rank,
                    prune_student_vocab=pruned, embedding_rows=embedding_rows if pruned else None,
                    training=recipe.training, num_parameters=count(groups, e, pos, rank, pruned),
                    source_num_parameters=source, budget=budget)
    smallest = smallest_plan_parameters(config, embedding_rows, num_labels)
    raise BudgetError(f"the smallest model the planner reaches for this source has {smallest:,} unique parameters "
                      f"({source / smallest:.2f}x of {source:,}); the budget is {budget:,}")


def smallest_plan_parameters(config, embedding_rows: int | None = None, num_labels: int | None = None) -> int:
    """Unique parameters of the planner's most compressed setting (its last stage at its smallest)."""
    h = config.hidden_size
    e = min(LOW_RANK_E[-1], h - 1) // STEP * STEP or None
    positions = POSITION_EMBEDDING_SIZE if POSITION_EMBEDDING_SIZE < h else None
    return planned_parameters(config, num_shared_groups=1, embedding_size=e, position_embedding_size=positions,
                              rank=MIN_RANK if MIN_RANK < min(h, config.intermediate_size) else None,
                              embedding_rows=embedding_rows, num_labels=num_labels)


def max_ratio(config, embedding_rows: int | None = None, num_labels: int | None = None) -> float:
    """The largest compression ratio the planner can reach for this shape."""
    return source_parameters(config, num_labels) / smallest_plan_parameters(config, embedding_rows, num_labels)


def compress_to(bert, target_ratio: float | None = None, target_params: int | None = None,
                embedding_rows: int | None = None):
    """Plan for ``bert``'s shape and build the planned model (without vocabulary pruning, which needs a corpus:
    ``export.vocab_pruning.prune_vocabulary`` applies it). Returns (model, plan)."""
    config = copy.copy(bert.config)
    chosen = plan(config, target_ratio=target_ratio, target_params=target_params, embedding_rows=embedding_rows,
                  num_labels=getattr(config, "num_labels", None))
    return compress(bert, chosen.model_type, **chosen.compression_settings()), chosen
