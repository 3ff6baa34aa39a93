"""The model types, one table: what ``run_ner_compress.py --model_type NAME`` builds, and with which defaults.

```python
>>> from modeling.recipes import compress
>>> model = compress(bert, "shared_ffn", embedding_size=64)  # one shared layer and E=64: a CompressedBert*
>>> model = compress(bert, "low_rank")                       # rank 48 in every encoder dense layer
```

The script's ``--model_type`` choices, the benchmarks and the tests read ``RECIPES``. A type's settings can be
overridden and combined: the class follows the methods that end up on (one: that method's preset, whose
``model_type`` then says what the checkpoint is; several: ``CompressedBertForTokenClassification``).

One idea, one name per layer. Sharing has three because each is already stored somewhere, so none can go:

- model type (``--model_type``, the design card): ``shared_attn`` / ``shared_ffn``;
- ``share_mode`` (config field, in every checkpoint; ``from_bert``'s keyword): ``"attention"`` / ``"attention_ffn"``;
- method (``compression_methods``, in results.json and card tags): ``"shared_attention"`` / ``"shared_attention_ffn"``.

The model type maps to ``share_mode`` here only (``RECIPES``); the method is always ``"shared_" + share_mode``, formed
in one place, ``CompressedBertConfig.compression_methods``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields, replace

from torch import nn
from transformers import BertForTokenClassification

from .configuration_compressed_bert import DEFAULT_EMBEDDING_SIZE, DEFAULT_LOW_RANK_TARGETS
from .low_rank import find_target_linears
from .modeling_compressed_bert import (
    CompressedBertForTokenClassification,
    FactorizedBertForTokenClassification,
    LowRankBertForTokenClassification,
    SharedBertForTokenClassification,
)
from .shared_layers import DEFAULT_SHARE_DELTA_INIT, DEFAULT_SHARE_INIT
from .student import build_student

logger = logging.getLogger(__name__)

# The rank of the best measured recipe at 5x or more: best_low_rank_long (docs/results.md, run 1, "Targets";
# results/history/run1/RESULTS.md: E=128, every encoder dense layer at rank 48, 5.22x, 95.9% of the teacher's test F1).
DEFAULT_RANK = 48
DEFAULT_STUDENT_LAYERS = 3  # half of MiniLM's 6, as DistilBERT halves BERT

PRESETS = {cls.config_class.preset_method: cls for cls in (
    FactorizedBertForTokenClassification, SharedBertForTokenClassification, LowRankBertForTokenClassification)}


@dataclass(frozen=True)
class CompressionSettings:
    """Everything a model type is built with: ``from_bert``'s keywords, and the student's shape."""

    embedding_size: int | None = None
    position_embedding_size: int | None = None
    share_mode: str | None = None
    share_init: str = DEFAULT_SHARE_INIT
    num_shared_groups: int = 1
    share_delta_rank: int = 0
    share_delta_init: str = DEFAULT_SHARE_DELTA_INIT
    rank: int | None = None
    rank_energy: float | None = None
    target_modules: tuple[str, ...] | list[str] | str = DEFAULT_LOW_RANK_TARGETS
    student_num_layers: int = DEFAULT_STUDENT_LAYERS  # --model_type student only
    student_hidden_size: int | None = None  # --model_type student only; None keeps the teacher's width

    @property
    def methods(self) -> list[str]:
        """The methods these settings turn on, as the presets name them (``preset_method``)."""
        on = {"factorized_embeddings": self.embedding_size is not None or self.position_embedding_size is not None,
              "shared_layers": self.share_mode is not None,
              "low_rank": self.rank is not None or self.rank_energy is not None}
        return [method for method, is_on in on.items() if is_on]

    @property
    def model_class(self) -> type[CompressedBertForTokenClassification] | None:
        """The class that holds these methods: one method's preset, the composed class, or None (no compression)."""
        methods = self.methods
        if len(methods) > 1 or self.embedding_size is None and self.position_embedding_size is not None:
            # (factorized positions alone: the factorized preset would also factorize the word table, at E=128)
            return CompressedBertForTokenClassification
        return PRESETS[methods[0]] if methods else None

    def from_bert_kwargs(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("student_")}


