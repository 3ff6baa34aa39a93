"""Compact students for distillation.

A student is a plain ``BertForTokenClassification`` with fewer layers (and optionally a smaller hidden size).
With the teacher's width, it starts from the teacher: embeddings, head and evenly spaced layers, as DistilBERT
took every other layer. The spacing keeps the first and the last layer: 6 -> 3 takes layers 0, 3, 5.
"""

from __future__ import annotations

import logging

from transformers import BertConfig, BertForTokenClassification

from .configuration_compressed_bert import SettingError, source_settings

logger = logging.getLogger(__name__)


def evenly_spaced_layers(num_teacher_layers: int, num_student_layers: int) -> list[int]:
    """Indices of the teacher layers a student starts from: first and last kept, the rest evenly between."""
    if not 0 < num_student_layers <= num_teacher_layers:
        raise SettingError("student_num_layers", num_student_layers,
                           f"must be between 1 and the teacher's {num_teacher_layers} layers")
    if num_student_layers == 1:
        return [num_teacher_layers - 1]
    step = (num_teacher_layers - 1) / (num_student_layers - 1)
    return [int(i * step + 0.5) for i in range(num_student_layers)]


def build_student(teacher: BertForTokenClassification, num_layers: int, hidden_size: int | None = None,
                  intermediate_size: int | None = None) -> BertForTokenClassification:
    """A smaller BERT for token classification, initialized from ``teacher`` where the shapes allow."""
    if getattr(teacher.config, "model_type", None) != "bert":
        raise ValueError(f"the teacher must be a BERT, got model_type={getattr(teacher.config, 'model_type', None)!r}")
    layers = evenly_spaced_layers(teacher.config.num_hidden_layers, num_layers)
    settings = source_settings(teacher.config)
    settings["num_hidden_layers"] = num_layers
    same_width = hidden_size in (None, teacher.config.hidden_size) and intermediate_size in (
        None, teacher.config.intermediate_size)
    if hidden_size not in (None, teacher.config.hidden_size):
        settings["hidden_size"] = hidden_size
        # BERT's 4x ratio, not the teacher's intermediate_size: a narrower student gets a narrower FFN too.
        settings["intermediate_size"] = intermediate_size or 4 * hidden_size
    elif intermediate_size is not None:
        settings["intermediate_size"] = intermediate_size
    student = BertForTokenClassification(BertConfig(**settings))
    if not same_width:
        logger.warning("student width differs from the teacher's: it starts from random weights")
        return student
    student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
    for own, index in zip(student.bert.encoder.layer, layers):
        own.load_state_dict(teacher.bert.encoder.layer[index].state_dict())
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    logger.info("student starts from teacher layers %s", layers)
    return student
