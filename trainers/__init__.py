"""Training for compressed NER models: data, metrics and the DistillationTrainer."""

from .distillation import (
    DistillationArguments,
    DistillationTrainer,
    LayerMatch,
    default_layer_matches,
    distillation_kl,
    masked_kl,
)
from .metrics import build_compute_metrics, entity_scores
from .ner_data import NerDataError, iob1_to_iob2, load_ner_splits, read_conll, read_jsonl, tokenize_and_align
from .transfer import (
    TransferArguments,
    TransferCollator,
    TransferEpochCallback,
    TransferMixDataset,
    TransferPool,
    load_or_build_targets,
    read_transfer_sentences,
    select_sentences,
)
