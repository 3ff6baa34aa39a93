"""After training: make the deployment variants of the saved model and measure each one on the test split.

The flags (``PostTrainingArguments``) ask for vocabulary pruning, an ONNX export and int8 quantization. They chain:
the pruned model (if any) is the one exported, and the exported file (if any) is the one quantized; without
``--export_onnx``, ``--quantize int8`` quantizes the PyTorch model instead. Each variant is written beside the fp32
model and described in results.json: its size on disk, test F1 and speed, next to the same figures for fp32.

    <output_dir>/                  the fp32 model and tokenizer (as before)
    <output_dir>/vocab_pruned/     --prune_vocab: model + pruned tokenizer, loadable by from_pretrained and pipeline
    <output_dir>/onnx/model.onnx   --export_onnx, with the tokenizer and config.json: OnnxNerPipeline(file, folder)
    <output_dir>/onnx/model_int8.onnx          --export_onnx --quantize int8
    <output_dir>/pytorch_int8/model_int8.pt    --quantize int8 alone: the state dict of quantize_dynamic_torch(model)

Speed is measured the same way for every variant: on CPU, batches of ``EVAL_BATCH_SIZE`` sentences in test-file
order, model calls only (tokenization excluded).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from trainers.checks import check_text_file

logger = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("none", "int8")
EVAL_BATCH_SIZE = 32
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx", ".onnx.data")


@dataclass
class PostTrainingArguments:
    prune_vocab: bool = field(
        default=False,
        metadata={"help": "Keep only the wordpieces the training split (and --prune_extra_texts) uses, plus special "
                          "tokens and single characters; written to <output_dir>/vocab_pruned."},
    )
    prune_extra_texts: list[str] | None = field(
        default=None, metadata={"help": "Plain-text files whose wordpieces --prune_vocab keeps too."}
    )
    prune_keep_top: int = field(
        default=0,
        metadata={"help": "--prune_vocab also keeps the N first (most frequent) pieces of the pretrained vocabulary: "
                          "fewer finer splits of unseen words, for N more rows."},
    )
    export_onnx: bool = field(
        default=False, metadata={"help": "Export the final (maybe pruned) model to <output_dir>/onnx/model.onnx."}
    )
    quantize: str = field(
        default="none",
        metadata={"help": "int8: dynamic int8 quantization (of the ONNX file with --export_onnx, else in PyTorch).",
                  "choices": QUANTIZE_CHOICES},
    )

    def __post_init__(self):
        if self.quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"--quantize {self.quantize!r} must be one of {QUANTIZE_CHOICES}")
        if self.prune_extra_texts and not self.prune_vocab:
            raise ValueError("--prune_extra_texts is only used with --prune_vocab")
        if self.prune_keep_top < 0:
            raise ValueError(f"--prune_keep_top {self.prune_keep_top} must be 0 or more")
        if self.prune_keep_top and not self.prune_vocab:
            raise ValueError("--prune_keep_top is only used with --prune_vocab")
        for path in self.prune_extra_texts or []:  # missing, empty, undecodable or binary: fail before training
            check_text_file(path, "--prune_extra_texts")

    @property
    def requested(self) -> bool:
        return self.prune_vocab or self.export_onnx or self.quantize != "none"


def weights_size_bytes(path: str) -> int:
    """Bytes of the weight files (safetensors, bin, pt, onnx and ONNX external data) in a folder, or of one file."""
    if os.path.isfile(path):
        external = path + ".data"
        return os.path.getsize(path) + (os.path.getsize(external) if os.path.isfile(external) else 0)
    return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path)
               if name.endswith(WEIGHT_SUFFIXES) and os.path.isfile(os.path.join(path, name)))


def evaluate_variant(
    predict: Callable[[dict[str, np.ndarray]], np.ndarray],
    tokenizer,
    records: list[dict],
    label_list: list[str],
    max_seq_length: int,
    batch_size: int = EVAL_BATCH_SIZE,
) -> dict:
    """Test F1 (seqeval, first subwords) and sentences per second of one variant's ``predict`` function.

    ``predict`` maps a padded batch ``{"input_ids", "attention_mask", "token_type_ids"}`` of int64 arrays (B, T)
    to logits (B, T, num_labels). Records are tokenized with ``tokenizer``, the variant's own.
    """
    from trainers.metrics import entity_scores, tags_from_logits
    from trainers.ner_data import tokenize_and_align

    label2id = {label: i for i, label in enumerate(label_list)}
    features = tokenize_and_align(records, tokenizer, label2id, max_seq_length, source="test")
    true_tags, pred_tags, seconds = [], [], 0.0
    if features:  # one untimed call: first-call setup (allocations, thread pools) is not inference speed
        first = features[0]
        predict({name: np.array([first.get(name, [0] * len(first["input_ids"]))], dtype=np.int64)
                 for name in ("input_ids", "attention_mask", "token_type_ids")})
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size]
        length = max(len(f["input_ids"]) for f in chunk)
        batch = {
            name: np.array([f.get(name, [0] * len(f["input_ids"])) + [pad] * (length - len(f["input_ids"]))
                            for f in chunk], dtype=np.int64)
            for name, pad in (("input_ids", tokenizer.pad_token_id), ("attention_mask", 0), ("token_type_ids", 0))
        }  # (B, T) each
        labels = np.array([f["labels"] + [-100] * (length - len(f["labels"])) for f in chunk])
        began = time.perf_counter()
        logits = predict(batch)  # (B, T, num_labels)
        seconds += time.perf_counter() - began
        truth, predicted = tags_from_logits(logits, labels, dict(enumerate(label_list)))
        true_tags += truth
        pred_tags += predicted
    scores = entity_scores(true_tags, pred_tags)
    return {"test_f1": round(scores["f1"], 4), "test_samples_per_second": round(len(features) / seconds, 2)}


def torch_predict(model) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    model = model.eval().to("cpu")

    def predict(batch):
        with torch.inference_mode():
            return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy()

    return predict


def onnx_predict(onnx_path: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    from .onnx_pipeline import OnnxTokenClassifier

    classifier = OnnxTokenClassifier(onnx_path)
    return lambda batch: classifier.run_numpy(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])


@contextmanager
def staged_dir(final: str):
    """A hidden scratch folder that becomes ``final`` only when the block succeeds (no half-written variant)."""
    staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(os.path.abspath(final)))
    try:
        yield staging
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_post_training(
    args: PostTrainingArguments,
    model_dir: str,
    train_records: list[dict] | None,
    test_records: list[dict] | None,
    label_list: list[str],
    max_seq_length: int,
) -> dict:
    """Build the requested variants of the model saved in ``model_dir``; returns the entries for results.json."""
    if not args.requested:
        return {}
    from transformers import AutoTokenizer

    from modeling.vocab_pruning import corpus_vocabulary, prune_vocabulary, retokenized_rate, unk_rate

    from .onnx_export import export_onnx, load_token_classifier
    from .quantization import quantize_dynamic_torch, quantize_onnx_int8

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    test_sentences = [r["tokens"] for r in test_records or []]
    variants = {"fp32": {"path": model_dir, "size_bytes": weights_size_bytes(model_dir)}}
    measured = {"fp32": (torch_predict(load_token_classifier(model_dir)), tokenizer)} if test_records else {}
    results = {"fp32_size_bytes": variants["fp32"]["size_bytes"]}
    source_dir = model_dir

    if args.prune_vocab:
        train_sentences = [r["tokens"] for r in train_records or []]
        if not train_sentences and not args.prune_extra_texts:
            raise ValueError("--prune_vocab needs a training split or --prune_extra_texts to take the vocabulary from")
        keep = corpus_vocabulary(tokenizer, train_sentences, args.prune_extra_texts or (), keep_top=args.prune_keep_top)
        model = load_token_classifier(model_dir)
        vocab_size_before = model.config.vocab_size
        model, pruned_tokenizer = prune_vocabulary(model, tokenizer, keep)
        pruned_dir = os.path.join(model_dir, "vocab_pruned")
        with staged_dir(pruned_dir) as staging:
            model.save_pretrained(staging)
            pruned_tokenizer.save_pretrained(staging)
        results["vocab_pruning"] = {
            "vocab_size_before": vocab_size_before,  # rows of the word table
            "vocab_size_after": model.config.vocab_size,
            "corpus": ["train split"] * bool(train_sentences) + list(args.prune_extra_texts or []),
            "keep_top": args.prune_keep_top,
        }
        if test_sentences:
            results["vocab_pruning"].update(
                test_unk_rate_before=round(unk_rate(tokenizer, test_sentences), 6),
                test_unk_rate_after=round(unk_rate(pruned_tokenizer, test_sentences), 6),
                test_words_retokenized=round(retokenized_rate(tokenizer, pruned_tokenizer, test_sentences), 6),
            )
        variants["vocab_pruned"] = {"path": pruned_dir, "size_bytes": weights_size_bytes(pruned_dir)}
        measured["vocab_pruned"] = (torch_predict(model), pruned_tokenizer)
        source_dir, tokenizer = pruned_dir, pruned_tokenizer

    if args.export_onnx:
        onnx_dir = os.path.join(model_dir, "onnx")
        with staged_dir(onnx_dir) as staging:
            export_onnx(source_dir, os.path.join(staging, "model.onnx"))
            if args.quantize == "int8":
                quantize_onnx_int8(os.path.join(staging, "model.onnx"), os.path.join(staging, "model_int8.onnx"))
            tokenizer.save_pretrained(staging)
            shutil.copy(os.path.join(source_dir, "config.json"), staging)
        for name, file_name in (("onnx", "model.onnx"), ("onnx_int8", "model_int8.onnx")):
            path = os.path.join(onnx_dir, file_name)
            if os.path.isfile(path):
                variants[name] = {"path": path, "size_bytes": weights_size_bytes(path)}
                measured[name] = (onnx_predict(path), tokenizer)
    elif args.quantize == "int8":
        quantized = quantize_dynamic_torch(load_token_classifier(source_dir))
        int8_dir = os.path.join(model_dir, "pytorch_int8")
        with staged_dir(int8_dir) as staging:
            torch.save(quantized.state_dict(), os.path.join(staging, "model_int8.pt"))
            tokenizer.save_pretrained(staging)
            shutil.copy(os.path.join(source_dir, "config.json"), staging)
        path = os.path.join(int8_dir, "model_int8.pt")
        variants["torch_int8"] = {"path": path, "size_bytes": weights_size_bytes(path)}
        measured["torch_int8"] = (torch_predict(quantized), tokenizer)

    if test_records:
        for name, (predict, variant_tokenizer) in measured.items():
            variants[name].update(evaluate_variant(predict, variant_tokenizer, test_records, label_list,
                                                     max_seq_length))
            variants[name]["eval_device"] = "cpu"
    for name, entry in variants.items():
        entry["size_ratio"] = round(entry["size_bytes"] / variants["fp32"]["size_bytes"], 4)
        logger.info("variant %s: %s", name, {k: v for k, v in entry.items() if k != "path"})
    results["variants"] = variants
    return results
