#!/usr/bin/env python
"""Run the whole comparison: fine-tune a teacher, compress it every way, with and without distillation, and tabulate.

    python benchmarks/compare.py --output_dir cmp                                        # bert-base-cased, CoNLL-2003
    python benchmarks/compare.py --output_dir cmp --quickstart --epochs 2                # bundled MiniLM and demo data
    python benchmarks/compare.py --output_dir cmp --parallel 4                           # 4 rows at once (GPU)
    python benchmarks/compare.py --output_dir cmp --rows teacher,student --row_args student="--student_num_layers 4"
    python benchmarks/compare.py --output_dir cmp --table_only                           # rebuild the table only

Every row of ``ROWS`` is one run of ``run_ner_compress.py`` in its own subprocess, into ``<output_dir>/<row>``; its
log goes to ``<output_dir>/logs/<row>.log``. The teacher is trained first, from ``--model_name_or_path``; every other
row starts from it (``--model_name_or_path <output_dir>/teacher``), and the distilled rows also learn from it
(``--teacher_name_or_path``). A row whose ``results.json`` exists is not trained again, so an interrupted
comparison resumes where it stopped; delete a row's folder to train it again (after changing its recipe, say).
At the end ``<output_dir>`` gets RESULTS.md, results.csv and results.png; rows run with ``--prune_vocab``,
``--export_onnx`` or ``--quantize`` add a deployment-variants table to RESULTS.md and variants.csv.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("compare")

REPO = Path(__file__).resolve().parents[1]
RUN_SCRIPT = REPO / "run_ner_compress.py"


@dataclass(frozen=True)
class Row:
    """One line of the comparison: a run of run_ner_compress.py with these flags."""

    name: str
    flags: str  # run_ner_compress.py flags that define the method (training flags come from the command line)
    distil: bool  # learn from the source model with DISTILLATION_FLAGS
    description: str
    source: str = "teacher"  # folder under --output_dir to start from (and to learn from when distil)
    transfer: bool = False  # also distil on --transfer_file (the row runs only when one is given)


# The vocabulary-pruned copy of the teacher: its word table keeps only the wordpieces of the training split (plus
# every single character), so a factorized table of the same E costs about half. Made by prepare_pruned_teacher.
PRUNED = "teacher_vocab"
# Heavily changed models (shared or low-rank layers from a mean or SVD start) also match the teacher's hidden
# states layer by layer, and take a higher learning rate.
COMBO = "--hidden_loss_weight 1.0 --learning_rate 2e-4"

# The recipe. Change a row here, or for one comparison with --row_args ROW="--flag value" (same flags replace these).
ROWS = (
    Row("teacher", "--model_type teacher", False, "BERT fine-tuned on the NER data (baseline)"),
    Row("factorized", "--model_type factorized --embedding_size 128", False, "factorized embeddings, E=128"),
    Row("shared_attn", "--model_type shared_attn", False, "one self-attention block for all layers"),
    Row("shared_ffn", "--model_type shared_ffn", False, "one whole layer (attention + FFN) for all layers"),
    Row("low_rank", "--model_type low_rank --rank 64", False, "encoder dense layers as rank-64 SVD pairs"),
    Row("factorized_kd", "--model_type factorized --embedding_size 128", True, "factorized embeddings, E=128"),
    Row("shared_attn_kd", "--model_type shared_attn", True, "one self-attention block for all layers"),
    Row("shared_ffn_kd", "--model_type shared_ffn", True, "one whole layer (attention + FFN) for all layers"),
    Row("low_rank_kd", "--model_type low_rank --rank 64", True, "encoder dense layers as rank-64 SVD pairs"),
    Row("student", "--model_type student --student_num_layers 3", True, "3-layer student from teacher layers"),
    Row("teacher_pruned", "--model_type teacher --num_train_epochs 0", False,
        "the teacher with its vocabulary pruned to the training split (evaluated, not trained)", source=PRUNED),
    Row("best", f"--model_type shared_ffn --embedding_size 128 {COMBO}", True,
        "pruned vocabulary, E=128, one shared layer, KD + hidden MSE", source=PRUNED),
    Row("best_low_rank", f"--model_type low_rank --rank 48 --embedding_size 128 {COMBO}", True,
        "pruned vocabulary, E=128, rank-48 layers, KD + hidden MSE", source=PRUNED),
    Row("best_full_vocab", f"--model_type shared_ffn --embedding_size 64 {COMBO}", True,
        "full vocabulary, E=64, one shared layer, KD + hidden MSE"),
    Row("best10_shared", f"--model_type shared_ffn --rank 96 --embedding_size 64 {COMBO}", True,
        "pruned vocabulary, E=64, one shared rank-96 layer, KD + hidden MSE", source=PRUNED),
    Row("best10_low_rank", f"--model_type low_rank --rank 16 --embedding_size 64 {COMBO}", True,
        "pruned vocabulary, E=64, rank-16 layers, KD + hidden MSE", source=PRUNED),
    # Sized so that its int8 ONNX file is 20× smaller on disk than the fp32 teacher (MiniLM: 4.4 MB, 90.3 MB).
    Row("best_int8_20x", f"--model_type low_rank --rank 38 --embedding_size 128 {COMBO}", True,
        "pruned vocabulary, E=128, rank-38 layers, KD + hidden MSE", source=PRUNED),
    # Issue 15: layer groups and relaxed sharing (sizes counted as benchmarks/param_count.py does, MiniLM teacher
    # 22.57M). best10_shared_g: 2.06M (10.9x) at the 16,000-piece pruned vocabulary, 2.26M (10.0x) at 22,088.
    Row("best10_shared_g", f"--model_type shared_ffn --num_shared_groups 2 --rank 96 --embedding_size 32 {COMBO}",
        True, "pruned vocabulary, E=32, two shared rank-96 layers (3 layers each), KD + hidden MSE", source=PRUNED),
    # best_shared_relaxed: 4.31M, 5.23x (plain shared_ffn at E=64: 3.95M, 5.71x).
    Row("best_shared_relaxed", f"--model_type shared_ffn --share_delta_rank 8 --embedding_size 64 {COMBO}", True,
        "full vocabulary, E=64, one shared layer + per-layer rank-8 corrections (zero start), KD + hidden MSE"),
    # Distillation on unlabelled text (issue 14): the rows above plus --transfer_file, on the same labelled epochs.
    Row("best_low_rank_tr", f"--model_type low_rank --rank 48 --embedding_size 128 {COMBO}", True,
        "best_low_rank + transfer set", source=PRUNED, transfer=True),
    Row("best10_low_rank_tr", f"--model_type low_rank --rank 16 --embedding_size 64 {COMBO}", True,
        "best10_low_rank + transfer set", source=PRUNED, transfer=True),
    Row("best_shared_tr", f"--model_type shared_ffn --embedding_size 64 {COMBO}", True,
        "full vocabulary, E=64, one shared layer, KD + hidden MSE + transfer set", transfer=True),
    Row("best10_shared_g_tr", f"--model_type shared_ffn --num_shared_groups 2 --rank 96 --embedding_size 32 {COMBO}",
        True, "best10_shared_g + transfer set", source=PRUNED, transfer=True),
)
ROW_NAMES = tuple(row.name for row in ROWS)
DISTILLATION_FLAGS = "--temperature 2.0 --alpha 0.5"

COLUMNS = (
    ("method", "method"),
    ("unique_params_m", "unique params (M)"),
    ("compression_ratio", "compression"),
    ("validation_f1", "validation F1"),
    ("test_f1", "test F1"),
    ("f1_retention", "F1 retention"),
    ("test_runtime_s", "test runtime (s)"),
    ("test_samples_per_second", "throughput (samples/s)"),
    ("settings", "settings"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="One folder per row is made in it, plus the tables.")
    parser.add_argument("--rows", help=f"Comma-separated rows to run (default all: {','.join(ROW_NAMES)}; the "
                                       "transfer rows only with --transfer_file).")
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
    train.add_argument("--best_args", help="Replace the flags of the 'best' row entirely (default: the table's).")
    # The values of these flags are themselves flags ("--bf16"), which argparse would take for options.
    argv = list(sys.argv[1:] if argv is None else argv)
    for i in range(len(argv) - 1):
        if argv[i] in ("--extra", "--row_args", "--best_args"):
            argv[i : i + 2] = [f"{argv[i]}={argv[i + 1]}", ""]
    args = parser.parse_args([token for token in argv if token != ""])

    if args.rows is None:
        args.rows = [row.name for row in ROWS if args.transfer_file or not row.transfer]
    else:
        args.rows = [name.strip() for name in args.rows.split(",") if name.strip()]
    unknown = [name for name in args.rows if name not in ROW_NAMES]
    if unknown:
        parser.error(f"--rows: unknown row(s) {unknown}; the rows are {list(ROW_NAMES)}")
    needs_transfer = [row.name for row in ROWS if row.transfer and row.name in args.rows]
    if needs_transfer and not args.transfer_file:
        parser.error(f"--rows {','.join(needs_transfer)}: these rows need --transfer_file")
    if args.parallel < 1:
        parser.error(f"--parallel {args.parallel} must be at least 1")
    overrides = {}
    for item in args.row_args:
        name, sep, flags = item.partition("=")
        if not sep or name not in ROW_NAMES:
            parser.error(f'--row_args {item!r}: expected ROW="FLAGS" with ROW one of {list(ROW_NAMES)}')
        overrides[name] = overrides.get(name, []) + shlex.split(flags)
    args.row_args = overrides
    return args


# ----------------------------------------------------------------------------------------------------------------
# Commands


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


def row_flags(row: Row, args: argparse.Namespace) -> list[str]:
    """The method's flags for this comparison: the table's (or --best_args), then --row_args."""
    flags = shlex.split(args.best_args) if row.name == "best" and args.best_args else shlex.split(row.flags)
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
    training = [
        "--num_train_epochs", str(schedule[0]), "--learning_rate", str(schedule[1]),
        "--per_device_train_batch_size", str(schedule[2]), "--per_device_eval_batch_size", str(args.eval_batch_size),
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
    """The --transfer_* flags shared by run_ner_compress.py and ``python -m trainers.transfer``."""
    flags = ["--transfer_file", *args.transfer_file] if args.transfer_file else []
    for flag in ("max_transfer_samples", "transfer_cache_dir"):
        if getattr(args, flag) is not None:
            flags += [f"--{flag}", str(getattr(args, flag))]
    return flags


def fill_transfer_cache(args: argparse.Namespace, rows: list[Row], env: dict) -> None:
    """Run each transfer row's teacher over --transfer_file once, so that rows in parallel find the cache filled."""
    from trainers.ner_data import DEFAULT_MAX_SEQ_LENGTH

    output_dir = Path(args.output_dir)
    max_seq_length = args.max_seq_length or DEFAULT_MAX_SEQ_LENGTH  # the rows' value: it is in the cache key
    for source in dict.fromkeys(row.source for row in rows if row.transfer):
        log_path = output_dir / "logs" / f"transfer_cache_{source}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "trainers.transfer", "--teacher", str(output_dir / source),
                   "--max_seq_length", str(max_seq_length), *transfer_flags(args)]
        logger.info("teacher predictions of %s on the transfer set (log: %s)", source, log_path)
        with open(log_path, "w") as log:
            status = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        if status != 0:  # the rows would fail the same way: say so once, here
            tail = log_path.read_text(errors="replace").splitlines()[-5:]
            raise OSError(f"filling the transfer cache for {source} failed (exit status {status}):\n" + "\n".join(tail))


