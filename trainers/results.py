"""The record of one finished run, ``results.json``: written by ``run_ner_compress.py``, read by the model card
(``hub_cards``) and ``benchmarks/compare.py``.

Shaped like transformers' ``TrainerState``: a dataclass with ``to_json``/``load``. The file keeps the flat layout it
has always had (scores, distillation and transfer keys at the top; ``compression``, ``arguments``, ``variants`` and
``vocab_pruning`` nested), so older files load and older readers still read new files; the dataclass groups the
keys into small sections.

```python
>>> results = RunResults.load("outputs/shared_ffn/results.json")
>>> results.test_f1, results.compression.share_mode, results.compression_ratio
>>> results.to_json("outputs/shared_ffn/results.json")  # atomically, mode 0644
```

Versions. A file without ``schema_version`` is version 1; reading upgrades it. Version 2:

- ``source_num_parameters``: the unique parameters of the model that was compressed (or, for a student, of its
  teacher). Version 1 wrote that count as ``teacher_num_parameters`` and overwrote it with the teacher's when there
  was one, so an old distilled file has no source count.
- ``teacher_num_parameters``: only when there is a teacher.
- ``compression_ratio``: the teacher's parameters over this model's when there is a teacher, else the source's
  (unchanged from version 1's final value).
- ``dataset_hub_id``: the Hub dataset the data is (``--dataset_hub_id``, or ``conll2003`` when detected).
- ``compression`` settings that do not apply (None) are left out.

The per-run figures of every section are written by ``RunResults.from_run`` and ``add_scores`` (training),
``Deployment`` (export/evaluate_variants.py) and ``TransferSet`` (the ``info`` of trainers.transfer).

Only ``num_parameters`` is required: every reader puts the model's size beside a reference. Everything else may be
missing from an older or hand-made file and reads as None (or empty). Keys this version does not know are kept in
``extra`` and written back, so nothing an older or newer writer recorded is lost by a rewrite.
"""

from __future__ import annotations

import json
import logging
import os
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass

from runtime.atomic import write_json_atomic

from .distillation import DistillationTrainer

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
REQUIRED = ("num_parameters",)
SPLITS = ("validation", "test")
SECRET_FLAGS = ("--hub_token",)


def redact_command(command: str) -> str:
    """The command with the value of ``--hub_token`` replaced: results.json and cards must never hold a token."""
    for flag in SECRET_FLAGS:
        command = re.sub(rf"({re.escape(flag)}(?:=|\s+))\S+", r"\1<redacted>", command)
    return command


# ----------------------------------------------------------------------------------------------------------------
# Sections


@dataclass
class CompressionRecord:
    """What was compressed and how (``compression`` in results.json); None where a method is not used."""

    methods: list[str] = field(default_factory=list)  # the config's compression_methods, e.g. ["low_rank"]
    embedding_size: int | None = None
    position_embedding_size: int | None = None
    share_mode: str | None = None  # "attention" or "attention_ffn"
    share_init: str | None = None
    num_shared_groups: int | None = None
    share_delta_rank: int | None = None
    share_delta_init: str | None = None
    rank: int | None = None  # the rank every layer got (--rank, or the default); None with --rank_energy
    rank_energy: float | None = None
    low_rank_layers: int | None = None
    mean_rank: float | None = None
    student_num_layers: int | None = None
    student_hidden_size: int | None = None
    embedding_rows: int | None = None  # --prune_student_vocab: the word table's rows (vocab_size ids read them)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_model(cls, config, compression_args, model_type: str) -> CompressionRecord:
        """The settings of a built model: its config, plus the low-rank rule as the flags gave it."""
        settings = cls(methods=list(getattr(config, "compression_methods", [])))
        settings.embedding_size = getattr(config, "embedding_size", None) or None
        settings.position_embedding_size = getattr(config, "position_embedding_size", None) or None
        if getattr(config, "share_mode", None):
            for name in ("share_mode", "share_init", "num_shared_groups", "share_delta_rank", "share_delta_init"):
                setattr(settings, name, getattr(config, name))
        ranks = list((getattr(config, "low_rank_ranks", None) or {}).values())
        if ranks:
            # the one rank used (--rank's, or the model type's default, fitted to the layers), or the energy rule
            settings.rank_energy = compression_args.rank_energy
            settings.rank = ranks[0] if settings.rank_energy is None else None
            settings.low_rank_layers, settings.mean_rank = len(ranks), round(sum(ranks) / len(ranks), 1)
        settings.embedding_rows = getattr(config, "embedding_rows", None)
        if model_type == "student":
            settings.student_num_layers, settings.student_hidden_size = config.num_hidden_layers, config.hidden_size
        return settings

    def to_dict(self) -> dict:
        """Only the settings that apply (a method's keys appear when it is used), sorted as results.json keeps them:
        the tables and the card list them in this order."""
        return dict(sorted({**{k: v for k, v in _named_items(self).items() if v is not None}, **self.extra}.items()))

    @classmethod
    def from_dict(cls, data: dict, where: str = "results") -> CompressionRecord:
        known, unknown = _split_known(cls, data)
        return _build(cls, known, f"{where}: compression", extra=unknown)


