"""Running the comparison: each row is one run_ner_compress.py subprocess with its own log, the teacher first and
the rest up to --parallel at once; before them, the vocabulary-pruned teacher and the transfer set's teacher
predictions are made once."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

from benchmarks.compare_rows import PRUNED, ROWS, Row, plan, row_command, transfer_flags

logger = logging.getLogger("compare")

REPO = Path(__file__).resolve().parents[1]
RUN_SCRIPT = REPO / "run_ner_compress.py"


def fill_transfer_cache(args: argparse.Namespace, rows: list[Row], env: dict) -> None:
    """Run each transfer row's teacher over --transfer_file once, so that rows in parallel find the cache filled."""
    from trainers.ner_data import DEFAULT_MAX_SEQ_LENGTH

    output_dir = Path(args.output_dir)
    max_seq_length = args.max_seq_length or DEFAULT_MAX_SEQ_LENGTH  # the rows' value: it is in the cache key
    for source in dict.fromkeys(row.source for row in rows if row.transfer):
        log_path = output_dir / "logs" / f"transfer_cache_{source}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "trainers.cache_transfer", "--teacher", str(output_dir / source),
                   "--max_seq_length", str(max_seq_length), *transfer_flags(args)]
        logger.info("teacher predictions of %s on the transfer set (log: %s)", source, log_path)
        with open(log_path, "w") as log:
            status = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        if status != 0:  # the rows would fail the same way: say so once, here
            tail = log_path.read_text(errors="replace").splitlines()[-5:]
            raise OSError(f"filling the transfer cache for {source} failed (exit status {status}):\n" + "\n".join(tail))


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


def child_env(parallel: int) -> dict:
    """The rows' environment. N CPU trainings at once would each start one thread per core: split the cores."""
    env = dict(os.environ)
    if parallel > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    return env


def run_all(todo: list[tuple[Row, list[str]]], output_dir: Path, env: dict, parallel: int) -> tuple[list, list]:
    """Run the rows up to ``parallel`` at once; the names of those that finished, and of those that failed."""
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        outcomes = list(pool.map(lambda item: run_row(*item, output_dir, env), todo))
    trained = [row.name for (row, _), ok in zip(todo, outcomes) if ok]
    return trained, [row.name for (row, _), ok in zip(todo, outcomes) if not ok]


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

    env = child_env(args.parallel)
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
    done, broken = run_all(others, output_dir, env, args.parallel)
    return {"trained": trained + done, "skipped": skipped, "failed": failed + broken}


def prepare_pruned_teacher(args: argparse.Namespace) -> Path:
    """Write <output_dir>/teacher_vocab: the trained teacher with only the training split's wordpieces (and every
    single character, and the pieces of --transfer_file when given) left in its tokenizer and word table. Done once;
    the folder appears only when complete (delete it to prune again with other text)."""
    output_dir = Path(args.output_dir)
    target = output_dir / PRUNED
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from export.vocab_pruning import prune_to_folder
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
    # "resplit": the students are built with from_bert, which needs a plain BERT source ("nearest" would make a
    # CompressedBertForTokenClassification holding an id->row index).
    model, _ = prune_to_folder(model, tokenizer, str(target), sentences, text_files=args.transfer_file or (),
                               unseen="resplit")
    logger.info("pruned the teacher's vocabulary from %d to %d wordpieces -> %s", before, model.config.vocab_size,
                target)
    return target



def exit_with_outcome(main: Callable[[], dict], script: str) -> NoReturn:
    """A runner script's end: a missing input is one error line, any failed row a non-zero exit status."""
    try:
        outcome = main()
    except FileNotFoundError as err:
        sys.exit(f"{script}: error: {err}")
    sys.exit(1 if outcome["failed"] else 0)
