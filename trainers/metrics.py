"""Entity-level NER metrics from seqeval: micro precision/recall/F1 in default and strict IOB2 mode."""

from __future__ import annotations

import numpy as np
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2


def entity_scores(true_tags: list[list[str]], pred_tags: list[list[str]]) -> dict:
    """Micro-averaged entity scores, both seqeval modes, plus F1 per entity type (default mode).

    ``f1`` is seqeval's default (conlleval-compatible) mode; ``strict_f1`` only counts well-formed IOB2 spans.
    """
    scores = {
        "precision": precision_score(true_tags, pred_tags),
        "recall": recall_score(true_tags, pred_tags),
        "f1": f1_score(true_tags, pred_tags),
        "strict_precision": precision_score(true_tags, pred_tags, mode="strict", scheme=IOB2),
        "strict_recall": recall_score(true_tags, pred_tags, mode="strict", scheme=IOB2),
        "strict_f1": f1_score(true_tags, pred_tags, mode="strict", scheme=IOB2),
    }
    report = classification_report(true_tags, pred_tags, output_dict=True, zero_division=0)
    for entity_type, row in report.items():
        if not entity_type.endswith("avg"):
            scores[f"{entity_type}_f1"] = row["f1-score"]
    return {name: float(value) for name, value in scores.items()}


def tags_from_logits(logits: np.ndarray, labels: np.ndarray, id2label: dict) -> tuple[list, list]:
    """Keep the positions whose label is not -100 (first subwords) and map ids to tag strings."""
    predictions = np.argmax(logits, axis=-1)
    true_tags, pred_tags = [], []
    for pred_row, label_row in zip(predictions, labels):
        keep = label_row != -100
        true_tags.append([id2label[int(i)] for i in label_row[keep]])
        pred_tags.append([id2label[int(i)] for i in pred_row[keep]])
    return true_tags, pred_tags


def build_compute_metrics(id2label: dict):
    """A ``compute_metrics`` for the Trainer."""

    def compute_metrics(eval_prediction):
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(logits, tuple):
            logits = logits[0]
        return entity_scores(*tags_from_logits(logits, labels, id2label))

    return compute_metrics