@dataclass
class Distillation:
    """The teacher and the distillation loss; present exactly when the run had a teacher."""

    teacher_path: str | None = None
    teacher_num_parameters: int | None = None
    teacher_test_f1: float | None = None  # from the teacher's own results.json, if it has one
    f1_retention: float | None = None  # test_f1 / teacher_test_f1; None when undefined
    temperature: float | None = None
    alpha: float | None = None  # weight of the hard-label CE; the KL term gets 1 - alpha (trainers/distillation.py)
    hidden_loss_weight: float | None = None
    attention_loss_weight: float | None = None  # MiniLM's attention-distribution KL (trainers/distillation.py)
    value_relation_weight: float | None = None  # MiniLM's value-relation KL
    labelled_sentences_seen: int | None = None  # rows trained on in this run, all processes


@dataclass
class TransferSet:
    """The teacher-labelled transfer set (``transfer_*`` keys at the top of results.json)."""

    PREFIX: typing.ClassVar[str] = "transfer_"

    files: list[str] | None = None
    sentences: int | None = None  # distinct sentences used, after selection
    sentences_read: int | None = None
    min_entities: int | None = None
    ratio: float | None = None
    kl_weight: float | None = None
    targets: str | None = None  # "cached" or "live"
    per_epoch: int | None = None
    cache_file: str | None = None
    sentences_seen: int | None = None


@dataclass
class Deployment:
    """What ``--prune_vocab``, ``--export_onnx`` and ``--quantize`` made (export/evaluate_variants.py)."""

    fp32_size_bytes: int | None = None
    # name ("fp32", "vocab_pruned", "onnx", "onnx_int8", "torch_int8") -> path, size_bytes, size_ratio, test_f1, ...
    variants: dict[str, dict] | None = None
    vocab_pruning: dict | None = None


FLAT_SECTIONS = {"distillation": Distillation, "transfer": TransferSet, "deployment": Deployment}


# ----------------------------------------------------------------------------------------------------------------
# The record


