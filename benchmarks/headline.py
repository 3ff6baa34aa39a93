#!/usr/bin/env python
"""The README's headline table in one command: the teacher and every named recipe, trained (or reused) on one
teacher, each exported to int8 ONNX, timed against the teacher, and written as one table.

    python benchmarks/headline.py --output_dir headline --transfer_file sentences.txt.gz         # Hub defaults
    python benchmarks/headline.py --output_dir headline --model_name_or_path <MiniLM folder> \\
        --train_file train.txt --validation_file valid.txt --test_file test.txt \\
        --transfer_file sentences.txt.gz --max_transfer_samples 60000 --readme README.md
    python benchmarks/headline.py --output_dir headline --table_only --readme README.md          # rewrite the table

The rows are compare.py's: ``teacher`` (the teacher recipe, ``modeling.recipes.FINETUNE_TRAINING``: 4 epochs at
lr 1e-4, batch 32, best epoch on validation) and every experiment row that names a recipe of
``modeling.recipes.NAMED_RECIPES`` (``best_shared_tr`` is ``--recipe 5x``, ``best10_shared_pos_hlr_tr`` is
``--recipe 10x``), each with its own schedule and ``--export_onnx --quantize int8``. A row whose ``results.json``
exists is reused, so a rerun only rebuilds the table. Every other flag goes to compare.py (its data, transfer and
``--row_args`` flags).

The table's columns: unique parameters and the ratio to the teacher; the int8 ONNX file's size on disk; CPU
throughput of ``run_ner_predict`` on the test file, the row's int8 file against the teacher's fp32 PyTorch folder,
the median of ``--rounds`` rounds (``benchmarks/predict_speed.py``'s timing); validation and test F1, the test
F1's retention of the teacher, and the training time. The table goes to ``<output_dir>/HEADLINE.md`` and, with
``--readme``, replaces the text between the README's two ``headline`` markers.

Time, measured with this repository's rows (MiniLM teacher, full CoNLL-2003, the 60,000-sentence transfer pool):
on 2 CPU cores the teacher trains in about 45 minutes and ``--recipe 10x`` in about an hour
(``results/cpu_full``); ``--recipe 5x`` is a full-width shared layer, the teacher's arithmetic per step, on twice
the sentences a step with the transfer set: about 2 hours, estimated from its 1-epoch run without the transfer set
(16 minutes, ``results/cpu_recipes/recipe_5x_1ep``) times 4 epochs times 2. On one H100, run 3 trained its teacher
and nine such rows in 582 s (``results/gpu_h100/run3``, ``benchmarks/gpu_transfer.sh``).
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import compare  # noqa: E402
from benchmarks.predict_speed import onnx_files, predict_command, time_rounds  # noqa: E402
from benchmarks.speed import CONLL_TEST  # noqa: E402
from modeling.recipes import FINETUNE_TRAINING, NAMED_RECIPES, SELECTION_FLAGS  # noqa: E402
from runtime.atomic import write_text_atomic  # noqa: E402
from trainers.results import RunResults  # noqa: E402

logger = logging.getLogger("headline")


def recipe_rows() -> tuple[str, ...]:
    """For each named recipe, the first row that runs it as it is (a row with more flags, a seed say, is a variant)."""
    first = {}
    for row in compare.ROWS:
        if row.recipe in NAMED_RECIPES and not row.flags:
            first.setdefault(row.recipe, row.name)
    return tuple(first.values())


HEADLINE_ROWS = ("teacher", *recipe_rows())
EXPORT_FLAGS = "--export_onnx --quantize int8"
START, END = "<!-- headline table: benchmarks/headline.py -->", "<!-- /headline table -->"
# compare.py flags this script sets: the rows, and the teacher recipe unless given
OWN_FLAGS = ("--rows",)
TEACHER_DEFAULTS = {"--teacher_epochs": FINETUNE_TRAINING.num_train_epochs,
                    "--teacher_learning_rate": FINETUNE_TRAINING.learning_rate,
                    "--teacher_batch_size": FINETUNE_TRAINING.labelled_batch_size}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, argparse.Namespace]:
    """This script's flags, and compare.py's arguments for the headline rows (every other flag goes there)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="Where the rows train (cpu: --use_cpu; cuda: both recipes at once after the teacher). "
                             "Throughput is always timed on the CPU.")
    parser.add_argument("--rounds", type=int, default=3, help="Timing rounds of run_ner_predict (median and range).")
    parser.add_argument("--speed_file", type=Path,
                        help="CoNLL file to time run_ner_predict on (default: --test_file, else the shared CoNLL-2003 "
                             "test file).")
    parser.add_argument("--readme", type=Path, help=f"Also replace the table between {START} and {END} here.")
    args, rest = parser.parse_known_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds} must be at least 1")
    given = [flag for flag in OWN_FLAGS if any(token.split("=")[0] == flag for token in rest)]
    if given:
        parser.error(f"{given[0]} is set by this script: the rows are {', '.join(HEADLINE_ROWS)}")
    if args.readme is not None:
        check_markers(args.readme, parser)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: torch sees no GPU here")
    defaults = [item for flag, value in TEACHER_DEFAULTS.items() if flag not in rest for item in (flag, str(value))]
    if args.device == "cuda" and "--parallel" not in rest:
        defaults += ["--parallel", str(len(HEADLINE_ROWS) - 1)]
    compare_args = compare.parse_args([*defaults, *rest, "--rows", ",".join(HEADLINE_ROWS)])
    selection = " ".join(f"--{key} {value}" for key, value in SELECTION_FLAGS.items()
                         if key in ("load_best_model_at_end", "metric_for_best_model"))
    device = "--use_cpu True" if args.device == "cpu" else ""
    compare_args.extra = " ".join(part for part in (EXPORT_FLAGS, selection, device, compare_args.extra) if part)
    args.speed_file = args.speed_file or (Path(compare_args.test_file) if compare_args.test_file else CONLL_TEST)
    if not args.speed_file.is_file():
        parser.error(f"--speed_file {args.speed_file}: no such file (a CoNLL file to time run_ner_predict on)")
    if compare_args.table_only:
        missing = [name for name in HEADLINE_ROWS if not compare.is_done(Path(compare_args.output_dir), name)]
        if missing:
            parser.error(f"--table_only: {Path(compare_args.output_dir) / missing[0] / 'results.json'} is missing "
                         f"(the row {missing[0]} has not finished; run without --table_only)")
    return args, compare_args


