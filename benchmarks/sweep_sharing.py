#!/usr/bin/env python
"""The sharing sweep of issue 15: E, layer groups G, relaxed rank R and its start, against the low-rank family.

    python benchmarks/sweep_sharing.py --output_dir sweep --teacher_dir cmp/teacher \\
        --train_file ../shared/data/conll2003/train.txt --validation_file ../shared/data/conll2003/valid.txt \\
        --test_file ../shared/data/conll2003/test.txt --parallel 6 --extra "--bf16"
    python benchmarks/sweep_sharing.py --output_dir sweep --teacher_dir cmp/teacher --dry_run   # the commands
    python benchmarks/sweep_sharing.py --output_dir sweep --teacher_dir cmp/teacher --table_only

The 2,000-sentence protocol: every point starts from the same fine-tuned teacher (``--teacher_dir``, linked as
``<output_dir>/teacher``), trains on the first 2,000 training sentences with the same schedule and learns from the
teacher (KD, compare.py's ``DISTILLATION_FLAGS``). Points run through compare.py's runner: up to ``--parallel`` at
once, each in ``<output_dir>/<point>``, and a point with a results.json is not run again. Any compare.py flag
(data, schedule, ``--extra``, ``--row_args``) passes through. At the end ``<output_dir>`` gets ``sweep.csv`` and
``sweep.png``: validation F1 against unique parameters, the sharing family and the low-rank family.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from benchmarks import compare  # noqa: E402
from benchmarks.compare_runner import child_env, exit_with_outcome, run_all  # noqa: E402

logger = logging.getLogger("sweep_sharing")

# The protocol's defaults; a flag given on the command line replaces them.
PROTOCOL = ["--max_train_samples", "2000", "--epochs", "10", "--learning_rate", "2e-4", "--batch_size", "32",
            "--eval_strategy", "no", "--save_strategy", "no"]


@dataclass(frozen=True)
class Point:
    """One point of the sweep; ``rank`` is the low-rank family's rank (None for the sharing family)."""

    embedding_size: int
    groups: int = 1
    delta_rank: int = 0
    delta_init: str = "zero"
    rank: int | None = None

    @property
    def family(self) -> str:
        return "low rank" if self.rank is not None else "sharing"

    @property
    def name(self) -> str:
        if self.rank is not None:
            return f"sweep_lr_e{self.embedding_size}_r{self.rank}"
        relaxed = f"_r{self.delta_rank}_{self.delta_init}" if self.delta_rank else "_r0"
        return f"sweep_e{self.embedding_size}_g{self.groups}{relaxed}"

    def row(self) -> compare.Row:
        if self.rank is not None:
            flags = f"--model_type low_rank --rank {self.rank} --embedding_size {self.embedding_size}"
        else:
            flags = f"--model_type shared_ffn --embedding_size {self.embedding_size} --num_shared_groups {self.groups}"
            if self.delta_rank:
                flags += f" --share_delta_rank {self.delta_rank} --share_delta_init {self.delta_init}"
        return compare.Row(self.name, flags, True, f"sweep point ({self.family})")


# 24 points on MiniLM (6 layers, so G in {1, 2, 3} divides them): plain sharing over E and G; relaxed sharing at
# rank 8 and 32 with both starts at G=1, and at rank 8 with G=2 and 3 at E=64; the low-rank family over E and rank.
POINTS = (
    *[Point(e, g) for e in (64, 128) for g in (1, 2, 3)],
    *[Point(e, 1, r, init) for e in (64, 128) for r in (8, 32) for init in ("svd", "zero")],
    *[Point(64, g, 8, init) for g in (2, 3) for init in ("svd", "zero")],
    *[Point(e, rank=r) for e in (64, 128) for r in (16, 32, 48)],
)
POINT_NAMES = tuple(point.name for point in POINTS)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, argparse.Namespace]:
    """This script's own flags, and compare.py's namespace for the rest (protocol defaults first)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--teacher_dir", help="The fine-tuned teacher (a compare.py teacher folder, with its "
                                              "results.json); linked as <output_dir>/teacher.")
    parser.add_argument("--points", default=",".join(POINT_NAMES), help="Comma-separated points (default all).")
    parser.add_argument("--parallel", type=int, default=1, help="Run up to N points at once (GPU).")
    parser.add_argument("--dry_run", action="store_true", help="Print each point's command and stop.")
    parser.add_argument("--table_only", action="store_true", help="Only rebuild sweep.csv and sweep.png.")
    own, rest = parser.parse_known_args(argv)
    own.points = [name.strip() for name in own.points.split(",") if name.strip()]
    unknown = sorted(set(own.points) - set(POINT_NAMES))
    if unknown:
        parser.error(f"--points: unknown point(s) {unknown}; the points are {list(POINT_NAMES)}")
    if own.parallel < 1:
        parser.error(f"--parallel {own.parallel} must be at least 1")
    # compare.py checks --row_args names against its own rows: let the sweep's points through by name
    row_args = _pop_row_args(rest)
    # argparse keeps the last value of a flag: the command line's replace the protocol's
    shared = compare.parse_args([*PROTOCOL, *rest, "--output_dir", own.output_dir, "--rows", "teacher"])
    shared.row_args = row_args
    return own, shared


def _pop_row_args(tokens: list[str]) -> dict[str, list[str]]:
    """Take ``--row_args POINT="FLAGS"`` out of ``tokens`` (in place); compare.py would reject the point names."""
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--row_args" and i + 1 < len(tokens) or token.startswith("--row_args="):
            value = token.partition("=")[2] if "=" in token else tokens[i + 1]
            del tokens[i : i + (1 if "=" in token else 2)]
            name, sep, flags = value.partition("=")
            if not sep or name not in POINT_NAMES:
                raise SystemExit(f'sweep_sharing.py: error: --row_args {value!r}: expected POINT="FLAGS" with POINT '
                                 f"one of {list(POINT_NAMES)}")
            found[name] = found.get(name, []) + shlex.split(flags)
        else:
            i += 1
    return found


def link_teacher(output_dir: Path, teacher_dir: str | None) -> None:
    """Make ``<output_dir>/teacher`` the given teacher (a symbolic link), or check that it is already there."""
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / "teacher"
    if teacher_dir is not None:
        if not (Path(teacher_dir) / "config.json").is_file():
            raise FileNotFoundError(f"--teacher_dir {teacher_dir}: no config.json (not a trained teacher folder)")
        if target.is_symlink() or not target.exists():
            if target.is_symlink():
                target.unlink()
            target.symlink_to(Path(teacher_dir).resolve(), target_is_directory=True)
        elif target.resolve() != Path(teacher_dir).resolve():
            raise FileNotFoundError(f"{target} exists and is not --teacher_dir {teacher_dir}")
    if not (target / "config.json").is_file():
        raise FileNotFoundError(f"{target}: no teacher; pass --teacher_dir (the same teacher for every point)")


def run_points(own: argparse.Namespace, shared: argparse.Namespace) -> dict:
    """compare.py's runner over the chosen points: finished ones skipped, the rest up to --parallel at once."""
    output_dir = Path(own.output_dir)
    planned = [(point.row(), compare.row_command(point.row(), shared)) for point in POINTS if point.name in own.points]
    skipped = [row.name for row, _ in planned if compare.is_done(output_dir, row.name)]
    todo = [(row, command) for row, command in planned if row.name not in skipped]
    trained, failed = run_all(todo, output_dir, child_env(own.parallel), own.parallel)
    return {"trained": trained, "skipped": skipped, "failed": failed}


