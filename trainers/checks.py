"""Checks that run before the first training step, so bad input ends in one line naming the file, line or flag.

``validate_run`` is called once by ``run_ner_compress.py`` after parsing; the readers in ``runtime.formats`` check
the data files themselves (with ``runtime.textfiles.check_text_file``). Everything here raises ``ValueError`` or
``OSError``, which the script's ``cli()`` turns into one line and exit status 2.

```python
>>> validate_run(model_args, compression_args, data_args, training_args)  # before any model is loaded
```
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import math
import os
import socket
import types
import typing

from transformers import AutoConfig, AutoTokenizer

import modeling  # noqa: F401  (registers the compressed model types with AutoConfig)
from runtime.textfiles import check_weight_files

# [CLS], one subword and [SEP]: with fewer, no word keeps a labelled subword and the loss is NaN (0 / 0).
MIN_SEQ_LENGTH = 3
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")


class ConfigValueError(ValueError):
    """A value of a .json/.yaml config file has the wrong type: the message names the key."""


# ----------------------------------------------------------------------------------------------------------------
# Folders


def _looks_local(path: str) -> bool:
    # A Hub id is "name" or "org/name"; anything absolute, relative-dotted or home-based is meant as a local path
    return os.path.isabs(path) or path.startswith(("./", "../", "~", ".\\")) or os.path.exists(path)


def check_model_folder(path: str, flag: str, need_weights: bool = True) -> None:
    """A local ``--model_name_or_path``-like folder holds a config.json (and weights); Hub ids pass unchecked."""
    if not _looks_local(path):
        return
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{flag} {path}: no such folder")
    if not os.path.isdir(path):
        raise ValueError(f"{flag} {path}: is a file; give the folder of a saved model")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ValueError(f"{flag} {path}: the folder holds no config.json, so it is not a saved model")
    if need_weights and not any(os.path.isfile(os.path.join(path, name)) for name in WEIGHT_FILES):
        raise ValueError(f"{flag} {path}: the folder holds a config.json but no weights (model.safetensors)")


def check_hub_reachable(needs: list[tuple[str, str]], timeout: float = 3.0) -> None:
    """``needs``: (flag, name) of each model or dataset that would come from the Hub. When the Hub cannot be reached
    and a model is not in the local cache, one line says so at once (the Hub client would retry five times, about
    40 s, then bury the reason between its own lines). ``HF_HUB_OFFLINE=1`` means cached files only: no check."""
    from huggingface_hub import constants, try_to_load_from_cache
    from urllib.parse import urlparse

    if not needs or constants.HF_HUB_OFFLINE:
        return
    remote = [(flag, name) for flag, name in needs
              if flag == "--dataset_name" or not isinstance(try_to_load_from_cache(name, "config.json"), str)]
    if not remote:
        return
    endpoint = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout).close()
    except OSError as err:
        flag, name = remote[0]
        reason = err.strerror or type(err).__name__
        raise OSError(f"{flag} {name}: the Hub ({constants.ENDPOINT}) cannot be reached ({reason}) and it is not in "
                      "the local cache; give local files (a --model_name_or_path folder, --train_file ...), try "
                      "--quickstart (no Hub at all), or set HF_HUB_OFFLINE=1 to use only what is cached") from None


def check_tokenizer_folder(path: str, flag: str) -> None:
    if not _looks_local(path):
        return
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{flag} {path}: no such folder")
    if not any(os.path.isfile(os.path.join(path, name)) for name in TOKENIZER_FILES):
        raise ValueError(f"{flag} {path}: the folder holds no tokenizer (tokenizer.json or vocab.txt)")


def load_config(path: str, flag: str, cache_dir: str | None = None):
    """The model's config, or one line naming the flag (an unreadable config.json raises several kinds)."""
    try:
        return AutoConfig.from_pretrained(path, cache_dir=cache_dir)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OSError(f"{flag} {path}: cannot load a model config ({' '.join(str(err).split())})") from None


# ----------------------------------------------------------------------------------------------------------------
# Numbers


