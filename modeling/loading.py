"""Loading a BERT for token classification with a given label map (the teacher, or the model to compress).

```python
>>> labels = model_labels("outputs/teacher", "--teacher_name_or_path")
>>> teacher = load_bert("outputs/teacher", "--teacher_name_or_path", labels)
```
"""

from __future__ import annotations

import logging

import torch
from transformers import AutoConfig, AutoModelForTokenClassification, BertForTokenClassification
from transformers.utils import logging as transformers_logging

logger = logging.getLogger(__name__)


def _config(path: str, flag: str, cache_dir: str | None = None):
    try:
        return AutoConfig.from_pretrained(path, cache_dir=cache_dir)
    except OSError as err:
        raise OSError(f"{flag} {path}: cannot load a model config ({err})") from None


def _labels(config) -> list[str]:
    return [config.id2label[i] for i in range(len(config.id2label))]


def model_labels(path: str, flag: str, cache_dir: str | None = None) -> list[str]:
    """The labels of a saved model, in its own order (a fine-tuned teacher fixes the order a student uses)."""
    return _labels(_config(path, flag, cache_dir))


def token_classification_labels(path: str, flag: str, cache_dir: str | None = None) -> list[str] | None:
    """The labels of a saved model's token-classification head, or None for a base model (such as bert-base-cased,
    whose architectures name no ``...ForTokenClassification``): a fine-tuned head can be a teacher."""
    config = _config(path, flag, cache_dir)
    if not any(name.endswith("ForTokenClassification") for name in config.architectures or ()):
        return None
    return _labels(config)


def load_bert(path: str, flag: str, label_list: list[str], cache_dir: str | None = None) -> BertForTokenClassification:
    """A BertForTokenClassification with our label map; a head of another size is re-initialized.

    A fine-tuned head with the same labels in another order keeps its weights, its rows put in our order.
    ``flag`` (e.g. ``--teacher_name_or_path``) names the source in errors.
    """
    config = _config(path, flag, cache_dir)
    if config.model_type != "bert":
        raise ValueError(f"{flag} {path}: model_type is {config.model_type!r}, but a BERT is needed")
    id2label = dict(enumerate(label_list))
    # transformers' LOAD REPORT table and weight bar, on every load, become one line (a warning only when weights
    # other than the head are missing, that is, left random)
    verbosity, bar = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        model, info = AutoModelForTokenClassification.from_pretrained(
            path,
            cache_dir=cache_dir,
            num_labels=len(label_list),
            id2label=id2label,
            label2id={label: i for i, label in id2label.items()},
            ignore_mismatched_sizes=True,
            output_loading_info=True,
        )
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bar:
            transformers_logging.enable_progress_bar()
    report_loading(path, flag, info)
    own_labels = _labels(config)
    if own_labels != list(label_list) and sorted(own_labels) == sorted(label_list):
        # Loading with our id2label only renames the rows: without this, row "B-PER" would still score B-LOC
        order = [own_labels.index(label) for label in label_list]
        with torch.no_grad():
            model.classifier.weight.copy_(model.classifier.weight[order].clone())  # (num_labels, H)
            model.classifier.bias.copy_(model.classifier.bias[order].clone())
    # BERT's forward takes **kwargs, so the Trainer would pass num_items_in_batch and skip its division by the
    # gradient-accumulation steps; BERT's loss is a plain mean, so ask for the division.
    model.accepts_loss_kwargs = False
    return model


def report_loading(path: str, flag: str, info: dict) -> None:
    """One log line for what a load left new or unused (transformers' own report is a table of every key)."""
    missing = sorted(set(info.get("missing_keys") or ()) | {str(k[0] if isinstance(k, tuple) else k)
                                                             for k in info.get("mismatched_keys") or ()})
    unused = sorted(info.get("unexpected_keys") or ())
    body = [key for key in missing if not key.startswith("classifier.")]
    if body:
        logger.warning("%s %s: %d weights not in the checkpoint were left random (%s)", flag, path, len(body),
                       ", ".join(body[:3]) + (", ..." if len(body) > 3 else ""))
    elif missing:
        logger.info("%s %s: a new token-classification head for these labels (the checkpoint has none)", flag, path)
    if unused:
        logger.info("%s %s: %d checkpoint weights unused (%s)", flag, path, len(unused),
                    ", ".join(unused[:3]) + (", ..." if len(unused) > 3 else ""))
