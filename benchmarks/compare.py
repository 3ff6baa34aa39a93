#!/usr/bin/env python
"""Run the whole comparison: fine-tune a teacher, compress it every way, with and without distillation, and tabulate.

    python benchmarks/compare.py --output_dir cmp                                        # bert-base-cased, CoNLL-2003
    python benchmarks/compare.py --output_dir cmp --quickstart --epochs 2                # bundled MiniLM and demo data
    python benchmarks/compare.py --output_dir cmp --parallel 4                           # 4 rows at once (GPU)
    python benchmarks/compare.py --output_dir cmp --rows teacher,student --row_args student="--student_num_layers 4"
    python benchmarks/compare.py --output_dir cmp --table_only                           # rebuild the table only

Every row, a file in ``benchmarks/experiments/`` (the current rows, run by default) or in its ``history/`` (rows
that reproduce earlier runs, run when ``--rows`` names them), is one run of ``run_ner_compress.py`` in its own
subprocess, into ``<output_dir>/<row>``; its log goes to ``<output_dir>/logs/<row>.log``. The teacher is trained
first, from ``--model_name_or_path``; every other row starts from it (``--model_name_or_path
<output_dir>/teacher``), and the distilled rows also learn from it (``--teacher_name_or_path``). A row whose ``results.json`` exists is not trained
again, so an interrupted comparison resumes where it stopped; delete a row's folder to train it again (after
changing its file, say). At the end ``<output_dir>`` gets RESULTS.md, results.csv and results.png; rows run with
``--prune_vocab``, ``--export_onnx`` or ``--quantize`` add a deployment-variants table to RESULTS.md and
variants.csv.

The pieces: the rows' files and each row's command in ``compare_rows.py``, running them in ``compare_runner.py``, the
tables in ``compare_tables.py`` and the figure in ``compare_plot.py``; this file parses the command line. Their
public names stay importable from here (``from benchmarks.compare import ROWS, collect_rows``).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

try:
    from benchmarks.compare_rows import (  # noqa: E402
        CURRENT_ROWS, DISTILLATION_FLAGS, HISTORY_ROWS, PRUNED, ROW_NAMES, ROWS, Row, merge_flags, plan, row_command,
        row_flags,
    )
except ValueError as err:  # a malformed benchmarks/experiments file: the script says so in one line
    if __name__ != "__main__":
        raise
    sys.exit(f"compare.py: error: {err}")
from benchmarks.compare_runner import (  # noqa: E402
    exit_with_outcome, is_done, prepare_pruned_teacher, run_row, run_rows,
)
from benchmarks.compare_tables import (  # noqa: E402
    COLUMNS, VARIANT_COLUMNS, best_on_validation, collect_rows, collect_variants, describe_settings, write_csv,
    write_markdown, write_tables,
)

__all__ = [
    "COLUMNS", "CURRENT_ROWS", "DISTILLATION_FLAGS", "HISTORY_ROWS", "PRUNED", "ROW_NAMES", "ROWS", "Row",
    "VARIANT_COLUMNS", "best_on_validation",
    "collect_rows", "collect_variants", "describe_settings", "is_done", "main", "merge_flags", "parse_args", "plan",
    "prepare_pruned_teacher", "row_command", "row_flags", "run_row", "run_rows", "write_csv", "write_markdown",
    "write_tables",
]

logger = logging.getLogger("compare")

# Flags whose values are themselves flags ("--bf16"), which argparse would take for options.
FLAG_VALUED = ("--extra", "--row_args", "--best_args")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="One folder per row is made in it, plus the tables.")
    parser.add_argument("--rows", help="Comma-separated rows to run (default the current rows: "
                                       f"{','.join(row.name for row in CURRENT_ROWS)}; the transfer rows only with "
                                       "--transfer_file). The history rows (benchmarks/experiments/history/) run "
                                       f"when named: {','.join(row.name for row in HISTORY_ROWS)}.")
    parser.add_argument("--parallel", type=int, default=1,
                        help="Run up to N rows at once after the teacher (on a GPU the small models leave room).")
    parser.add_argument("--table_only", action="store_true", help="Only rebuild the tables from results.json.")
    parser.add_argument("--dry_run", action="store_true", help="Print each row's command and stop.")

    data = parser.add_argument_group("model and data (passed to every row)")
    data.add_argument("--model_name_or_path", help="The BERT the teacher is fine-tuned from.")
    data.add_argument("--quickstart", action="store_true", help="Bundled MiniLM and demo data, no Hub.")
    data.add_argument("--dataset_name")
    data.add_argument("--dataset_config_name")
    data.add_argument("--train_file")
    data.add_argument("--validation_file")
    data.add_argument("--test_file")
    data.add_argument("--max_seq_length", type=int)
    data.add_argument("--max_train_samples", type=int)
    data.add_argument("--max_eval_samples", type=int)
    data.add_argument("--max_predict_samples", type=int)
    data.add_argument("--transfer_file", nargs="+",
                      help="Unlabelled text for the transfer rows (their teacher predictions are cached once before "
                           "the rows start), also extra pruning text for the pruned teacher.")
    data.add_argument("--max_transfer_samples", type=int)
    data.add_argument("--transfer_cache_dir")

    train = parser.add_argument_group("training (the teacher_ flags for the teacher, the others for every other row)")
    train.add_argument("--teacher_epochs", type=float, default=3.0)
    train.add_argument("--teacher_learning_rate", type=float, default=5e-5)
    train.add_argument("--teacher_batch_size", type=int, default=32)
    train.add_argument("--epochs", type=float, default=5.0, help="Compressed models recover with a longer schedule.")
    train.add_argument("--learning_rate", type=float, default=1e-4)
    train.add_argument("--batch_size", type=int, default=32)
    train.add_argument("--eval_batch_size", type=int, default=64)
    train.add_argument("--eval_strategy", default="epoch")
    train.add_argument("--save_strategy", default="epoch", help="Checkpoints let an interrupted row resume.")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--extra", default="", help='More run_ner_compress.py flags for every row, e.g. "--bf16".')
    train.add_argument("--row_args", action="append", default=[], metavar='ROW="FLAGS"',
                       help='Flags for one row, replacing the same flags of the recipe; repeatable.')
    train.add_argument("--best_args", help="Replace the flags of the 'best' row entirely (default: its file's).")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """compare.py's arguments, checked; ``rows`` becomes a list of row names and ``row_args`` {row: flags}."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    for i in range(len(argv) - 1):
        if argv[i] in FLAG_VALUED:
            argv[i : i + 2] = [f"{argv[i]}={argv[i + 1]}", ""]
    args = parser.parse_args([token for token in argv if token != ""])

    if args.rows is None:
        args.rows = [row.name for row in CURRENT_ROWS if args.transfer_file or not row.transfer]
    else:
        args.rows = [name.strip() for name in args.rows.split(",") if name.strip()]
    unknown = [name for name in args.rows if name not in ROW_NAMES]
    if unknown:
        parser.error(f"--rows: unknown row(s) {unknown}; the rows are {list(ROW_NAMES)}")
    needs_transfer = [row.name for row in ROWS if row.transfer and row.name in args.rows]
    if needs_transfer and not args.transfer_file and not args.table_only:
        parser.error(f"--rows {','.join(needs_transfer)}: these rows need --transfer_file")
    if args.parallel < 1:
        parser.error(f"--parallel {args.parallel} must be at least 1")
    args.row_args = row_overrides(args.row_args, parser)
    return args