@dataclass(frozen=True)
class Recipe:
    """One model type: its settings and the class they build (``model_class``)."""

    settings: CompressionSettings
    summary: str  # one line for --help
    student: bool = False  # built from the teacher's evenly spaced layers (build_student) before anything else

    @property
    def model_class(self) -> type[nn.Module]:
        return self.settings.model_class or BertForTokenClassification


RECIPES = {
    "finetune": Recipe(CompressionSettings(), "fine-tune the source BERT as it is (no compression: the teacher)"),
    "factorized": Recipe(CompressionSettings(embedding_size=DEFAULT_EMBEDDING_SIZE),
                         f"V×E word table plus E×H projection (E={DEFAULT_EMBEDDING_SIZE})"),
    "shared_attn": Recipe(CompressionSettings(share_mode="attention"),
                          "shared attention: one attention block serves every layer"),
    "shared_ffn": Recipe(CompressionSettings(share_mode="attention_ffn"),
                         "shared layer: one whole layer (attention + FFN) serves every layer; bare, the 5x recipe"),
    "low_rank": Recipe(CompressionSettings(rank=DEFAULT_RANK),
                       f"encoder dense layers as SVD low-rank pairs (rank {DEFAULT_RANK})"),
    "student": Recipe(CompressionSettings(), f"{DEFAULT_STUDENT_LAYERS} of the teacher's layers, distilled",
                      student=True),
}
MODEL_TYPES = tuple(RECIPES)
# Spellings that stay readable: "teacher" was the name of "finetune" (in old results.json files and commands).
MODEL_TYPE_ALIASES = {"teacher": "finetune"}
# The one user-facing name of each stored spelling (model type, config share_mode, results/card method).
DISPLAY_NAMES = {
    "finetune": "fine-tuned (no compression)", "teacher": "fine-tuned (no compression)",
    "shared_attn": "shared attention", "attention": "shared attention", "shared_attention": "shared attention",
    "shared_ffn": "shared layer", "attention_ffn": "shared layer", "shared_attention_ffn": "shared layer",
    "factorized": "factorized embeddings", "factorized_embeddings": "factorized embeddings",
    "factorized_positions": "factorized positions", "layer_groups": "layer groups",
    "relaxed_sharing": "relaxed sharing", "low_rank": "low-rank layers", "student": "fewer layers (student)",
}


def canonical_model_type(model_type: str) -> str:
    """The model type's current name (``teacher`` reads as ``finetune``)."""
    return MODEL_TYPE_ALIASES.get(model_type, model_type)


def display_name(stored: str) -> str:
    """The user-facing name of a model type, share mode or method, however it was stored."""
    return DISPLAY_NAMES.get(stored, stored.replace("_", " "))


# ----------------------------------------------------------------------------------------------------------------
# Named recipes: the measured best rows, as settings the script applies (explicit flags override them)


@dataclass(frozen=True)
class TrainingRecipe:
    """The training settings a recipe was measured with (run_ner_compress.py flags of the same names)."""

    learning_rate: float
    num_train_epochs: float = 4.0
    hidden_loss_weight: float = 1.0
    temperature: float = 2.0
    alpha: float = 0.5
    transfer_ratio: float = 1.0  # with --transfer_file: transfer sentences per labelled one
    # Labelled sentences per step; with a transfer set the batch also holds transfer_ratio times as many transfer
    # sentences (per_device_train_batch_size = 32 * (1 + ratio)), so an epoch has the same steps.
    labelled_batch_size: int = 32


# The teacher recipe of every results table (4 epochs at lr 1e-4, batch 32): what a teacher fine-tuned first uses.
FINETUNE_TRAINING = TrainingRecipe(learning_rate=1e-4, hidden_loss_weight=0.0)
# Chosen on validation with every row (eval and checkpoint each epoch, the best epoch kept).
SELECTION_FLAGS = {"eval_strategy": "epoch", "save_strategy": "epoch", "save_total_limit": 1,
                   "load_best_model_at_end": True, "metric_for_best_model": "f1"}