def check_markers(readme: Path, parser: argparse.ArgumentParser) -> None:
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as err:
        parser.error(f"--readme {readme}: {err.strerror}")
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        parser.error(f"--readme {readme}: expected one {START} line, then one {END} line")


def load_rows(output_dir: Path) -> dict[str, dict]:
    """Each headline row's results.json, in today's layout."""
    return {name: RunResults.load(str(output_dir / name / "results.json")).to_dict() for name in HEADLINE_ROWS}


def measure_int8(output_dir: Path, speed_file: Path, rounds: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Per row, the ratio of its int8 file's sentences/s to the teacher's fp32 PyTorch folder's, one per round, and
    that file's size in bytes. The file is the row's own ``onnx/model_int8.onnx``, else one exported and quantized
    here (a row trained without ``--export_onnx``, e.g. on a GPU run)."""
    with tempfile.TemporaryDirectory(prefix="headline-") as scratch_name:
        scratch = Path(scratch_name)
        commands = {("teacher", "PyTorch fp32"): predict_command(output_dir / "teacher", speed_file, scratch / "out",
                                                                 32)}
        sizes = {}
        for name in HEADLINE_ROWS:
            _, int8 = onnx_files(output_dir / name, scratch / "onnx" / name)
            sizes[name] = Path(int8).stat().st_size
            commands[name, "ONNX int8"] = predict_command(int8, speed_file, scratch / "out", 32)
        speeds = time_rounds(commands, rounds)
    base = speeds["teacher", "PyTorch fp32"]
    ratios = {name: [int8 / ref for int8, ref in zip(speeds[name, "ONNX int8"], base)] for name in HEADLINE_ROWS}
    return ratios, sizes


def row_label(name: str) -> str:
    recipe = next((row.recipe for row in compare.ROWS if row.name == name and row.recipe), None)
    return f"`--recipe {recipe}` (`{name}`)" if recipe else "teacher"


def fmt(value: float | None, pattern: str, missing: str = "n/a") -> str:
    return missing if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, pattern)


def headline_table(rows: dict[str, dict], throughput: dict[str, list[float]], sizes: dict[str, int]) -> str:
    """The Markdown table: one line per row, the teacher first (the reference of every ratio)."""
    teacher = rows["teacher"]
    lines = ["| model | unique params | compression | int8 on disk | CPU throughput vs teacher | validation F1 | "
             "test F1 | retention | train (min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        ratios = throughput.get(name, [])
        speed = f"{statistics.median(ratios):.2f}×" if ratios else "n/a"
        if len(ratios) > 1:
            speed += f" ({min(ratios):.2f}–{max(ratios):.2f})"
        size = sizes.get(name)
        retention = r["test_f1"] / teacher["test_f1"] if teacher.get("test_f1") else None
        train = r.get("train_runtime_s")
        lines.append(" | ".join([
            f"| {row_label(name)}", f"{r['num_parameters']:,}",
            f"{teacher['num_parameters'] / r['num_parameters']:.2f}×",
            f"{size / 1e6:.2f} MB" if size else "n/a", speed, fmt(r.get("validation_f1"), ".4f"),
            fmt(r.get("test_f1"), ".4f"), fmt(retention, ".1%"), fmt(train / 60 if train else None, ".0f"),
        ]) + " |")
    return "\n".join(lines)


def report(rows: dict[str, dict], throughput: dict[str, list[float]], sizes: dict[str, int],
           compare_args: argparse.Namespace, rounds: int, speed_file: Path) -> str:
    teacher = rows["teacher"]
    source = teacher.get("source_model") or compare_args.model_name_or_path or "the default model"
    training = (teacher.get("arguments") or {}).get("training") or {}
    schedule = ", ".join(f"{label} {training[key]:g}" for key, label in (
        ("num_train_epochs", "epochs"), ("learning_rate", "lr"), ("per_device_train_batch_size", "batch"))
        if isinstance(training.get(key), (int, float)))
    notes = [
        f"One teacher for every row: `{source}` fine-tuned ({schedule or 'schedule not recorded'}; test F1 "
        f"{teacher['test_f1']:.4f}); each row keeps its best epoch on validation F1 where it evaluated every "
        "epoch; test read once.",
        f"Throughput: run_ner_predict on {speed_file.name}, the row's int8 ONNX file against the teacher's fp32 "
        f"PyTorch folder, median of {rounds} round(s) (range in brackets), CPU; int8 on disk: that file.",
        "Made by `python benchmarks/headline.py " + shlex.join(sys.argv[1:]) + "`.",
    ]
    return "\n".join([headline_table(rows, throughput, sizes), "", *(f"- {note}" for note in notes)])


def replace_between_markers(readme: Path, table: str) -> None:
    text = readme.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    write_text_atomic(str(readme), f"{head}{START}\n{table}\n{END}{tail}")


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args, compare_args = parse_args(argv)
    output_dir = Path(compare_args.output_dir)
    outcome = {"trained": [], "skipped": [], "failed": []}
    if compare_args.dry_run:
        for row, command in compare.plan(compare_args):
            print(f"# {row.name}\n{shlex.join(['python', 'run_ner_compress.py', *command])}\n")
        return outcome
    if not compare_args.table_only:
        outcome = compare.run_rows(compare_args)
        if outcome["failed"]:
            logger.error("%s failed: see %s", outcome["failed"], output_dir / "logs")
            return outcome
    rows = load_rows(output_dir)
    throughput, sizes = measure_int8(output_dir, args.speed_file, args.rounds)
    text = report(rows, throughput, sizes, compare_args, args.rounds, args.speed_file)
    write_text_atomic(str(output_dir / "HEADLINE.md"), text + "\n")
    if args.readme is not None:
        replace_between_markers(args.readme, text)
    print(text)
    outcome["table"] = text
    return outcome


if __name__ == "__main__":
    compare.exit_with_outcome(main, "headline.py")
