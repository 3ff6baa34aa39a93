"""Every check of a run that needs no weights and no data, in the order ``check_run`` takes them.

Each flag's own bounds and choices are declared beside it (``cli.arguments``, ``runtime.fields``) and checked as the
arguments are built; here are the checks across flags (a recipe or budget against the sizes it sets, sharing flags
without sharing, pruning flags without pruning), the paths and configs (``cli.sources``), and the compression
flags against the source's shape, on the meta device. ``check_run`` also fills what depends on other flags (the
recipe's settings, the quickstart's paths, the output folder).
"""

from __future__ import annotations

import copy
import logging
import os

import torch
from transformers import BertForTokenClassification

from modeling import minilm_path, recipes
from modeling.configuration_compressed_bert import SettingError, check_compression_settings
from trainers.demo_data import DEMO_DIR

from .arguments import ModelArguments, RunArguments, distils_by_default, flag_error
from .budget import apply_recipe
from .sources import validate_run
from .steps import compress_source


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
    configs = validate_run(args.model, args.compression, args.data, args.training)  # paths, Hub, configs, teacher
    check_sharing_fits(args.model, args.compression, configs)
    check_compression_fits(args, configs)
    if args.transfer.requested:  # the transfer set is labelled by a teacher (a --model_type student trains one)
        if not (args.model.teacher_name_or_path or distils_by_default(args)):
            raise ValueError("--transfer_file needs a teacher, which labels the transfer set: drop "
                             f"{'--no_distill' if args.model.no_distill else '--model_type finetune'}")
        if args.training.alpha == 1:
            raise ValueError("--transfer_file with --alpha 1: the KL term, all a transfer sentence gives, has weight 0")


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
    for flag in ("share_delta_rank", "num_shared_groups", "share_init", "share_delta_init"):
        value, plain = getattr(compression_args, flag), getattr(recipes.CompressionSettings, flag)
        if value != plain and recipes.settings_for(model_args.model_type).share_mode is None:
            raise ValueError(f"--{flag} {value} needs a sharing type: --model_type shared_attn or shared_ffn")
    if compression_args.prune_student_vocab and not data_args.train_file and (
            data_args.validation_file or data_args.test_file):  # local files replace the dataset's splits
        raise ValueError("--prune_student_vocab needs a training split: the rows kept are its pieces (--train_file)")


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


def check_sharing_fits(model_args, compression_args, configs: dict) -> None:
    """Groups and correction ranks against the source's layer count and widths, from its config alone (no weights
    loaded), with the limits the model config itself enforces. ``configs``: ``validate_run``'s, by flag."""
    share_mode = recipes.settings_for(model_args.model_type).share_mode
    if share_mode is None or "--model_name_or_path" not in configs:
        return
    config = copy.copy(configs["--model_name_or_path"])
    for name, value in (("embedding_size", None), ("share_mode", share_mode), ("low_rank_ranks", None),
                        ("num_shared_groups", compression_args.num_shared_groups),
                        ("share_delta_rank", compression_args.share_delta_rank),
                        ("share_delta_init", compression_args.share_delta_init)):
        setattr(config, name, value)
    try:
        check_compression_settings(config)
    except SettingError as err:
        raise flag_error(err) from None


def check_compression_fits(args: RunArguments, configs: dict) -> None:
    """The compression flags against the source's shape before any data or weights load: the model is built on the
    meta device from the source's config (every module and shape, no weights, no arithmetic), so each limit of the
    model code (E, ranks, target modules, groups, the layer a share starts from) fails here in one line. A budget's
    sizes are planned later, from the training split, by a planner that only plans models that build.
    ``configs``: ``validate_run``'s, by flag."""
    model = args.model
    if model.model_type == "finetune" or model.target_ratio is not None or model.target_params is not None:
        return
    student = model.model_type == "student" and model.teacher_name_or_path
    config = copy.copy(configs["--teacher_name_or_path" if student else "--model_name_or_path"])
    if config.model_type != "bert":  # a compressed teacher of a chain: its student is checked as it is built
        return
    logging.disable(logging.WARNING)  # the build's own lines (layers replaced, ranks shrunk) come at the real one
    try:
        with torch.device("meta"):
            compress_source(BertForTokenClassification(config), model.model_type, copy.copy(args.compression),
                            args.recipe_set)
    finally:
        logging.disable(logging.NOTSET)
