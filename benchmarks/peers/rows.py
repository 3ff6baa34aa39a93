"""One row of the peers table, saved as JSON, and the one function that writes the table from rows.

A row is one model made by one tool on the teacher, or a row that says why there is none (``status``). Retention,
the F1 change and the throughput ratio are not stored: the writer computes them against the teacher row, so every
row is compared with the same figures.

```python
>>> rows = [PeerRow(setup="teacher", method="teacher", tool="ours", test_f1=0.867, test_sentences_per_second=520),
...         PeerRow(setup="int8", method="optimum dynamic int8", tool="optimum", status="skipped",
...                 note="no peer venv at /work/peer_venvs/optimum: run benchmarks/peers/make_venvs.sh")]
>>> save_rows(rows, "rows.json"); format_table(load_rows("rows.json"))
```
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from runtime.atomic import write_text_atomic

STATUSES = ("measured", "skipped", "failed", "not measured yet", "unreachable")
SETUPS = ("teacher", "vocabulary pruning", "structured pruning", "distillation", "int8")


@dataclass
class PeerRow:
    setup: str  # one of SETUPS
    method: str  # what a reader picks: "TextPruner VocabularyPruner, train", "ours int8", ...
    tool: str  # "ours", "textpruner", "optimum", "textbrewer"
    status: str = "measured"
    word_rows: int | None = None  # rows of the word-embedding table (vocabulary pruning's effect)
    unique_parameters: int | None = None
    size_bytes: int | None = None  # the weight files a user ships (safetensors / bin / onnx)
    validation_f1: float | None = None
    test_f1: float | None = None
    test_sentences_per_second: float | None = None  # run_ner_predict on the test file, end to end
    seconds: float | None = None  # wall time of the row: making the model and scoring it
    model_path: str | None = None  # what run_ner_predict read
    note: str = ""  # the adapter written, the choice made on validation, or the reason there is no figure
    extra: dict = field(default_factory=dict)  # tool-specific figures (a pipeline's sentences/s, versions)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} must be one of {STATUSES}")
        if self.setup not in SETUPS:
            raise ValueError(f"setup {self.setup!r} must be one of {SETUPS}")
        if self.status != "measured" and not self.note:
            raise ValueError(f"row {self.method!r} is {self.status}: its note must say why")


def save_rows(rows: list[PeerRow], path: str) -> None:
    """The rows as JSON, written as every results file is (``runtime.atomic``: never half a file)."""
    write_text_atomic(path, json.dumps([dataclasses.asdict(row) for row in rows], indent=1) + "\n")


def load_rows(path: str) -> list[PeerRow]:
    with open(path, encoding="utf-8") as f:
        return [PeerRow(**entry) for entry in json.load(f)]


def teacher_row(rows: list[PeerRow]) -> PeerRow:
    teachers = [row for row in rows if row.setup == "teacher" and row.status == "measured"]
    if len(teachers) != 1:
        raise ValueError(f"the table needs exactly one measured teacher row, found {len(teachers)}")
    return teachers[0]


def _number(value, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


COLUMNS = ("setup", "method", "tool", "word rows", "unique params", "size on disk (MB)", "validation F1",
           "test F1", "Δ test F1 (points)", "retention", "sent/s", "throughput vs teacher", "row time (s)", "notes")


def format_table(rows: list[PeerRow]) -> str:
    """The Markdown table: every row in the given order; a row without figures shows its status and reason."""
    teacher = teacher_row(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * (len(COLUMNS) - 4) + "---|"]
    for row in rows:
        measured = row.status == "measured"
        delta = retention = speed_ratio = None
        if measured and row.test_f1 is not None and teacher.test_f1:
            delta = 100 * (row.test_f1 - teacher.test_f1)
            retention = 100 * row.test_f1 / teacher.test_f1
        if measured and row.test_sentences_per_second and teacher.test_sentences_per_second:
            speed_ratio = row.test_sentences_per_second / teacher.test_sentences_per_second
        note = row.note if measured else f"**{row.status}**: {row.note}"
        cells = [row.setup, row.method, row.tool, _number(row.word_rows, ","), _number(row.unique_parameters, ","),
                 _number(None if row.size_bytes is None else row.size_bytes / 1e6, ".2f"),
                 _number(row.validation_f1, ".4f"), _number(row.test_f1, ".4f"),
                 "—" if delta is None else f"{delta:+.2f}", "—" if retention is None else f"{retention:.2f}%",
                 _number(row.test_sentences_per_second, ".0f"),
                 "—" if speed_ratio is None else f"{speed_ratio:.2f}x", _number(row.seconds, ".0f"),
                 note.replace("|", "\\|").replace("\n", " ")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