def plan(args: argparse.Namespace) -> list[tuple[Row, list[str]]]:
    """Each row to run with its command, the teacher first."""
    rows = [row for row in ROWS if row.name in args.rows]
    return [(row, row_command(row, args)) for row in rows]


def is_done(output_dir: Path, name: str) -> bool:
    return (output_dir / name / "results.json").is_file()


def run_row(row: Row, command: list[str], output_dir: Path, env: dict) -> bool:
    """One subprocess; its output goes to logs/<row>.log. True if it finished and wrote results.json."""
    log_path = output_dir / "logs" / f"{row.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    logger.info("%s: training (log: %s)", row.name, log_path)
    with open(log_path, "w") as log:
        log.write(shlex.join([sys.executable, str(RUN_SCRIPT), *command]) + "\n\n")
        log.flush()
        status = subprocess.run([sys.executable, str(RUN_SCRIPT), *command], stdout=log, stderr=subprocess.STDOUT,
                                env=env).returncode
    if status != 0 or not is_done(output_dir, row.name):
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        logger.error("%s failed (exit status %s); end of %s:\n%s", row.name, status, log_path, "\n".join(tail))
        return False
    logger.info("%s: done in %.0f s", row.name, time.time() - start)
    return True


def run_rows(args: argparse.Namespace) -> dict:
    """Train every planned row that has no results.json yet; the teacher first, the rest up to --parallel at once."""
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    planned = plan(args)
    if "teacher" not in args.rows and not is_done(output_dir, "teacher"):
        logger.info("the rows need a teacher and %s has none: training it first", output_dir / "teacher")
        planned.insert(0, (ROWS[0], row_command(ROWS[0], args)))
    skipped = [row.name for row, _ in planned if is_done(output_dir, row.name)]
    for name in skipped:
        logger.info("%s: results.json exists, not trained again", name)
    todo = [(row, command) for row, command in planned if row.name not in skipped]

    env = dict(os.environ)
    if args.parallel > 1 and "OMP_NUM_THREADS" not in env:
        # N CPU trainings at once would each start one thread per core; split the cores between them.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.parallel))
    trained, failed = [], []
    teacher = [(row, command) for row, command in todo if row.name == "teacher"]
    others = [(row, command) for row, command in todo if row.name != "teacher"]
    if teacher:
        if run_row(*teacher[0], output_dir, env):
            trained.append("teacher")
        else:
            failed.append("teacher")
            failed += [row.name for row, _ in others]
            logger.error("no teacher, so none of %s can run", [row.name for row, _ in others])
            others = []
    if any(row.source == PRUNED for row, _ in others) and is_done(output_dir, "teacher"):
        prepare_pruned_teacher(args)
    if args.transfer_file and any(row.transfer for row, _ in others) and is_done(output_dir, "teacher"):
        fill_transfer_cache(args, [row for row, _ in others], env)
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        outcomes = list(pool.map(lambda item: run_row(*item, output_dir, env), others))
    for (row, _), ok in zip(others, outcomes):
        (trained if ok else failed).append(row.name)
    return {"trained": trained, "skipped": skipped, "failed": failed}