@dataclass
class RunResults:
    """Everything a finished run records. ``to_dict()`` is the results.json layout; ``from_dict`` reads any version.

    ```python
    >>> results = RunResults(num_parameters=4_000_000, model_type="shared_ffn", metrics={"test_f1": 0.81})
    >>> RunResults.from_dict(results.to_dict()) == results
    True
    ```
    """

    num_parameters: int  # unique parameters: shared weights counted once
    model_type: str | None = None
    model_class: str | None = None
    source_model: str | None = None  # --model_name_or_path
    source_num_parameters: int | None = None
    compression_ratio: float | None = None  # against the teacher when there is one, else against the source
    compression: CompressionRecord = field(default_factory=CompressionRecord)
    distilled: bool = False
    epochs_trained: float | None = None
    stopped_at_time_budget: bool = False
    train_runtime_s: float | None = None
    dataset_hub_id: str | None = None  # e.g. "conll2003": the dataset the card's model-index names
    command: str | None = None  # with --hub_token redacted
    # The Trainer's "validation_*" and "test_*" metrics (f1, precision, recall, per entity type, strict, runtime),
    # plus test_runtime_s and test_samples.
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    distillation: Distillation | None = None
    transfer: TransferSet | None = None
    deployment: Deployment | None = None
    arguments: dict[str, dict] = field(default_factory=dict)  # every flag: model, compression, data, training, ...
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)  # keys this version does not know, written back as they were

    # -- reading ---------------------------------------------------------------------------------------------

    def score(self, split: str, metric: str):
        return self.metrics.get(f"{split}_{metric}")

    @property
    def test_f1(self) -> float | None:
        return self.metrics.get("test_f1")

    @property
    def validation_f1(self) -> float | None:
        return self.metrics.get("validation_f1")

    @property
    def teacher_path(self) -> str | None:
        return self.distillation.teacher_path if self.distillation else None

    @property
    def reference_num_parameters(self) -> int | None:
        """What ``compression_ratio`` divides: the teacher's parameters when there is one, else the source's."""
        if self.distillation and self.distillation.teacher_num_parameters:
            return self.distillation.teacher_num_parameters
        return self.source_num_parameters

    def args(self, group: str) -> dict:
        """The flags of one argument group ("model", "data", "training", ...), as recorded."""
        return self.arguments.get(group) or {}

    # -- recording a run -------------------------------------------------------------------------------------

    @classmethod
    def from_run(cls, model, trainer, arguments: dict, command: str, *, num_parameters: int,
                 source_num_parameters: int, teacher_path: str | None = None,
                 teacher_num_parameters: int | None = None, transfer_info: dict | None = None,
                 train_runtime: float | None = None, dataset_hub_id: str | None = None) -> RunResults:
        """The record of a run once ``trainer`` has trained; scores come after, with ``add_scores``.

        ``arguments``: the argument dataclasses by group ("model", "compression", "data", "training", and
        "transfer" when a transfer set is used). Call it in every process: it sums the sentences seen by all.
        """
        model_args, training_args = arguments["model"], arguments["training"]
        distillation = transfer = None
        if teacher_path:
            teacher = read_teacher_results(teacher_path)
            distillation = Distillation(
                teacher_path, teacher_num_parameters, teacher.test_f1 if teacher else None,
                temperature=training_args.temperature, alpha=training_args.alpha,
                hidden_loss_weight=training_args.hidden_loss_weight,
                attention_loss_weight=getattr(training_args, "attention_loss_weight", None),
                value_relation_weight=getattr(training_args, "value_relation_weight", None))
        if distillation and isinstance(trainer, DistillationTrainer):
            # Rows trained on in this run (all processes; a resumed run counts from its checkpoint on).
            seen = trainer.accelerator.reduce(trainer.sentences_seen, "sum").tolist()
            distillation.labelled_sentences_seen = seen[0]
            if transfer_info is not None:
                transfer = _take_section(TransferSet, {**transfer_info, "transfer_sentences_seen": seen[1]}, "transfer")
        return cls(
            num_parameters=num_parameters,
            model_type=model_args.model_type,
            model_class=type(model).__name__,
            source_model=model_args.model_name_or_path,
            source_num_parameters=source_num_parameters,
            compression_ratio=round((teacher_num_parameters or source_num_parameters) / num_parameters, 3),
            compression=CompressionRecord.from_model(model.config, arguments["compression"], model_args.model_type),
            distilled=distillation is not None,
            epochs_trained=round(trainer.state.epoch or 0.0, 3),
            stopped_at_time_budget=any(getattr(c, "stopped_early", False) for c in trainer.callback_handler.callbacks),
            train_runtime_s=round(train_runtime, 2) if train_runtime is not None else None,
            dataset_hub_id=dataset_hub_id,
            command=redact_command(command),
            distillation=distillation,
            transfer=transfer,
            arguments={name: args.to_dict() if name == "training" else asdict(args) for name, args in arguments.items()},
        )

    def add_scores(self, split: str, metrics: dict, samples: int | None = None) -> None:
        """The ``<split>_*`` metrics of ``trainer.evaluate``/``predict``; the test runtime is kept in seconds as
        ``test_runtime_s``, beside ``test_samples``. With a teacher, the F1 retention follows the test F1."""
        self.metrics.update({key: value for key, value in metrics.items() if key.startswith(f"{split}_")})
        if split == "test":
            self.metrics["test_runtime_s"] = self.metrics.pop("test_runtime", None)
        if samples is not None or split == "test":
            self.metrics[f"{split}_samples"] = samples
        if self.distillation is not None:
            teacher_f1 = self.distillation.teacher_test_f1
            defined = teacher_f1 and self.test_f1 is not None  # undefined: no test split, or a teacher scoring 0
            self.distillation.f1_retention = round(self.test_f1 / teacher_f1, 4) if defined else None

    # -- writing ---------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The results.json layout: flat, a top-level key absent when unknown; a section, once there, writes all
        its keys (with a teacher, ``f1_retention`` is always there, null when undefined)."""
        out = dict(self.extra)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in FLAT_SECTIONS:
                out.update(_flat(value))
            elif f.name == "metrics":
                out.update(value)
            elif f.name == "compression":
                out["compression"] = value.to_dict()
            elif f.name != "extra" and value is not None:  # unknown: absent, as readers' .get(key, default) expect
                out[f.name] = value
        return dict(sorted(out.items()))  # the order of results.json, so a record read back prints the same

    def to_json(self, path: str) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict, where: str = "results") -> RunResults:
        """``data`` as results.json holds it, of any version; ``where`` (the file) names it in errors."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
        for name in REQUIRED:
            if data.get(name) is None:
                raise ValueError(f"{where}: the field '{name}' is missing, and every results.json has it (is this "
                                 f"the results.json of a finished run_ner_compress.py run?)")
        data = _upgrade(dict(data), where)
        values = {name: _take_section(section, data, where) for name, section in FLAT_SECTIONS.items()}
        values["compression"] = CompressionRecord.from_dict(data.pop("compression", None) or {}, where)
        values["metrics"] = {key: data.pop(key) for key in list(data) if key.startswith(tuple(f"{s}_" for s in SPLITS))}
        known, unknown = _split_known(cls, data)
        return _build(cls, {**known, **values}, where, extra=unknown)

    @classmethod
    def load(cls, path: str) -> RunResults:
        """Read ``path``; a file that is not JSON, or lacks a required field, is a ValueError naming it."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data, where=str(path))


def read_teacher_results(folder: str) -> RunResults | None:
    """The results.json of a teacher this project trained; None for any other teacher (a Hub model, say).

    An unreadable file is a warning, not an error: it is read after training, and costs only the retention.
    """
    path = os.path.join(folder, "results.json")
    if not os.path.isfile(path):
        return None
    try:
        return RunResults.load(path)
    except (OSError, ValueError) as err:
        logger.warning("the teacher's results are unreadable, so its test F1 is unknown: %s", err)
        return None


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def _upgrade(data: dict, where: str) -> dict:
    """Bring a version-1 file's keys to this version's meaning."""
    version = data.pop("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(f"{where}: schema_version {version!r} is newer than this code reads ({SCHEMA_VERSION}); "
                         "update bert-ner-compress")
    if version == 1 and "source_num_parameters" not in data:
        # Version 1 wrote the source's count as teacher_num_parameters, then overwrote it with the teacher's.
        if not data.get("teacher_path"):
            data["source_num_parameters"] = data.pop("teacher_num_parameters", None)
        elif data.get("model_type") == "student":  # a student is built from its teacher: one count for both
            data["source_num_parameters"] = data.get("teacher_num_parameters")
    return data


def _named_items(record) -> dict:
    """A section's fields under their results.json names, None included."""
    prefix = getattr(record, "PREFIX", "")
    return {prefix + f.name: getattr(record, f.name) for f in fields(record) if f.name != "extra"}