def row_overrides(items: list[str], parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """--row_args ROW="FLAGS" (repeatable) as {row: flags}, a row's flags in the order given."""
    overrides = {}
    for item in items:
        name, sep, flags = item.partition("=")
        if not sep or name not in ROW_NAMES:
            parser.error(f'--row_args {item!r}: expected ROW="FLAGS" with ROW one of {list(ROW_NAMES)}')
        overrides[name] = overrides.get(name, []) + shlex.split(flags)
    return overrides


def main(argv: list[str] | None = None) -> dict:
    """Run (or resume) the comparison and write the tables; returns which rows were trained, skipped and failed."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args = parse_args(argv)
    summary = {"trained": [], "skipped": [], "failed": []}
    if args.dry_run:
        for row, command in plan(args):
            print(f"# {row.name}: {row.description}\n{shlex.join(['python', 'run_ner_compress.py', *command])}\n")
        return summary
    if not args.table_only:
        summary = run_rows(args)
        logger.info("trained %s, skipped %s, failed %s", summary["trained"], summary["skipped"], summary["failed"])
    rows = write_tables(args.output_dir)
    print(Path(args.output_dir, "RESULTS.md").read_text())
    summary["rows"] = [row["method"] for row in rows]
    return summary


if __name__ == "__main__":
    exit_with_outcome(main, "compare.py")