def prepare_pruned_teacher(args: argparse.Namespace) -> Path:
    """Write <output_dir>/teacher_vocab: the trained teacher with only the training split's wordpieces (and every
    single character, and the pieces of --transfer_file when given) left in its tokenizer and word table. Done once;
    the folder appears only when complete (delete it to prune again with other text)."""
    output_dir = Path(args.output_dir)
    target = output_dir / PRUNED
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from export.evaluate_variants import staged_dir
    from modeling.vocab_pruning import corpus_vocabulary, prune_vocabulary
    from trainers.ner_data import load_ner_splits

    if args.quickstart and not args.train_file:
        from trainers.demo_data import DEMO_DIR

        args.train_file = os.path.join(DEMO_DIR, "demo_train.txt")
    data = load_ner_splits(args.dataset_name, args.dataset_config_name, args.train_file)
    sentences = [record["tokens"] for record in data.splits["train"][: args.max_train_samples or None]]
    tokenizer = AutoTokenizer.from_pretrained(output_dir / "teacher")
    model = AutoModelForTokenClassification.from_pretrained(output_dir / "teacher")
    before = model.config.vocab_size
    # The transfer text is what the students will read: its pieces make pruning cost less on unseen words.
    keep = corpus_vocabulary(tokenizer, sentences, text_files=args.transfer_file or ())
    model, tokenizer = prune_vocabulary(model, tokenizer, keep)
    with staged_dir(str(target)) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    logger.info("pruned the teacher's vocabulary from %d to %d wordpieces -> %s", before, model.config.vocab_size,
                target)
    return target


