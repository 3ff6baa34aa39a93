"""The models, tokenizers and Hub sources a run names, checked before any weight or data loads.

``validate_run`` is called once by ``cli.checks.check_run``: local folders hold what they should (a config, weights
whose headers read, a tokenizer), the Hub is reachable for what is not cached, a config's model type is one this
run can use, ``--max_seq_length`` fits the positions, and a teacher reads the student's ids (and matches its width
or depth where a distillation term needs it). Everything raises ``ValueError`` or ``OSError`` naming the flag,
which ``runtime.console.run_cli`` turns into one line and exit status 2.

```python
>>> validate_run(model_args, compression_args, data_args, training_args)  # before any model is loaded
```
"""

from __future__ import annotations

import copy
import os
import socket

from transformers import AutoConfig, AutoTokenizer

import modeling  # noqa: F401  (registers the compressed model types with AutoConfig)
from runtime.textfiles import check_weight_files
from trainers.distillation import COMPRESSED_MODEL_TYPES, check_attention_distillation

from .run_folder import checkpoint_problem

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")


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
# The whole run


def validate_run(model_args, compression_args, data_args, training_args) -> dict:
    """What the paths and the models' configs allow, before data or weights are loaded (each flag's own bounds were
    checked as the arguments were parsed), in the order a user would fix it.

    The paths (model, teacher, tokenizer folders; the script's argument dataclasses
    check their own files, such as the extra texts for pruning), then what needs the models' configs:
    ``--max_seq_length`` against ``max_position_embeddings``, and the teacher's vocabulary and width against the
    student's. Returns the configs it loaded, by flag, for the later checks (each config.json is read once).
    """
    resume = getattr(training_args, "resume_from_checkpoint", None)
    if resume:
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
    return configs


def check_model_types(configs: dict, paths: dict) -> None:
    """The source is compressed from a BERT; a teacher is a BERT or, for a chain, a model of this project (the
    messages ``load_bert`` and ``load_teacher`` would give after the data has loaded)."""
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