def check_finite(flag: str, value, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> None:
    """``--flag value`` is a finite number within [low, high] (``low_open``: above low); None passes."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"--{flag} {value} must be a finite number")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"--{flag} {value} must be {'>' if low_open else '>='} {low}")
    if high is not None and value > high:
        raise ValueError(f"--{flag} {value} must be <= {high}")


def check_numbers(compression_args, data_args, training_args) -> None:
    """Numeric flags that the dataclasses accept but that would train garbage (NaN, inf, negative)."""
    t = training_args
    check_finite("num_train_epochs", t.num_train_epochs, 0)
    check_finite("learning_rate", t.learning_rate, 0, low_open=True)
    check_finite("weight_decay", t.weight_decay, 0)
    check_finite("max_grad_norm", t.max_grad_norm, 0)
    check_finite("adam_epsilon", t.adam_epsilon, 0, low_open=True)
    check_finite("adam_beta1", t.adam_beta1, 0, 1)
    check_finite("adam_beta2", t.adam_beta2, 0, 1)
    check_finite("warmup_steps", t.warmup_steps, 0)
    check_finite("label_smoothing_factor", t.label_smoothing_factor, 0, 1)
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        check_finite(name, getattr(t, name), 1)
    if t.max_steps < -1:
        raise ValueError(f"--max_steps {t.max_steps} must be -1 or 0 (off: train --num_train_epochs) or positive")
    check_finite("temperature", getattr(t, "temperature", None), 0, low_open=True)
    check_finite("alpha", getattr(t, "alpha", None), 0, 1)
    check_finite("hidden_loss_weight", getattr(t, "hidden_loss_weight", None), 0)
    c = compression_args
    for name in ("embedding_size", "position_embedding_size", "rank", "student_hidden_size"):
        check_finite(name, getattr(c, name), 1)
    check_finite("student_num_layers", c.student_num_layers, 1)
    check_finite("rank_energy", c.rank_energy, 0, 1, low_open=True)
    check_finite("max_seq_length", data_args.max_seq_length, MIN_SEQ_LENGTH)


# ----------------------------------------------------------------------------------------------------------------
# Config files


def _fits(value, hint) -> bool:
    """Whether a value read from JSON/YAML can stand for a field annotated ``hint`` (lenient where HF converts)."""
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (list, tuple):
        args = typing.get_args(hint)
        return isinstance(value, (list, tuple)) and (not args or all(_fits(v, args[0]) for v in value))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, (str, hint))
    return True  # an annotation this check does not know: leave it to the dataclass


def _number(text: str, hint):
    """``text`` as an int or float when the annotation takes one, else unchanged."""
    for kind in (int, float):
        if _fits(kind(1), hint):
            try:
                return kind(text)
            except ValueError:
                pass
    return text


def _describe(hint) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def check_config_values(settings: dict, dataclass_types) -> None:
    """Each key of a config file that names a flag has a value of the flag's type; raise naming the key.

    HfArgumentParser.parse_dict passes values to the dataclasses unconverted, so ``max_seq_length: abc`` would
    surface as a TypeError deep inside training; the caller prefixes the file name.
    """
    for dtype in dataclass_types:
        hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if not (f.init and f.name in settings):
                continue
            hint = hints.get(f.name, typing.Any)
            if isinstance(settings[f.name], str) and not _fits(settings[f.name], hint):
                settings[f.name] = _number(settings[f.name], hint)  # YAML 1.1 reads 2e-4 as a string
            if not _fits(settings[f.name], hint):
                raise ConfigValueError(f"key {f.name!r}: {settings[f.name]!r} is not a valid {_describe(hints[f.name])}")


# ----------------------------------------------------------------------------------------------------------------
# The whole run


def validate_run(model_args, compression_args, data_args, training_args) -> None:
    """Everything that can be checked before data or models are loaded, in the order a user would fix it.

    Flags and numbers first, then the paths (model, teacher, tokenizer folders; the script's argument dataclasses
    check their own files, such as the extra texts for pruning), then what needs the models' configs:
    ``--max_seq_length`` against ``max_position_embeddings``, and the teacher's vocabulary and width against the
    student's.
    """
    check_numbers(compression_args, data_args, training_args)

    resume = getattr(training_args, "resume_from_checkpoint", None)
    if resume:
        from .run_folder import checkpoint_problem

        problem = checkpoint_problem(resume) if os.path.isdir(resume) else "not a complete checkpoint (no such folder)"
        if problem:
            raise ValueError(f"--resume_from_checkpoint {resume}: {problem}")

    teacher_path = model_args.teacher_name_or_path
    # A --model_type student with a teacher is built from the teacher alone (its tokenizer too)
    uses_source = not (model_args.model_type == "student" and teacher_path)
    hub = [(flag, path) for flag, path, used in (
        ("--model_name_or_path", model_args.model_name_or_path, uses_source),
        ("--teacher_name_or_path", teacher_path, bool(teacher_path)),
        ("--tokenizer_name", model_args.tokenizer_name, bool(model_args.tokenizer_name))) if used and path
        and not _looks_local(path)]
    files = (data_args.train_file, data_args.validation_file, data_args.test_file)
    if data_args.dataset_name and not any(files):
        hub.append(("--dataset_name", data_args.dataset_name))
    check_hub_reachable(hub)
    if uses_source:
        check_model_folder(model_args.model_name_or_path, "--model_name_or_path")
    if teacher_path:
        check_model_folder(teacher_path, "--teacher_name_or_path")
    if model_args.tokenizer_name:
        check_tokenizer_folder(model_args.tokenizer_name, "--tokenizer_name")
    elif uses_source:
        check_tokenizer_folder(model_args.model_name_or_path, "--model_name_or_path")

    configs = {}
    if uses_source:
        configs["--model_name_or_path"] = load_config(model_args.model_name_or_path, "--model_name_or_path",
                                                      model_args.cache_dir)
    if teacher_path:
        configs["--teacher_name_or_path"] = load_config(model_args.teacher_name_or_path, "--teacher_name_or_path",
                                                        model_args.cache_dir)
    paths = {"--model_name_or_path": model_args.model_name_or_path, "--teacher_name_or_path": teacher_path}
    check_model_types(configs, paths)
    for flag in configs:  # the weights' headers only: a damaged file is one line before anything loads
        if os.path.isdir(os.path.expanduser(paths[flag])):
            check_weight_files(os.path.expanduser(paths[flag]), flag)
    for flag, config in configs.items():
        limit = getattr(config, "max_position_embeddings", None)
        if limit and data_args.max_seq_length > limit:
            raise ValueError(
                f"--max_seq_length {data_args.max_seq_length} is more than the {limit} positions of {flag} "
                f"(max_position_embeddings); longer sentences are truncated to --max_seq_length"
            )
    teacher = configs.get("--teacher_name_or_path")
    if teacher is not None:
        _check_teacher(model_args, compression_args, training_args, configs.get("--model_name_or_path"), teacher)


def check_model_types(configs: dict, paths: dict) -> None:
    """The source is compressed from a BERT; a teacher is a BERT or, for a chain, a model of this project (the
    messages ``load_bert`` and ``load_teacher`` would give after the data has loaded)."""
    from .distillation import COMPRESSED_MODEL_TYPES

    source, teacher = configs.get("--model_name_or_path"), configs.get("--teacher_name_or_path")
    if source is not None and source.model_type != "bert":
        raise ValueError(f"--model_name_or_path {paths['--model_name_or_path']}: model_type is "
                         f"{source.model_type!r}, but a BERT is needed")
    if teacher is not None and teacher.model_type not in ("bert", *COMPRESSED_MODEL_TYPES):
        raise ValueError(f"--teacher_name_or_path {paths['--teacher_name_or_path']}: model_type is "
                         f"{teacher.model_type!r}, but a teacher must be a BERT or one of "
                         f"{', '.join(COMPRESSED_MODEL_TYPES)}")


def _check_teacher(model_args, compression_args, training_args, source, teacher) -> None:
    """The teacher reads the student's input ids and, with hidden-state matching, is compared layer by layer."""
    student_type = model_args.model_type == "student"
    if source is not None and getattr(teacher, "vocab_size", None) != getattr(source, "vocab_size", None):
        raise ValueError(
            f"--teacher_name_or_path {model_args.teacher_name_or_path}: its vocabulary has {teacher.vocab_size} "
            f"entries but --model_name_or_path {model_args.model_name_or_path} has {source.vocab_size}; "
            "the teacher must read the student's token ids"
        )
    tokenizer_path = model_args.tokenizer_name or (
        model_args.teacher_name_or_path if student_type else model_args.model_name_or_path)
    tokenizer_size = _tokenizer_size(tokenizer_path, model_args.cache_dir)
    if tokenizer_size is not None and tokenizer_size > teacher.vocab_size:
        raise ValueError(
            f"--teacher_name_or_path {model_args.teacher_name_or_path}: its vocabulary has {teacher.vocab_size} "
            f"entries but the tokenizer {tokenizer_path} makes ids up to {tokenizer_size - 1}"
        )
    attention = getattr(training_args, "attention_loss_weight", 0), getattr(training_args, "value_relation_weight", 0)
    if any(attention):
        from .distillation import check_attention_distillation  # distillation imports this module

        student = copy.copy(source if source is not None else teacher)
        if student_type:
            student.num_hidden_layers = compression_args.student_num_layers
        check_attention_distillation(student, teacher, *attention)
    if getattr(training_args, "hidden_loss_weight", 0) > 0:
        width = source.hidden_size if source is not None else compression_args.student_hidden_size or teacher.hidden_size
        if width != teacher.hidden_size:
            raise ValueError(
                f"--hidden_loss_weight {training_args.hidden_loss_weight} matches hidden states, but the teacher's "
                f"width is {teacher.hidden_size} and the student's {width}; use --hidden_loss_weight 0"
            )


def _tokenizer_size(path: str, cache_dir: str | None) -> int | None:
    try:
        return len(AutoTokenizer.from_pretrained(path, cache_dir=cache_dir))
    except Exception:  # noqa: BLE001  (the script loads it again and reports a failure with the flag)
        return None