# ----------------------------------------------------------------------------------------------------------------
# Tables


def results_files(output_dir: str | Path) -> dict[str, Path]:
    """Each row folder's results.json, in table order, then any other folder's by name."""
    found = {path.parent.name: path for path in Path(output_dir).glob("*/results.json")}
    names = [name for name in ROW_NAMES if name in found] + sorted(set(found) - set(ROW_NAMES))
    return {name: found[name] for name in names}


def collect_rows(output_dir: str | Path) -> list[dict]:
    """One dict per row folder with a results.json (table order, then any other folder), ready for the tables."""
    from trainers.results import RunResults

    found = results_files(output_dir)
    names = list(found)
    results = {name: RunResults.load(found[name]).to_dict() for name in names}  # any version, in today's layout
    teacher = results.get("teacher", {})
    teacher_params, teacher_f1 = teacher.get("num_parameters"), teacher.get("test_f1")
    if teacher:
        teacher_time = found["teacher"].stat().st_mtime
        stale = [name for name in names if name != "teacher" and found[name].stat().st_mtime < teacher_time]
        if stale:
            logger.warning("%s finished before the current teacher: they come from an older one", stale)
    rows = []
    for name in names:
        r = results[name]
        params = r.get("num_parameters")
        ratio = teacher_params / params if teacher_params and params else r.get("compression_ratio")
        retention = r["test_f1"] / teacher_f1 if teacher_f1 and r.get("test_f1") is not None else None
        rows.append({
            "method": name,
            "unique_params_m": params / 1e6 if params else None,
            "compression_ratio": ratio,
            "validation_f1": r.get("validation_f1"),
            "test_f1": r.get("test_f1"),
            "f1_retention": retention,
            "test_runtime_s": r.get("test_runtime_s"),
            "test_samples_per_second": r.get("test_samples_per_second"),
            "settings": describe_settings(r),
            "num_parameters": params,
            "distilled": bool(r.get("distilled")),
        })
    return rows