def collect_points(output_dir: str | Path) -> list[dict]:
    """compare.py's table rows of the finished points (and the teacher), with the sweep's coordinates added."""
    by_name = {point.name: point for point in POINTS}
    rows = []
    for row in compare.collect_rows(output_dir):
        point = by_name.get(row["method"])
        if point is None and row["method"] != "teacher":
            continue
        row = dict(row, family=point.family if point else "teacher")
        if point is not None:
            row.update(embedding_size=point.embedding_size, groups=point.groups if point.rank is None else None,
                       delta_rank=point.delta_rank if point.rank is None else None,
                       delta_init=point.delta_init if point.delta_rank else None, rank=point.rank)
        rows.append(row)
    return rows


CSV_KEYS = ["method", "family", "embedding_size", "groups", "delta_rank", "delta_init", "rank", "num_parameters",
            "compression_ratio", "validation_f1", "test_f1", "f1_retention"]


def plot_families(rows: list[dict], path: str | Path) -> None:
    """Validation F1 against unique parameters (log x): one marker per family, the teacher as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {"sharing": dict(marker="o", color="tab:blue"), "low rank": dict(marker="s", color="tab:orange")}
    for family, style in styles.items():
        points = sorted((r for r in rows if r["family"] == family and r["validation_f1"] is not None
                         and r["unique_params_m"] is not None), key=lambda r: r["unique_params_m"])
        if not points:
            continue
        ax.scatter([r["unique_params_m"] for r in points], [r["validation_f1"] for r in points], s=40, zorder=3,
                   label=family, **style)
        for r in points:
            ax.annotate(r["method"].removeprefix("sweep_"), (r["unique_params_m"], r["validation_f1"]),
                        textcoords="offset points", xytext=(4, 3), fontsize=6)
    teacher = next((r for r in rows if r["family"] == "teacher" and r["validation_f1"] is not None), None)
    if teacher:
        ax.axhline(teacher["validation_f1"], color="tab:red", linestyle="--", linewidth=1, label="teacher")
    ax.set_xscale("log")
    ax.set_xlabel("unique parameters (M, log scale)")
    ax.set_ylabel("validation F1")
    ax.set_title("Sharing (E, groups, relaxed rank and start) against low rank, 2,000-sentence protocol")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_outputs(output_dir: str | Path) -> list[dict]:
    rows = collect_points(output_dir)
    if not any(row["family"] != "teacher" for row in rows):
        raise FileNotFoundError(f"{output_dir}: no finished sweep point (<point>/results.json) to tabulate")
    compare.write_csv(rows, Path(output_dir) / "sweep.csv", CSV_KEYS)
    plot_families(rows, Path(output_dir) / "sweep.png")
    return rows


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    own, shared = parse_args(argv)
    summary = {"trained": [], "skipped": [], "failed": []}
    if own.dry_run:
        for point in POINTS:
            if point.name in own.points:
                command = compare.row_command(point.row(), shared)
                print(f"# {point.name}\n{shlex.join(['python', 'run_ner_compress.py', *command])}\n")
        return summary
    if not own.table_only:
        link_teacher(Path(own.output_dir), own.teacher_dir)
        summary = run_points(own, shared)
        logger.info("trained %s, skipped %s, failed %s", summary["trained"], summary["skipped"], summary["failed"])
    rows = write_outputs(own.output_dir)
    for row in rows:
        print(f"{row['method']:32s} {row.get('num_parameters') or 0:>10,} params  validation F1 "
              f"{row['validation_f1'] if row['validation_f1'] is not None else 'n/a'}")
    summary["rows"] = [row["method"] for row in rows]
    return summary


if __name__ == "__main__":
    exit_with_outcome(main, "sweep_sharing.py")