@dataclass(frozen=True)
class NamedRecipe:
    """One measured row, as the settings ``--recipe NAME`` applies: a model type, its compression flags, the
    training it was measured with, and where it was measured."""

    description: str  # one line for --help and the plan table
    model_type: str
    compression: dict = field(default_factory=dict)  # CompressionArguments flag -> value
    training: TrainingRecipe = FINETUNE_TRAINING
    measured: str = ""  # the row, its source shape, ratio and test retention
    results: str = ""  # the results folder that measured it

    def flags(self) -> dict:
        """Every run_ner_compress.py flag the recipe sets, by name (``labelled_batch_size`` is not a flag: the
        script turns it into --per_device_train_batch_size)."""
        return {"model_type": self.model_type, **self.compression, **asdict(self.training)}


NAMED_RECIPES = {
    "5x": NamedRecipe(
        "one shared layer (attention + FFN), E=64 word table, KD + hidden-state MSE",
        "shared_ffn", {"embedding_size": 64}, TrainingRecipe(learning_rate=2e-4),
        "best_shared_tr: MiniLM teacher (6 x 384), 5.71x, test F1 97.9% of the teacher (with the transfer set)",
        "results/gpu_h100/run3/best_shared_tr"),
    "10x": NamedRecipe(
        "two shared rank-120 layers, E=32, positions at 16, student word table pruned, KD + hidden-state MSE",
        "shared_ffn", {"num_shared_groups": 2, "embedding_size": 32, "prune_student_vocab": True, "rank": 120,
                       "position_embedding_size": 16}, TrainingRecipe(learning_rate=1e-3),
        "best10_shared_pos_hlr_tr: MiniLM teacher (6 x 384), 10.20x, test F1 96.4% / 96.9% of the teacher "
        "(seeds 42 / 43, with the transfer set)",
        "results/cpu_full/best10_shared_pos_hlr_tr"),
}
# The design card's bare command (--model_type shared_ffn and nothing else) is this recipe.
BARE_RECIPE = {"shared_ffn": "5x"}


def settings_for(model_type: str, **overrides) -> CompressionSettings:
    """The recipe's settings with ``overrides``; an override of None keeps the default (a flag not given), and
    ``rank_energy`` replaces a default rank."""
    model_type = canonical_model_type(model_type)
    if model_type not in RECIPES:
        raise ValueError(f"model_type={model_type!r} is not one of {MODEL_TYPES}")
    given = {name: value for name, value in overrides.items() if value is not None}
    if "rank_energy" in given:
        given.setdefault("rank", None)
    return replace(RECIPES[model_type].settings, **given)


def compress(bert: nn.Module, model_type: str, **overrides) -> nn.Module:
    """``model_type`` built from a fine-tuned or pretrained BERT with its recipe's settings and ``overrides``.

    ``teacher`` without overrides returns ``bert`` itself. The default rank of ``low_rank`` shrinks, with a
    warning, where it would save nothing (a tiny model); a rank given as an override is used as it is.
    """
    settings = settings_for(model_type, **overrides)
    if RECIPES[canonical_model_type(model_type)].student:
        bert = build_student(bert, settings.student_num_layers, settings.student_hidden_size)
    if settings.rank is not None and overrides.get("rank") is None:
        settings = replace(settings, rank=fit_rank(bert, settings.rank, settings.target_modules))
    model_class = settings.model_class
    return bert if model_class is None else model_class.from_bert(bert, **settings.from_bert_kwargs())


def fit_rank(bert: nn.Module, rank: int, target_modules) -> int:
    """``rank``, or the largest rank that still saves parameters in every target layer when ``rank`` would not."""
    layers = find_target_linears(getattr(bert, "bert", bert), target_modules).values()
    # r * (in + out) < in * out: the pair is smaller than the dense layer
    saving = min((m.in_features * m.out_features - 1) // (m.in_features + m.out_features) for m in layers)
    if rank <= saving:
        return rank
    logger.warning("the default rank %d saves nothing in layers this small: rank %d instead", rank, max(saving, 1))
    return max(saving, 1)