VARIANT_LABELS = {
    "fp32": "PyTorch fp32",
    "vocab_pruned": "pruned vocabulary, PyTorch fp32",
    "onnx": "ONNX fp32",
    "onnx_int8": "ONNX int8",
    "torch_int8": "PyTorch int8",
}
VARIANT_COLUMNS = (
    ("method", "method"),
    ("variant", "variant"),
    ("size_mb", "size on disk (MB)"),
    ("disk_ratio", "smaller than the fp32 teacher"),
    ("test_f1", "test F1"),
    ("f1_change", "F1 change (points)"),
    ("samples_per_second", "CPU samples/s"),
    ("speed_ratio", "speed vs own fp32"),
)


def collect_variants(output_dir: str | Path) -> list[dict]:
    """One dict per deployment variant (``--prune_vocab``, ``--export_onnx``, ``--quantize``) of every row that
    made some, in table order. The F1 change and the speed ratio are against the row's own PyTorch fp32 model,
    measured in the same run; the size ratio is against the teacher's fp32 weights on disk."""
    from export.evaluate_variants import weights_size_bytes
    from trainers.results import RunResults

    output_dir = Path(output_dir)
    found = {name: RunResults.load(path).to_dict() for name, path in results_files(output_dir).items()}
    teacher_bytes = (found.get("teacher") or {}).get("fp32_size_bytes")
    if teacher_bytes is None and (output_dir / "teacher").is_dir():
        teacher_bytes = weights_size_bytes(str(output_dir / "teacher")) or None
    rows = []
    for name, results in found.items():
        variants = results.get("variants") or {}
        own = variants.get("fp32", {})
        pruned = "vocab_pruned" in variants
        ordered = sorted(variants, key=lambda key: list(VARIANT_LABELS).index(key) if key in VARIANT_LABELS else 99)
        for key in ordered:  # the order they are made in (results.json sorts its keys)
            entry, label = variants[key], VARIANT_LABELS.get(key, key)
            if pruned and key in ("onnx", "onnx_int8", "torch_int8"):
                label += " (pruned vocabulary)"
            f1, speed = entry.get("test_f1"), entry.get("test_samples_per_second")
            own_f1, own_speed = own.get("test_f1"), own.get("test_samples_per_second")
            rows.append({
                "method": name,
                "variant": label,
                "size_mb": entry["size_bytes"] / 1e6,
                "disk_ratio": teacher_bytes / entry["size_bytes"] if teacher_bytes else None,
                "test_f1": f1,
                "f1_change": 100 * (f1 - own_f1) if f1 is not None and own_f1 is not None else None,
                "samples_per_second": speed,
                "speed_ratio": speed / own_speed if speed and own_speed else None,
            })
    return rows


