"""Entity-level metrics (trainers/metrics.py) against hand-computed numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from transformers import EvalPrediction

from trainers.metrics import build_compute_metrics, entity_scores, tags_from_logits


def scores(true_tags, pred_tags) -> dict:
    with warnings.catch_warnings():  # seqeval warns about 0/0 when a type has no prediction; that 0 is wanted
        warnings.simplefilter("ignore")
        return entity_scores(true_tags, pred_tags)


def test_precision_and_recall_differ():
    true = [["B-PER", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "O", "B-PER"]]  # PER, LOC, ORG, PER: 4 entities
    pred = [["B-PER", "O", "B-LOC", "B-MISC"], ["O", "O", "O", "O"]]  # PER ok, LOC ok, MISC wrong: 3 predicted
    result = scores(true, pred)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 4)
    assert result["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))  # 4/7
    # every span is well-formed IOB2, so strict mode agrees
    for name in ("precision", "recall", "f1"):
        assert result[f"strict_{name}"] == pytest.approx(result[name])
    assert result["PER_f1"] == pytest.approx(2 / 3)  # 1 of 1 predicted right, 1 of 2 found
    assert result["LOC_f1"] == pytest.approx(1.0)
    assert result["ORG_f1"] == 0.0
    assert result["MISC_f1"] == 0.0  # predicted only


def test_keys_and_types():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-MISC", "I-MISC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-MISC", "O"]]
    result = scores(true, pred)
    assert set(result) == {
        "precision", "recall", "f1", "strict_precision", "strict_recall", "strict_f1",
        "PER_f1", "LOC_f1", "ORG_f1", "MISC_f1",
    }
    assert all(type(value) is float for value in result.values())  # json-serializable, no numpy scalars
    # 4 true, 4 predicted, 2 right (PER, the second ORG)
    assert (result["precision"], result["recall"], result["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert result["PER_f1"] == 1.0
    assert result["ORG_f1"] == pytest.approx(2 / 3)  # precision 1/2, recall 1/1
    assert result["LOC_f1"] == 0.0 and result["MISC_f1"] == 0.0


def test_default_and_strict_mode_differ_on_a_span_opened_by_i():
    true = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["I-PER", "I-PER", "O", "B-LOC"]]
    result = scores(true, pred)
    # default (conlleval) mode reads I-PER I-PER as a PER span: both entities right
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 1.0, 1.0)
    # strict IOB2 drops the ill-formed span: 1 predicted, 1 right, 1 of 2 found
    assert result["strict_precision"] == 1.0
    assert result["strict_recall"] == pytest.approx(0.5)
    assert result["strict_f1"] == pytest.approx(2 / 3)


def test_perfect_and_empty():
    true = [["B-PER", "I-PER", "O"], ["B-LOC"]]
    assert scores(true, true)["f1"] == 1.0 and scores(true, true)["strict_f1"] == 1.0
    nothing = scores(true, [["O", "O", "O"], ["O"]])
    assert nothing["precision"] == nothing["recall"] == nothing["f1"] == 0.0
    assert nothing["PER_f1"] == nothing["LOC_f1"] == 0.0


ID2LABEL = {0: "O", 1: "B-PER", 2: "I-PER"}


def logits_for(predicted_ids: list[list[int]]) -> np.ndarray:
    ids = np.array(predicted_ids)
    return np.eye(3, dtype=np.float32)[ids] * 5.0 - 1.0  # (B, T, num_labels), the argmax at the given id


def test_tags_from_logits_drops_minus_100_positions():
    logits = logits_for([[0, 1, 2, 2, 0], [1, 0, 2, 1, 1]])
    labels = np.array([[-100, 1, -100, 2, 0], [-100, 0, -100, -100, -100]])  # [CLS], subwords, padding
    true, pred = tags_from_logits(logits, labels, ID2LABEL)
    assert true == [["B-PER", "I-PER", "O"], ["O"]]
    assert pred == [["B-PER", "I-PER", "O"], ["O"]]


def test_compute_metrics_from_an_eval_prediction():
    compute_metrics = build_compute_metrics(ID2LABEL)
    labels = np.array([[-100, 1, 2, 0, -100], [-100, 1, 0, -100, -100]])  # two PER entities
    logits = logits_for([[0, 1, 2, 0, 0], [0, 0, 0, 1, 1]])  # the first right, the second missed
    metrics = compute_metrics(EvalPrediction(predictions=(logits, None), label_ids=labels))  # a tuple, as some models
    assert metrics["precision"] == 1.0 and metrics["recall"] == 0.5
    assert metrics["f1"] == pytest.approx(2 / 3) and metrics["PER_f1"] == pytest.approx(2 / 3)
