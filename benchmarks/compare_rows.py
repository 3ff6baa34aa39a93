"""The comparison's recipe: one ``Row`` per run of run_ner_compress.py, and the command line each row runs.

Each row is a file, ``experiments/<row>.json``, and ``experiments/order.txt`` lists them in table order (the order
compare.py runs them and its tables list them). Those are the current rows, which compare.py runs by default: the
methods alone and distilled, the student, the pruned teacher and the named recipes' rows. The rows that only
reproduce earlier runs (``results/history/``, and the probes of the runs since) have their files in
``experiments/history/`` (``order.txt`` still lists them, in table order): they run when ``--rows`` names them. A file
holds one JSON object:

- ``name``: the row, the file's stem; also its folder under ``--output_dir``;
- ``description``: the method in a few words;
- ``flags``: run_ner_compress.py flags that define the method (training flags come from compare.py's command line);
- ``distil``: learn from ``source`` with ``DISTILLATION_FLAGS``;
- ``source``: the folder under ``--output_dir`` to start from (``teacher``, or ``teacher_vocab``: ``PRUNED``);
- ``transfer``: also distil on ``--transfer_file`` (the row runs only when one is given);
- optional ``recipe`` (a named recipe of ``modeling/recipes.py``, ``--recipe NAME``) and ``target_ratio``
  (``--target_ratio R``), instead of a ``--model_type`` in ``flags``: the row then also takes its schedule (epochs,
  learning rate, batch) from the recipe or the plan, not from compare.py's ``--epochs`` / ``--learning_rate``;
- optional ``note``: why the row exists and the results folders that measured it.

``ROWS`` is read from these files; ``plan(args)`` turns compare.py's arguments into each chosen row's command.
Change a row in its file, or for one comparison with ``--row_args ROW="--flag value"`` (same flags replace its own).
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"
HISTORY = "history"  # the subfolder of the rows that reproduce earlier runs
# The vocabulary-pruned copy of the teacher: its word table keeps only the wordpieces of the training split (plus
# every single character), so a factorized table of the same E costs about half. Made by prepare_pruned_teacher.
PRUNED = "teacher_vocab"
DISTILLATION_FLAGS = "--temperature 2.0 --alpha 0.5"
# A named recipe stands for the method: the row's flags then may not name one too.
RECIPE_FLAGS = ("--recipe", "--target_ratio")


def merge_flags(*groups: list[str]) -> list[str]:
    """Concatenate flag lists; a flag given again replaces the earlier one and its values, in the earlier place."""
    merged: dict[str, list[str]] = {}
    for tokens in groups:
        flag = None
        for token in tokens:
            if token.startswith("--"):
                flag, _, value = token.partition("=")
                merged[flag] = [value] if value else []
            elif flag is None:
                raise ValueError(f"{token!r} is not after a --flag in {tokens}")
            else:
                merged[flag].append(token)
    return [item for flag, values in merged.items() for item in (flag, *values)]


@dataclass(frozen=True)
class Row:
    """One line of the comparison: a run of run_ner_compress.py with these flags (the fields of an experiment file).

    ``Row("mine", "--model_type shared_ffn --embedding_size 64", True, "one shared layer, E=64, KD")``
    """

    name: str
    flags: str
    distil: bool
    description: str
    source: str = "teacher"
    transfer: bool = False
    recipe: str | None = None
    target_ratio: float | None = None
    note: str = ""

    def __post_init__(self):
        try:
            tokens = merge_flags(shlex.split(self.flags))
        except ValueError as err:  # unbalanced quotes, or a value before any --flag
            raise ValueError(f"field 'flags': {err}") from None
        for flag in RECIPE_FLAGS:
            if flag in tokens:
                raise ValueError(f"field 'flags': {flag} goes in the field {flag[2:]!r}")
        named = "recipe" if self.recipe is not None else "target_ratio" if self.target_ratio is not None else None
        if named and "--model_type" in tokens:
            raise ValueError(f"field {named!r}: a row names a recipe or a --model_type in its flags, not both")
        if not named and "--model_type" not in tokens:
            raise ValueError("field 'flags': no --model_type (and no recipe): the row names no method")
        if self.target_ratio is not None and not self.target_ratio > 1:
            raise ValueError(f"field 'target_ratio': {self.target_ratio} is not above 1")

    def method_flags(self) -> list[str]:
        """The flags that define the method: the named recipe's, then ``flags``."""
        recipe = ["--recipe", self.recipe] if self.recipe is not None else []
        ratio = ["--target_ratio", f"{self.target_ratio:g}"] if self.target_ratio is not None else []
        return [*recipe, *ratio, *shlex.split(self.flags)]


# Each field of an experiment file and what its JSON value must be; the first six are required.
FIELD_TYPES = {"name": str, "description": str, "flags": str, "distil": bool, "source": str, "transfer": bool,
               "recipe": str, "target_ratio": float, "note": str}
REQUIRED = ("name", "description", "flags", "distil", "source", "transfer")
TYPE_WORDS = {str: "a string", bool: "true or false", float: "a number"}