def describe_settings(results: dict) -> str:
    """The method and schedule of one run, in words short enough for a table cell."""
    parts = [results.get("model_class", "?")]
    compression = dict(results.get("compression") or {})
    compression.pop("methods", None)
    parts += [f"{key}={value}" for key, value in compression.items() if value is not None]
    if results.get("distilled"):
        parts.append(f"KD T={results.get('temperature')} α={results.get('alpha')}")
        if results.get("hidden_loss_weight"):
            parts.append(f"hidden MSE ×{results['hidden_loss_weight']}")
    training = (results.get("arguments") or {}).get("training") or {}
    if training:
        epochs = f"{training.get('num_train_epochs'):g} ep"
        if results.get("stopped_at_time_budget"):
            epochs = f"{results.get('epochs_trained'):g} of {epochs} (time budget)"
        parts.append(f"{epochs}, lr {training.get('learning_rate'):g}, bs {training.get('per_device_train_batch_size')}")
    if results.get("transfer_files"):
        parts.append(f"transfer {results.get('transfer_sentences')} sent. (ratio {results.get('transfer_ratio'):g}, "
                     f"KL ×{results.get('transfer_kl_weight'):g}, ≥{results.get('transfer_min_entities', 0)} ent.)")
    if results.get("labelled_sentences_seen") is not None:
        parts.append(f"seen {results['labelled_sentences_seen']} labelled + "
                     f"{results.get('transfer_sentences_seen') or 0} transfer")
    if results.get("train_runtime_s") is not None:
        parts.append(f"train {results['train_runtime_s']:.0f} s")
    return ", ".join(parts)


def _cell(key: str, value) -> str:
    if value is None:
        return "n/a"
    if key == "unique_params_m":
        return f"{value:.2f}" if value >= 1 else f"{value:.3g}"
    if key == "compression_ratio":
        return f"{value:.2f}×"
    if key == "f1_retention":
        return f"{value:.1%}"
    if key in ("validation_f1", "test_f1"):
        return f"{value:.4f}"
    if key in ("test_runtime_s", "test_samples_per_second", "samples_per_second", "size_mb"):
        return f"{value:.1f}" if value >= 10 else f"{value:.3g}"
    if key in ("disk_ratio", "speed_ratio"):
        return f"{value:.2f}×"
    if key == "f1_change":
        return f"{value:+.2f}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: list[dict], columns: tuple, text_keys: tuple[str, ...]) -> list[str]:
    """The lines of one Markdown table; the ``text_keys`` columns are left-aligned, the numbers right-aligned."""
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "|".join("---" if key in text_keys else "---:" for key, _ in columns) + "|"]
    return lines + ["| " + " | ".join(_cell(key, row[key]) for key, _ in columns) + " |" for row in rows]


