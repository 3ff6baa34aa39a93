#!/usr/bin/env python
"""Peak memory of training (a fixed number of steps) and of inference, for the teacher and the 5×/10× recipe shapes.

    python benchmarks/peak_memory.py --model_name_or_path /path/to/minilm --train_file train.txt --test_file test.txt
    python benchmarks/peak_memory.py --quickstart --steps 10                 # bundled MiniLM and demo data

Each measurement is its own child process, so each peak is that job's alone: ``run_ner_compress.py`` for
``--steps`` optimizer steps (no evaluation, no checkpoints), then a child that loads the saved model and predicts
``--predict_samples`` test sentences in batches. The peak resident set size is the child's own ``VmHWM`` (Linux;
``wait4``'s ``ru_maxrss`` elsewhere); on a GPU the child also reports ``torch.cuda.max_memory_allocated``. A baseline child
that only imports torch and transformers shows what every row pays before any model exists.

The teacher is fine-tuned from ``--model_name_or_path`` for ``--steps`` steps; the 5× and 10× recipe *shapes* start
from it and distil from it (with hidden-state matching, so the teacher's forward pass is in their training peak), but
keep its full vocabulary (compare.py's rows start from a vocabulary-pruned teacher, whose word table is smaller).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# name -> run_ner_compress.py flags of the model's shape; the 5×/10× flags are compare.py's rows minus the pruned source
RECIPES = {
    "teacher": "--model_type teacher",
    "5x (best_low_rank)": "--model_type low_rank --rank 48 --embedding_size 128 --hidden_loss_weight 1.0",
    "10x (best10_low_rank)": "--model_type low_rank --rank 16 --embedding_size 64 --hidden_loss_weight 1.0",
}
DISTILLED = ("5x (best_low_rank)", "10x (best10_low_rank)")

# The child's own peak RSS in KiB. Linux's VmHWM belongs to the process image, so it starts afresh at exec; wait4's
# ru_maxrss does not (it keeps the parent's RSS from before the exec), which would charge each child its parent's size.
HWM = """
def VM_HWM():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return None
"""
# Runs inside the child: the job, then its peaks into the file given as argv[1].
TRAIN_CHILD = HWM + """
import json, sys
sys.path.insert(0, {repo!r})
import run_ner_compress, torch
run_ner_compress.main({argv!r})
peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
json.dump({{"cuda_peak": peak, "vm_hwm_kib": VM_HWM()}}, open(sys.argv[1], "w"))
"""
PREDICT_CHILD = HWM + """
import json, sys
sys.path.insert(0, {repo!r})
import torch
import modeling
from transformers import AutoModelForTokenClassification, AutoTokenizer
from trainers.ner_data import read_ner_file
device = "cuda" if torch.cuda.is_available() else "cpu"
model = AutoModelForTokenClassification.from_pretrained({model!r}).to(device).eval()
tokenizer = AutoTokenizer.from_pretrained({model!r})
sentences = [r["tokens"] for r in read_ner_file({test_file!r})][:{samples}]
with torch.no_grad():
    for start in range(0, len(sentences), {batch}):
        batch = tokenizer(sentences[start:start + {batch}], is_split_into_words=True, truncation=True,
                          max_length={max_seq_length}, padding=True, return_tensors="pt").to(device)
        model(**batch)
peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
json.dump({{"cuda_peak": peak, "vm_hwm_kib": VM_HWM()}}, open(sys.argv[1], "w"))
"""
BASELINE_CHILD = HWM + """
import json, sys
import torch, transformers
json.dump({"cuda_peak": None, "vm_hwm_kib": VM_HWM()}, open(sys.argv[1], "w"))
"""


def measure(code: str, env: dict) -> dict:
    """Run ``code`` in a child python; its peak RSS (MiB, from wait4) and what it reported."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as report:
        path = report.name
    try:
        process = subprocess.Popen([sys.executable, "-c", code, path], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"child failed (exit {process.returncode}):\n{stderr[-3000:]}")
        with open(path) as f:
            reported = json.load(f)
    finally:
        os.remove(path)
    rss_mib = (reported.get("vm_hwm_kib") or usage.ru_maxrss) / 1024  # both in KiB on Linux
    cuda = reported.get("cuda_peak")
    return {"peak_rss_mib": round(rss_mib, 1), "cuda_peak_mib": round(cuda / 2**20, 1) if cuda is not None else None}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_name_or_path", help="The BERT teacher every shape starts from.")
    parser.add_argument("--quickstart", action="store_true", help="Bundled MiniLM and demo data.")
    parser.add_argument("--train_file")
    parser.add_argument("--test_file")
    parser.add_argument("--steps", type=int, default=20, help="Optimizer steps of each training measurement.")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--predict_samples", type=int, default=256)
    parser.add_argument("--output", help="Also write the table (Markdown) here.")
    parser.add_argument("--extra", default="", help='More run_ner_compress.py flags for training, e.g. "--bf16".')
    args = parser.parse_args(argv)
    if args.quickstart:
        from modeling import minilm_path
        from trainers.demo_data import DEMO_DIR

        args.model_name_or_path = args.model_name_or_path or minilm_path()
        args.train_file = args.train_file or os.path.join(DEMO_DIR, "demo_train.txt")
        args.test_file = args.test_file or os.path.join(DEMO_DIR, "demo_test.txt")
    if not (args.model_name_or_path and args.train_file and args.test_file):
        parser.error("give --model_name_or_path, --train_file and --test_file (or --quickstart)")
    if args.steps < 1 or args.batch_size < 1 or args.predict_samples < 1:
        parser.error("--steps, --batch_size and --predict_samples must be at least 1")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    rows = [{"model": "python + torch + transformers imported", "job": "baseline", **measure(BASELINE_CHILD, env)}]
    print(f"baseline: {rows[0]}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="peak_memory-") as scratch:
        for name, flags in RECIPES.items():
            output_dir = os.path.join(scratch, name.split()[0])
            # The recipes start from (and learn from) the teacher just trained, as in compare.py: it has the NER head
            source = args.model_name_or_path if name == "teacher" else os.path.join(scratch, "teacher")
            argv = [
                *shlex.split(flags), "--model_name_or_path", source, "--train_file", args.train_file,
                "--output_dir", output_dir, "--max_steps", str(args.steps), "--max_train_samples",
                str(args.steps * args.batch_size), "--per_device_train_batch_size", str(args.batch_size),
                "--max_seq_length", str(args.max_seq_length), "--save_strategy", "no", "--report_to", "none",
                "--disable_tqdm", "true", "--seed", "42", *shlex.split(args.extra),
            ]
            if name in DISTILLED:
                argv += ["--teacher_name_or_path", source]
            train = measure(TRAIN_CHILD.format(repo=str(REPO), argv=argv), env)
            rows.append({"model": name, "job": f"training, {args.steps} steps × {args.batch_size}", **train})
            print(f"{name} training: {train}", file=sys.stderr)
            predict = measure(PREDICT_CHILD.format(repo=str(REPO), model=output_dir, test_file=args.test_file,
                                                   samples=args.predict_samples, batch=32,
                                                   max_seq_length=args.max_seq_length), env)
            rows.append({"model": name, "job": f"inference, {args.predict_samples} sentences × batch 32", **predict})
            print(f"{name} inference: {predict}", file=sys.stderr)
    table = markdown(rows)
    print(table)
    if args.output:
        Path(args.output).write_text(table + "\n")
    return rows


def markdown(rows: list[dict]) -> str:
    cuda = any(row["cuda_peak_mib"] is not None for row in rows)
    header = "| model | job | peak RSS (MiB) |" + (" peak CUDA allocated (MiB) |" if cuda else "")
    lines = [header, "|---|---|---|" + ("---|" if cuda else "")]
    for row in rows:
        line = f"| {row['model']} | {row['job']} | {row['peak_rss_mib']:.0f} |"
        if cuda:
            line += f" {row['cuda_peak_mib'] if row['cuda_peak_mib'] is not None else '–'} |"
        lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
