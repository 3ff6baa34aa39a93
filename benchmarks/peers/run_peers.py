#!/usr/bin/env python
"""Peers benchmark: other tools run on OUR teacher, scored and timed the same way, written as one Markdown table.

    python benchmarks/peers/run_peers.py --teacher /work/cpu_run/full/teacher \
        --output results/peers/TABLE.md --rows_json results/peers/rows.json --work_dir /tmp/peers_work

Setups (issue 26):

- (1) vocabulary pruning: TextPruner's VocabularyPruner against ours (``nearest`` and ``resplit``), on the same
  corpus: the training split, then the training split plus the extra raw text (``--extra_text``, Reuters by
  default); not trained further.
- (2) structured pruning, first part: the smallest model TextPruner makes of the teacher (VocabularyPruner on the
  training split, then TransformerPruner to 1 head and 1 FFN neuron a layer), counted against the 5x recipe's
  unique parameters; where it cannot reach them the row says so (``unreachable``) and nothing is trained. Pruning
  to a size both tools reach, then one KD schedule for both, is a row that says it is not measured yet.
- (3) distillation, only when ``--setups`` names ``distill`` (it trains two students): TextBrewer's
  GeneralDistiller with its recommended settings for a 3-layer student (temperature 8, KD only, L3_hidden_mse +
  L3_hidden_smmd) against our DistillationTrainer with the recipes' (KD T=2, α=0.5, + CE, hidden-state MSE ×1),
  on one student (the recipes' 3-layer student, saved once), one schedule (``--distill_epochs``, batch, learning
  rate, linear decay after 10% warmup, best epoch on validation) and the same training file.
- (4) int8: optimum's dynamic int8 (``ORTQuantizer``) against ours (``export_onnx`` + ``quantize_onnx_int8``).

``--reuse_rows rows.json`` keeps the rows of the setups not run from an earlier table, so one setup can be run
again alone.

Every row ends as a model ``run_ner_predict`` reads, and every row is scored by ``measure.predict_conll``
(``run_ner_predict``'s code, in this process): entity-level F1 on the validation file, then once on the test
file, whose run also gives the sentences/s. Where a peer offers a choice (optimum's per-channel or per-tensor
weights) it is made on validation F1, and only the chosen file reads the test set. A peer runs in its own
virtual environment (``make_venvs.sh``); without one its rows say so and the harness goes on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.peers import measure, ours  # noqa: E402
from benchmarks.peers.peer_venvs import DEFAULT_VENVS, ERROR_LINES, run_peer_script  # noqa: E402
from benchmarks.peers.rows import SETUPS, PeerRow, format_table, load_rows, save_rows  # noqa: E402
from benchmarks.report import emit  # noqa: E402
from modeling import SettingError  # noqa: E402

CONLL_DIR = REPO.parent / "shared" / "data" / "conll2003"
REUTERS = REPO.parent / "shared" / "data" / "reuters21578" / "sentences.txt.gz"
SETUP_CHOICES = ("vocab", "structured", "distill", "int8")
DISTILL_MAX_LENGTH = 128  # training pieces per sentence for both distillers (TextBrewer's CoNLL-2003 example)
DEFAULT_SETUPS = ("vocab", "structured", "int8")  # distill trains two students: asked for by name
SETUP_OF_CHOICE = {"vocab": "vocabulary pruning", "structured": "structured pruning", "distill": "distillation",
                   "int8": "int8"}


def not_measured_yet(floor_counted: bool, distilled: bool) -> list[PeerRow]:
    """Rows that need fine-tuning runs on one schedule, a later part of issue 26 (and the smallest TextPruner model's
    size, until a row counts it)."""
    rows = []
    if not floor_counted:
        rows.append(PeerRow(setup="structured pruning", method="TextPruner TransformerPruner, sized to the 5x recipe",
                            tool="textpruner", status="not measured yet",
                            note="--setups structured counts the smallest model TextPruner makes"))
    rows.append(PeerRow(setup="structured pruning", method="TextPruner TransformerPruner + KD vs ours, at a size "
                        "both reach", tool="textpruner", status="not measured yet",
                        note="a KD fine-tuning run per tool on one schedule (issue 26, a later part)"))
    if distilled:
        return rows
    return rows + [
        PeerRow(setup="distillation", method="TextBrewer GeneralDistiller", tool="textbrewer",
                status="not measured yet", note="--setups distill trains it (two students: minutes to hours)"),
        PeerRow(setup="distillation", method="ours, DistillationTrainer", tool="ours", status="not measured yet",
                note="--setups distill trains it beside TextBrewer's"),
    ]


def scored_row(row: PeerRow, model: str, files: dict[str, str], batch_size: int) -> PeerRow:
    """Validation F1, then test F1 and sentences/s, of ``model`` into ``row``."""
    row.validation_f1 = measure.predict_conll(model, files["validation"], batch_size).f1
    test = measure.predict_conll(model, files["test"], batch_size)
    row.test_f1, row.test_sentences_per_second, row.model_path = test.f1, test.sentences_per_second, model
    row.size_bytes = measure.size_on_disk(model)
    print(f"peers: {row.method}: validation {row.validation_f1}, test {row.test_f1}, "
          f"{row.test_sentences_per_second} sentences/s", file=sys.stderr)
    return row


def failed_row(row: PeerRow, status: str, reason: str, seconds: float | None = None) -> PeerRow:
    row.status, row.note, row.seconds = status, reason, seconds
    print(f"peers: {row.method}: {status}: {reason}", file=sys.stderr)
    return row


def counted(row: PeerRow, folder: str) -> PeerRow:
    row.unique_parameters, row.word_rows = measure.model_counts(folder)
    return row


def teacher_rows(args, files) -> list[PeerRow]:
    started = time.perf_counter()
    row = counted(PeerRow(setup="teacher", method="teacher (fp32, PyTorch)", tool="ours"), str(args.teacher))
    scored_row(row, str(args.teacher), files, args.batch_size)
    row.seconds = time.perf_counter() - started
    return [row]


def corpus_text_file(records: list[dict], path: Path) -> Path:
    """The training split as raw text, one sentence a line (words joined by spaces), for tools that read text."""
    path.write_text("".join(" ".join(r["tokens"]) + "\n" for r in records), encoding="utf-8")
    return path


def vocabulary_rows(args, files, train_records) -> list[PeerRow]:
    rows = []
    train_text = corpus_text_file(train_records, args.work_dir / "train_sentences.txt")
    corpora = [("train", [])] + [("train + " + (args.extra_text_name or Path(p).name), [str(p)])
                                 for p in args.extra_text]
    for corpus, extra in corpora:
        slug = corpus.replace(" + ", "_").replace(" ", "_").replace(".", "_")
        for unseen in ("nearest", "resplit"):
            started = time.perf_counter()
            row = PeerRow(setup="vocabulary pruning", method=f"ours, unseen={unseen}, corpus: {corpus}", tool="ours")
            folder = args.work_dir / f"ours_{unseen}_{slug}"
            ours.prune_ours(str(args.teacher), str(folder), [r["tokens"] for r in train_records], extra, unseen)
            counted(row, str(folder))
            scored_row(row, str(folder), files, args.batch_size)
            row.seconds = time.perf_counter() - started
            rows.append(row)
        row = PeerRow(setup="vocabulary pruning", method=f"TextPruner VocabularyPruner, corpus: {corpus}",
                      tool="textpruner")
        folder = args.work_dir / f"textpruner_{slug}"
        started = time.perf_counter()
        outcome = run_peer_script("textpruner", "peer_textpruner.py",
                                  ["--teacher", str(args.teacher), "--output_dir", str(folder),
                                   "--text", str(train_text), *sum((["--text", p] for p in extra), [])],
                                  args.peer_venvs)
        if outcome.status != "measured":
            rows.append(failed_row(row, outcome.status, outcome.reason, outcome.seconds or None))
            continue
        row.note = "; ".join(part for part in (outcome.result.get("note", ""), outcome.install_note) if part)
        row.extra = outcome.result
        try:
            counted(row, outcome.result["model_dir"])
            scored_row(row, outcome.result["model_dir"], files, args.batch_size)
        except Exception as err:  # its folder does not load or run with the project's transformers
            rows.append(failed_row(row, "failed", f"run_ner_predict could not use TextPruner's folder: {err}"))
            continue
        row.seconds = time.perf_counter() - started
        rows.append(row)
    return rows


def structured_rows(args, train_records, teacher: PeerRow) -> list[PeerRow]:
    """TextPruner's smallest model of the teacher against the 5x recipe's size: reachable or not, counted."""
    train_text = corpus_text_file(train_records, args.work_dir / "train_sentences.txt")
    row = PeerRow(setup="structured pruning", method="TextPruner VocabularyPruner (train) + TransformerPruner, "
                  "smallest: 1 head and 1 FFN neuron a layer", tool="textpruner")
    started = time.perf_counter()
    outcome = run_peer_script("textpruner", "peer_textpruner_structured.py",
                              ["--teacher", str(args.teacher), "--text", str(train_text), "--heads", "1",
                               "--ffn_size", "1", "--output_dir", str(args.work_dir / "textpruner_structured")],
                              args.peer_venvs)
    if outcome.status != "measured":
        return [failed_row(row, outcome.status, outcome.reason, outcome.seconds or None)]
    result = outcome.result
    row.unique_parameters, row.word_rows, row.extra = result["unique_params"], result["word_rows"], result
    row.seconds = time.perf_counter() - started
    table = result["word_rows"] * result["hidden_size"]
    ratio = teacher.unique_parameters / result["unique_params"]
    try:
        budget = ours.recipe_parameters(str(args.teacher), "5x")
    except SettingError as err:  # a teacher too small for the recipe's settings (a tiny test model)
        row.note = f"smallest model {ratio:.2f}x; the 5x recipe does not build on this teacher: {err}"
        return [row]
    if result["unique_params"] > budget:
        row.status = "unreachable"
        row.note = (f"the 5x recipe's {budget:,} unique parameters are out of TextPruner's reach on this teacher: it "
                    f"prunes attention heads and FFN neurons, not the hidden size, so its smallest model "
                    f"({result['unique_params']:,}, {ratio:.2f}x) keeps a {result['word_rows']:,} x "
                    f"{result['hidden_size']} word table, {table:,} parameters alone ({table / budget:.2f}x the "
                    "whole 5x model); not trained, so no F1")
    else:
        row.note = f"smallest model {ratio:.2f}x, within the 5x budget ({budget:,}): not trained here"
    if outcome.install_note:
        row.note += "; " + outcome.install_note
    print(f"peers: {row.method}: {row.unique_parameters:,} unique parameters (5x: {budget:,})", file=sys.stderr)
    return [row]


def distillation_rows(args, files) -> list[PeerRow]:
    """One student, one schedule, two distillers: ours (run_ner_compress.py) and TextBrewer's GeneralDistiller."""
    start = ours.student_init(str(args.teacher), str(args.work_dir / "student_init"), args.distill_student_layers)
    schedule = {"epochs": args.distill_epochs, "batch_size": args.distill_batch_size,
                "learning_rate": args.distill_learning_rate, "warmup": 0.1}
    described = (f"{args.distill_student_layers}-layer student from the teacher's layers, {schedule['epochs']} "
                 f"epochs, batch {schedule['batch_size']}, lr {schedule['learning_rate']:g}, linear decay after 10% "
                 f"warmup, {DISTILL_MAX_LENGTH} pieces a sentence, best epoch on validation")
    subset = ["--max_train_samples", str(args.distill_max_train_samples)] if args.distill_max_train_samples else []
    rows = []

    row = PeerRow(setup="distillation", method="ours, DistillationTrainer (KD T=2 α=0.5 + CE, hidden MSE)",
                  tool="ours")
    folder = args.work_dir / "ours_distilled"
    started = time.perf_counter()
    command = [sys.executable, str(REPO / "run_ner_compress.py"), "--model_name_or_path", start,
               "--model_type", "finetune", "--teacher_name_or_path", str(args.teacher), "--hidden_loss_weight", "1.0",
               "--train_file", str(args.train_file), "--validation_file", files["validation"], *subset,
               "--max_seq_length", str(DISTILL_MAX_LENGTH),
               "--num_train_epochs", str(schedule["epochs"]), "--per_device_train_batch_size",
               str(schedule["batch_size"]), "--learning_rate", str(schedule["learning_rate"]),
               "--warmup_steps", str(schedule["warmup"]), "--eval_strategy", "epoch", "--save_strategy", "epoch",
               "--save_total_limit", "1", "--load_best_model_at_end", "True", "--metric_for_best_model", "f1",
               "--report_to", "none", "--disable_tqdm", "True", "--output_dir", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        tail = " / ".join(line for line in done.stderr.splitlines()[-ERROR_LINES:] if line.strip())
        rows.append(failed_row(row, "failed", f"run_ner_compress.py exited {done.returncode}: {tail}"))
    else:
        counted(row, str(folder))
        scored_row(row, str(folder), files, args.batch_size)
        row.seconds, row.note = time.perf_counter() - started, described
        rows.append(row)

    layers = args.distill_student_layers
    row = PeerRow(setup="distillation", method=f"TextBrewer GeneralDistiller (T=8, KD, L{layers}_hidden_mse + "
                  f"L{layers}_hidden_smmd)", tool="textbrewer")
    started = time.perf_counter()
    outcome = run_peer_script("textbrewer", "peer_textbrewer.py",
                              ["--teacher", str(args.teacher), "--student", start, "--train_file",
                               str(args.train_file), "--validation_file", files["validation"],
                               "--epochs", str(schedule["epochs"]), "--batch_size", str(schedule["batch_size"]),
                               "--learning_rate", str(schedule["learning_rate"]), "--warmup", str(schedule["warmup"]),
                               "--max_seq_length", str(DISTILL_MAX_LENGTH),
                               "--output_dir", str(args.work_dir / "textbrewer_distilled"), *subset],
                              args.peer_venvs)
    if outcome.status != "measured":
        return rows + [failed_row(row, outcome.status, outcome.reason, outcome.seconds or None)]
    row.extra = outcome.result
    try:
        counted(row, outcome.result["model_dir"])
        scored_row(row, outcome.result["model_dir"], files, args.batch_size)
    except Exception as err:  # its folder does not load or run with the project's transformers
        return rows + [failed_row(row, "failed", f"run_ner_predict could not use TextBrewer's folder: {err}")]
    row.seconds = time.perf_counter() - started
    row.note = "; ".join(part for part in (described, "adapters: labels on first pieces; best epoch by the "
                                           "callback's validation F1", outcome.install_note) if part)
    return rows + [row]


def int8_rows(args, files, teacher: PeerRow) -> list[PeerRow]:
    started = time.perf_counter()
    row = PeerRow(setup="int8", method="ours, export_onnx + quantize_onnx_int8 (dynamic, per-channel)", tool="ours",
                  unique_parameters=teacher.unique_parameters, word_rows=teacher.word_rows,
                  note="unique params: the fp32 source's (stored as int8)")
    model = ours.int8_ours(str(args.teacher), str(args.work_dir / "ours_int8"))
    scored_row(row, model, files, args.batch_size)
    row.seconds = time.perf_counter() - started
    rows = [row]

    row = PeerRow(setup="int8", method="optimum ORTQuantizer, dynamic int8", tool="optimum",
                  unique_parameters=teacher.unique_parameters, word_rows=teacher.word_rows)
    started = time.perf_counter()
    outcome = run_peer_script("optimum", "peer_optimum.py",
                              ["--teacher", str(args.teacher), "--output_dir", str(args.work_dir / "optimum_int8"),
                               "--test_file", files["test"], "--other_onnx", f"ours int8={model}"], args.peer_venvs)
    if outcome.status != "measured":
        return rows + [failed_row(row, outcome.status, outcome.reason, outcome.seconds or None)]
    try:
        # optimum offers per-tensor and per-channel weights: the choice is made on validation F1
        candidates = {name: measure.predict_conll(path, files["validation"], args.batch_size).f1
                      for name, path in outcome.result["quantized"].items()}
        chosen = max(candidates, key=candidates.get)
        scored_row(row, outcome.result["quantized"][chosen], files, args.batch_size)
    except Exception as err:  # its file does not load or run in run_ner_predict
        return rows + [failed_row(row, "failed", f"run_ner_predict could not use optimum's file: {err}")]
    row.method += f" ({chosen})"
    row.extra = dict(outcome.result, validation_f1_by_choice=candidates)
    pipeline = outcome.result.get("pipeline_sentences_per_second", {})
    through_pipeline = "optimum's pipeline on the test sentences: " + ", ".join(
        f"{k} {v:.0f} sent/s" for k, v in pipeline.items())
    row.note = (f"chosen on validation F1 among {', '.join(f'{k} {v:.4f}' for k, v in candidates.items())}; "
                f"unique params: the fp32 source's; {through_pipeline}")
    rows[0].note += f"; {through_pipeline}"
    if outcome.install_note:
        row.note += "; " + outcome.install_note
    row.seconds = time.perf_counter() - started
    return rows + [row]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True, help="The fine-tuned teacher's saved folder.")
    parser.add_argument("--train_file", type=Path, default=CONLL_DIR / "train.txt")
    parser.add_argument("--validation_file", type=Path, default=CONLL_DIR / "valid.txt")
    parser.add_argument("--test_file", type=Path, default=CONLL_DIR / "test.txt")
    parser.add_argument("--extra_text", type=Path, action="append", default=None,
                        help="Raw text for the second pruning corpus (repeat; default: the Reuters sentences).")
    parser.add_argument("--extra_text_name", default=None, help="Its name in the table (default: Reuters).")
    parser.add_argument("--setups", default=",".join(DEFAULT_SETUPS), help=f"Comma-separated, of {SETUP_CHOICES}.")
    parser.add_argument("--distill_student_layers", type=int, default=3)
    parser.add_argument("--distill_epochs", type=int, default=2, help="TextBrewer's CoNLL-2003 example: 2.")
    parser.add_argument("--distill_batch_size", type=int, default=32)
    parser.add_argument("--distill_learning_rate", type=float, default=1e-4)
    parser.add_argument("--distill_max_train_samples", type=int, default=0, help="First N training sentences (0: all).")
    parser.add_argument("--peer_venvs", type=Path, default=DEFAULT_VENVS,
                        help="Where make_venvs.sh built the peers' environments (<dir>/<peer>).")
    parser.add_argument("--work_dir", type=Path, required=True, help="Where the rows' models are written.")
    parser.add_argument("--batch_size", type=int, default=32, help="run_ner_predict's --batch_size.")
    parser.add_argument("--output", type=Path, help="Also write the Markdown table here.")
    parser.add_argument("--rows_json", type=Path, help="Also write the rows as JSON here.")
    parser.add_argument("--reuse_rows", type=Path,
                        help="An earlier rows.json: its teacher row and the rows of the setups not run are kept.")
    args = parser.parse_args(argv)
    for flag in ("teacher", "train_file", "validation_file", "test_file", "peer_venvs", "work_dir"):
        setattr(args, flag, getattr(args, flag).resolve())  # the peers run in a scratch folder
    if args.extra_text is None:
        args.extra_text, args.extra_text_name = [REUTERS], args.extra_text_name or "Reuters"
    args.setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    unknown = set(args.setups) - set(SETUP_CHOICES)
    if unknown:
        parser.error(f"--setups: unknown {sorted(unknown)}; choose from {SETUP_CHOICES}")
    if not (args.teacher / "config.json").is_file():
        parser.error(f"--teacher {args.teacher}: no saved model there (no config.json)")
    for flag in ("train_file", "validation_file", "test_file"):
        if not getattr(args, flag).is_file():
            parser.error(f"--{flag} {getattr(args, flag)}: no such file")
    if args.reuse_rows is not None and not args.reuse_rows.is_file():
        parser.error(f"--reuse_rows {args.reuse_rows}: no such file")
    args.extra_text = [path.resolve() for path in args.extra_text]
    for path in args.extra_text:
        if not path.is_file():
            parser.error(f"--extra_text {path}: no such file")
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    import export.onnx_export  # noqa: F401  (torch, transformers and the model types: loaded before any row's clock)
    from runtime.formats import read_conll

    args.work_dir.mkdir(parents=True, exist_ok=True)
    files = {"validation": str(args.validation_file), "test": str(args.test_file)}
    kept = load_rows(str(args.reuse_rows)) if args.reuse_rows else []
    rows = [row for row in kept if row.setup == "teacher"] or teacher_rows(args, files)
    train_records = read_conll(str(args.train_file)) if {"vocab", "structured"} & set(args.setups) else []
    made = {
        "vocab": lambda: vocabulary_rows(args, files, train_records),
        "structured": lambda: structured_rows(args, train_records, rows[0]),
        "distill": lambda: distillation_rows(args, files),
        "int8": lambda: int8_rows(args, files, rows[0]),
    }
    by_setup = {setup: [row for row in kept if row.setup == setup] for setup in SETUPS if setup != "teacher"}
    for choice in args.setups:
        by_setup[SETUP_OF_CHOICE[choice]] = made[choice]()
    waiting = not_measured_yet(*(any(row.status != "not measured yet" for row in by_setup[setup])
                                 for setup in ("structured pruning", "distillation")))
    for setup in SETUPS[1:]:  # the table's order: each setup's measured rows, then those still to measure
        rows += [row for row in by_setup[setup] if row.status != "not measured yet"]
        rows += [row for row in waiting if row.setup == setup]
    if args.rows_json:
        save_rows(rows, str(args.rows_json))
    return emit(format_table(rows) + "\n", args.output)


if __name__ == "__main__":
    main()