def write_markdown(rows: list[dict], path: str | Path, variants: list[dict] = ()) -> None:
    lines = [
        "# Compression comparison",
        "",
        "Unique parameters count shared tensors once. Compression and F1 retention are against the `teacher` row "
        "(test F1 / teacher test F1). Runtime and throughput are the test-set prediction of each run, on the "
        "machine that trained it.",
        "",
        *markdown_table(rows, COLUMNS, ("method", "settings")),
    ]
    lines += ["", "Chosen on validation F1 (test F1 read once, after the choice):", ""]
    for threshold in (5, 10):
        chosen = best_on_validation(rows, threshold)
        lines.append(
            f"- at {threshold}× or more: **{chosen['method']}**, {_cell('compression_ratio', chosen['compression_ratio'])}"
            f", validation F1 {_cell('validation_f1', chosen['validation_f1'])}, test F1 "
            f"{_cell('test_f1', chosen['test_f1'])}, retention {_cell('f1_retention', chosen['f1_retention'])}"
            if chosen else f"- at {threshold}× or more: no row"
        )
    if variants:
        lines += [
            "",
            "## Deployment variants",
            "",
            "Made after training by `--prune_vocab`, `--export_onnx` and `--quantize int8`, and measured on the test "
            "split in the same run as the row's own PyTorch fp32 model, on the CPU (model calls only, batches of "
            "32). The F1 change and speed are against that model; the size, weight files only, against the "
            "teacher's fp32 weights. For speed against the teacher in one run: "
            "`python benchmarks/speed.py --models_dir <this folder> --variants`.",
            "",
            *markdown_table(variants, VARIANT_COLUMNS, ("method", "variant")),
        ]
    Path(path).write_text("\n".join(lines) + "\n")


def best_on_validation(rows: list[dict], min_compression: float) -> dict | None:
    """The row with the highest validation F1 among those at least ``min_compression`` times smaller."""
    eligible = [row for row in rows if row["method"] != "teacher" and row["validation_f1"] is not None
                and (row["compression_ratio"] or 0) >= min_compression]
    return max(eligible, key=lambda row: row["validation_f1"], default=None)


def write_csv(rows: list[dict], path: str | Path, keys: list[str] | None = None) -> None:
    keys = keys or [key for key, _ in COLUMNS] + ["num_parameters", "distilled"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key) for key in keys})


def plot(rows: list[dict], path: str | Path) -> None:
    """Test F1 against unique parameters (log x), one labelled point per row; the teacher is a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {
        "teacher": dict(marker="*", s=220, color="tab:red", label="teacher"),
        True: dict(marker="o", s=50, color="tab:blue", label="distilled"),
        False: dict(marker="o", s=50, facecolors="none", edgecolors="tab:blue", label="fine-tuned only"),
    }
    labelled, stacked = set(), {}
    for row in rows:
        if row["unique_params_m"] is None or row["test_f1"] is None:
            continue
        kind = "teacher" if row["method"] == "teacher" else row["distilled"]
        style = dict(styles[kind])
        if kind in labelled:
            style.pop("label")
        labelled.add(kind)
        ax.scatter(row["unique_params_m"], row["test_f1"], zorder=3, **style)
        # Rows of one size (a method with and without distillation) get their labels stacked, not overprinted.
        place = (round(row["unique_params_m"], 4), round(row["test_f1"], 2))
        stacked[place] = stacked.get(place, -1) + 1
        ax.annotate(row["method"], (row["unique_params_m"], row["test_f1"]), textcoords="offset points",
                    xytext=(5, 4 + 9 * stacked[place]), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("unique parameters (M, log scale)")
    ax.set_ylabel("test F1")
    ax.set_title("NER test F1 against model size")
    ax.grid(True, which="both", alpha=0.3)
    if labelled:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_tables(output_dir: str | Path) -> list[dict]:
    output_dir = Path(output_dir)
    rows = collect_rows(output_dir)
    if not rows:
        raise FileNotFoundError(f"{output_dir}: no <row>/results.json to tabulate")
    variants = collect_variants(output_dir)
    write_markdown(rows, output_dir / "RESULTS.md", variants)
    write_csv(rows, output_dir / "results.csv")
    if variants:
        write_csv(variants, output_dir / "variants.csv", [key for key, _ in VARIANT_COLUMNS])
    plot(rows, output_dir / "results.png")
    return rows


# ----------------------------------------------------------------------------------------------------------------


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
    try:
        outcome = main()
    except FileNotFoundError as err:
        sys.exit(f"compare.py: error: {err}")
    sys.exit(1 if outcome["failed"] else 0)