def load_row(path: Path) -> Row:
    """One experiment file as a ``Row``; anything malformed is one ValueError line naming the file and the field."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of the row's fields, got {type(data).__name__}")
    for field, value in data.items():
        kind = FIELD_TYPES.get(field)
        if kind is None:
            raise ValueError(f"{path}: unknown field {field!r}; the fields are {list(FIELD_TYPES)}")
        accepted = (int, float) if kind is float else kind
        if not isinstance(value, accepted) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(f"{path}: field {field!r} must be {TYPE_WORDS[kind]}, not {json.dumps(value)}")
    missing = [field for field in REQUIRED if field not in data]
    if missing:
        raise ValueError(f"{path}: field {missing[0]!r} is missing")
    if data["name"] != path.stem:
        raise ValueError(f"{path}: field 'name' is {data['name']!r}, not the file's name {path.stem!r}")
    try:
        return Row(**data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def load_rows(folder: Path = EXPERIMENTS) -> tuple[Row, ...]:
    """Every experiment file in ``folder`` and ``folder/history``, in the order of ``folder/order.txt`` (which must
    list each file once)."""
    index = folder / "order.txt"
    try:
        lines = index.read_text().splitlines()
    except OSError as err:
        raise ValueError(f"{index}: cannot read the rows' order: {err.strerror}") from None
    names = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    files = {}
    for path in [*sorted(folder.glob("*.json")), *sorted((folder / HISTORY).glob("*.json"))]:
        if path.stem in files:
            raise ValueError(f"{path}: the row {path.stem!r} is also {files[path.stem]}")
        files[path.stem] = path
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"{index}: {name!r} is listed twice")
        if name not in files:
            raise ValueError(f"{index}: {name!r} has no file {folder / f'{name}.json'} (nor in {HISTORY}/)")
    unlisted = sorted(set(files) - set(names))
    if unlisted:
        raise ValueError(f"{files[unlisted[0]]}: not listed in {index}, the rows' order")
    return tuple(load_row(files[name]) for name in names)


ROWS = load_rows()
# The current rows (a file directly in experiments/), which compare.py runs by default; the rest reproduce history.
CURRENT_ROWS = tuple(row for row in ROWS if (EXPERIMENTS / f"{row.name}.json").is_file())
HISTORY_ROWS = tuple(row for row in ROWS if row not in CURRENT_ROWS)
ROW_NAMES = tuple(row.name for row in ROWS)


def row_flags(row: Row, args: argparse.Namespace) -> list[str]:
    """The method's flags for this comparison: the row's (or --best_args), then --row_args."""
    flags = shlex.split(args.best_args) if row.name == "best" and args.best_args else row.method_flags()
    return merge_flags(flags, args.row_args.get(row.name, []))


def row_command(row: Row, args: argparse.Namespace) -> list[str]:
    """The full run_ner_compress.py argument list of one row."""
    output_dir = Path(args.output_dir)
    source_dir = str(output_dir / row.source)
    data = []
    for flag in ("dataset_name", "dataset_config_name", "train_file", "validation_file", "test_file",
                 "max_seq_length", "max_train_samples", "max_eval_samples", "max_predict_samples"):
        if getattr(args, flag) is not None:
            data += [f"--{flag}", str(getattr(args, flag))]
    if args.quickstart:
        data.append("--quickstart")
    if row.name == "teacher":
        source = ["--model_name_or_path", args.model_name_or_path] if args.model_name_or_path else []
        schedule = [args.teacher_epochs, args.teacher_learning_rate, args.teacher_batch_size]
    else:
        source = ["--model_name_or_path", source_dir]
        schedule = [args.epochs, args.learning_rate, args.batch_size]
        if row.transfer:  # batch_size labelled + ratio × batch_size transfer sentences: the baseline's steps per epoch
            schedule[2] = round(args.batch_size * (1 + transfer_ratio(row_flags(row, args))))
    # A named recipe or a planned budget brings its own schedule (epochs, learning rate, batch): compare.py's is not
    # passed, so the row runs as the user's `--recipe NAME` does; --row_args can still set one.
    planned = row.recipe is not None or row.target_ratio is not None
    schedule_flags = [] if planned else [
        "--num_train_epochs", str(schedule[0]), "--learning_rate", str(schedule[1]),
        "--per_device_train_batch_size", str(schedule[2])]
    training = [
        *schedule_flags, "--per_device_eval_batch_size", str(args.eval_batch_size),
        "--eval_strategy", args.eval_strategy, "--save_strategy", args.save_strategy, "--save_total_limit", "1",
        "--seed", str(args.seed), "--report_to", "none",
    ]
    distillation = ["--teacher_name_or_path", source_dir, *shlex.split(DISTILLATION_FLAGS)] if row.distil else []
    transfer = transfer_flags(args) if row.transfer else []
    return merge_flags(
        source, data, training, transfer, row_flags(row, args), distillation, shlex.split(args.extra),
        ["--output_dir", str(output_dir / row.name)],
    )


def transfer_ratio(flags: list[str]) -> float:
    """The row's --transfer_ratio (run_ner_compress.py's default when the row sets none)."""
    from trainers.transfer import TransferArguments

    value = merge_flags(["--transfer_ratio", str(TransferArguments.transfer_ratio)], flags)
    return float(value[value.index("--transfer_ratio") + 1])


def transfer_flags(args: argparse.Namespace) -> list[str]:
    """The --transfer_* flags shared by run_ner_compress.py and ``python -m trainers.cache_transfer``."""
    flags = ["--transfer_file", *args.transfer_file] if args.transfer_file else []
    for flag in ("max_transfer_samples", "transfer_cache_dir"):
        if getattr(args, flag) is not None:
            flags += [f"--{flag}", str(getattr(args, flag))]
    return flags


def plan(args: argparse.Namespace) -> list[tuple[Row, list[str]]]:
    """Each row to run with its command, the teacher first."""
    rows = [row for row in ROWS if row.name in args.rows]
    return [(row, row_command(row, args)) for row in rows]

