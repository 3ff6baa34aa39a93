#!/usr/bin/env python
"""Run-to-run spread of one recipe: train it with several seeds and report mean ± spread of its F1.

    python benchmarks/seed_spread.py --output_dir spread --model_name_or_path /tmp/minilm \\
        --train_file train.txt --validation_file valid.txt --test_file test.txt            # 5× recipe, seeds 42-44
    python benchmarks/seed_spread.py --output_dir spread --quickstart --epochs 1 --row best10_low_rank

Every seed is one ``benchmarks/compare.py`` comparison restricted to ``--row``, in ``<output_dir>/seed<N>``, so the
row's flags, the teacher step and resuming are exactly compare.py's (any compare.py flag passes through). The
teacher is trained once, with the first seed, and shared by every seed (``--vary_teacher`` trains one per seed):
the spread is then the compressed recipe's own, not the teacher's. The table goes to stdout and to
``<output_dir>/SEED_SPREAD.md``; the numbers to ``seed_spread.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import compare  # noqa: E402
from trainers.results import RunResults  # noqa: E402

logger = logging.getLogger("seed_spread")

# the 5× recipe of run 1's targets in docs/results.md (pruned vocabulary, E=128, rank-48 layers, KD)
FIVE_X_ROW = "best_low_rank"
METRICS = ("validation_f1", "test_f1", "f1_retention")


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--row", default=FIVE_X_ROW, choices=compare.ROW_NAMES, help="The recipe (a compare.py row).")
    parser.add_argument("--seeds", default="42,43,44", help="Comma-separated seeds (at least 2).")
    parser.add_argument("--vary_teacher", action="store_true", help="Train a teacher per seed instead of sharing one.")
    args, rest = parser.parse_known_args(argv)
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: expected comma-separated integers")
    if len(args.seeds) < 2 or len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {args.seeds}: give at least two different seeds")
    if "--seed" in rest or "--rows" in rest or "--output_dir" in rest:
        parser.error("--seed, --rows and --output_dir are set per seed by this script")
    return args, rest


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation and range of one metric over the seeds."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values), "min": min(values), "max": max(values),
            "values": values}


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args, compare_argv = parse_args(argv)
    root = Path(args.output_dir)
    runs = {}
    for seed in args.seeds:
        seed_dir = root / f"seed{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        first = root / f"seed{args.seeds[0]}" / "teacher"
        if not args.vary_teacher and seed != args.seeds[0] and not (seed_dir / "teacher").exists():
            os.symlink(first.resolve(), seed_dir / "teacher")  # compare.py finds the teacher's results.json there
        compare_args = compare.parse_args([*compare_argv, "--output_dir", str(seed_dir), "--seed", str(seed),
                                           "--rows", args.row])
        outcome = compare.run_rows(compare_args)
        if outcome["failed"]:
            raise SystemExit(f"seed {seed}: {outcome['failed']} failed; see {seed_dir / 'logs'}")
        runs[seed] = RunResults.load(seed_dir / args.row / "results.json").to_dict()
    summary = {metric: spread([runs[s][metric] for s in args.seeds]) for metric in METRICS
               if all(runs[s].get(metric) is not None for s in args.seeds)}
    report = {"row": args.row, "seeds": args.seeds, "shared_teacher": not args.vary_teacher, "metrics": summary}
    with open(root / "seed_spread.json", "w") as f:
        json.dump(report, f, indent=2)
    table = markdown(report)
    (root / "SEED_SPREAD.md").write_text(table + "\n")
    print(table)
    return report


def markdown(report: dict) -> str:
    lines = [f"Row `{report['row']}`, seeds {', '.join(map(str, report['seeds']))} "
             f"({'one shared teacher' if report['shared_teacher'] else 'a teacher per seed'}):", "",
             "| metric | mean ± std | min | max | per seed |", "|---|---|---|---|---|"]
    for metric, s in report["metrics"].items():
        per_seed = ", ".join(f"{v:.4f}" for v in s["values"])
        lines.append(f"| {metric} | {s['mean']:.4f} ± {s['std']:.4f} | {s['min']:.4f} | {s['max']:.4f} | {per_seed} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