def _flat(section) -> dict:
    return {} if section is None else _named_items(section)


def _take_section(cls, data: dict, where: str):
    """Pop the keys of section ``cls`` out of ``data``; None when the file has none of them."""
    prefix = getattr(cls, "PREFIX", "")
    found = {f.name: data.pop(prefix + f.name) for f in fields(cls) if prefix + f.name in data}
    return _build(cls, found, where) if found else None


def _split_known(cls, data: dict) -> tuple[dict, dict]:
    names = {f.name for f in fields(cls)} - {"extra"}
    return ({k: v for k, v in data.items() if k in names}, {k: v for k, v in data.items() if k not in names})


def _build(cls, values: dict, where: str, extra: dict | None = None):
    """``cls(**values)`` after checking each value against its annotation: one error naming the field."""
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        expected = _expected_types(hints[name])
        if value is not None and expected and not (isinstance(value, expected) and
                                                   (bool in expected or not isinstance(value, bool))):
            names = " or ".join(t.__name__ for t in expected if t is not int or float not in expected)
            raise ValueError(f"{where}: '{name}' is {value!r}, but it should be {names}")
    if extra is not None:
        values = {**values, "extra": extra}
    return cls(**values)


def _expected_types(hint) -> tuple[type, ...]:
    """The plain types an annotation allows (``int | None`` -> (int,), ``list[str]`` -> (list,)); () for none."""
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    found = tuple(typing.get_origin(m) or m for m in members if m is not type(None))
    if any(is_dataclass(m) for m in found):  # sections are built before they are checked
        return ()
    return found + ((int,) if float in found else ())


