"""The steps of a run, in the order ``run_ner_compress.run`` takes them: data and labels, the phases, the teacher
(found, or fine-tuned first), tokenizer and model, the trainer, training, and the saved outputs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, replace

import torch
import transformers
from transformers import AutoConfig, AutoTokenizer, DataCollatorForTokenClassification, Trainer

from export.evaluate_variants import run_post_training
from export.vocab_pruning import corpus_vocabulary, prune_vocabulary
from hub_cards import detect_dataset_hub_id, write_model_card
from modeling import count_unique_parameters, load_bert, model_labels, recipes, token_classification_labels
from modeling.configuration_compressed_bert import SettingError
from trainers import DistillationTrainer, default_layer_matches
from trainers.deadline import DeadlineCallback
from trainers.distillation import load_teacher
from trainers.guards import NonFiniteGuard
from trainers.metrics import build_compute_metrics
from trainers.ner_data import check_known_tags, load_ner_splits
from trainers.results import Deployment, RunResults
from trainers.transfer import TransferArguments, prepare_transfer

from .arguments import (CompressionArguments, ModelArguments, PostTrainingArguments, RunArguments,
                        RunTrainingArguments, distils_by_default, flag_error)
from .quickstart import print_quickstart_summary
from .run_folder import last_complete_checkpoint, make_readable, remove_checkpoints, save_final_model

logger = logging.getLogger("run_ner_compress")


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


def default_teacher(args: RunArguments) -> str | None:
    """The teacher's folder: --teacher_name_or_path; else (unless --no_distill) the source itself when it holds a
    fine-tuned NER head (its labels were checked by load_data); else ``<output_dir>/teacher``, where
    ``teacher_fine_tuning`` fine-tunes one first (or a previous run already did)."""
    model_args = args.model
    if model_args.teacher_name_or_path or not distils_by_default(args):
        return model_args.teacher_name_or_path
    if token_classification_labels(model_args.model_name_or_path, "--model_name_or_path", model_args.cache_dir):
        logger.info("distilling from --model_name_or_path %s (it holds a fine-tuned NER head)",
                    model_args.model_name_or_path)
        return model_args.model_name_or_path
    return os.path.join(args.training.output_dir, "teacher")


def teacher_fine_tuning(args: RunArguments, path: str | None) -> RunArguments | None:
    """The run that fine-tunes ``--model_name_or_path`` into the default teacher folder ``path``, with the teacher
    recipe (each setting unless given); None when there is nothing to fine-tune (no teacher, a given or found one,
    or the teacher a previous run finished there)."""
    if path is None or path in (args.model.teacher_name_or_path, args.model.model_name_or_path):
        return None  # given, or the source's own head
    if os.path.isfile(os.path.join(path, "results.json")):
        logger.info("reusing the teacher in %s", path)
        return None
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
    return teacher


def prepare_teacher(args: RunArguments, path: str | None, label_list: list[str]) -> torch.nn.Module | None:
    """The teacher in ``path`` (from ``default_teacher``), loaded. A model compressed from a base model is then
    built from the teacher fine-tuned first, as the recipes were measured."""
    model_args = args.model
    if path is None:
        return None
    fine_tuned_first = path != model_args.teacher_name_or_path and path != model_args.model_name_or_path
    if fine_tuned_first and model_args.model_type != "student":  # a student is built from its teacher anyway
        model_args.model_name_or_path = path
    if model_args.model_type == "student":
        kind = AutoConfig.from_pretrained(path, cache_dir=model_args.cache_dir).model_type
        if kind != "bert":
            raise ValueError(f"--teacher_name_or_path {path}: a --model_type student is built from its teacher's "
                             f"layers, which needs a BERT, not a {kind!r} model")
    return load_teacher(path, "--teacher_name_or_path", label_list, model_args.cache_dir)


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
    except SettingError as err:  # the model code's limit, as the flag the user typed
        if err.setting not in settings:
            raise
        raise flag_error(err) from None


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

