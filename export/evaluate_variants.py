"""After training: make the deployment variants of the saved model and measure each one on the test split.

``VariantSettings`` (the script's ``--prune_vocab``, ``--export_onnx`` and ``--quantize``) ask for vocabulary
pruning, an ONNX export and int8 quantization. They chain: the pruned model (if any) is the one exported, and the
exported file (if any) is the one quantized; without ``--export_onnx``, ``--quantize int8`` quantizes the PyTorch
model instead. Each variant is written beside the fp32
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
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoTokenizer, DataCollatorForTokenClassification

from trainers.atomic import staged_dir
from trainers.metrics import entity_scores, tags_from_logits
from trainers.ner_data import tokenize_and_align

from .onnx_export import export_onnx, load_token_classifier
from .onnx_pipeline import OnnxTokenClassifier
from .quantization import quantize_dynamic_torch, quantize_onnx_int8
from .vocab_pruning import DEFAULT_UNSEEN, UNSEEN_MODES, prune_to_folder, retokenized_rate, unk_rate

logger = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("none", "int8")
EVAL_BATCH_SIZE = 32
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx", ".onnx.data")


@dataclass(frozen=True)
class VariantSettings:
    """Which deployment variants ``run_post_training`` makes (run_ner_compress.py's ``PostTrainingArguments``)."""

    prune_vocab: bool = False
    prune_extra_texts: tuple[str, ...] = ()  # plain-text files whose wordpieces pruning keeps too
    prune_keep_top: int = 0  # pruning also keeps the N most frequent pieces of the pretrained vocabulary
    prune_unseen: str = DEFAULT_UNSEEN  # a dropped piece: "resplit" (tokenizer pruned too) or "nearest" (kept row)
    export_onnx: bool = False
    quantize: str = "none"  # one of QUANTIZE_CHOICES

    def __post_init__(self):
        if self.quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"quantize={self.quantize!r} must be one of {QUANTIZE_CHOICES}")
        if self.prune_keep_top < 0:
            raise ValueError(f"prune_keep_top={self.prune_keep_top} must be 0 or more")
        if self.prune_unseen not in UNSEEN_MODES:
            raise ValueError(f"prune_unseen={self.prune_unseen!r} must be one of {UNSEEN_MODES}")

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
    label2id = {label: i for i, label in enumerate(label_list)}
    features = tokenize_and_align(records, tokenizer, label2id, max_seq_length, source="test")
    collate = DataCollatorForTokenClassification(tokenizer, return_tensors="np")  # labels padded with -100
    true_tags, pred_tags, seconds = [], [], 0.0
    if features:  # one untimed call: first-call setup (allocations, thread pools) is not inference speed
        predict(_model_inputs(collate(features[:1])))
    for start in range(0, len(features), batch_size):
        batch = collate(features[start : start + batch_size])
        inputs = _model_inputs(batch)
        began = time.perf_counter()
        logits = predict(inputs)  # (B, T, num_labels)
        seconds += time.perf_counter() - began
        truth, predicted = tags_from_logits(logits, batch["labels"], dict(enumerate(label_list)))
        true_tags += truth
        pred_tags += predicted
    scores = entity_scores(true_tags, pred_tags)
    return {"test_f1": round(scores["f1"], 4), "test_samples_per_second": round(len(features) / seconds, 2)}


def _model_inputs(batch) -> dict[str, np.ndarray]:
    """The three int64 (B, T) inputs of every variant; the ONNX graph needs token_type_ids even when the tokenizer
    makes none (zeros, as BERT reads a missing one)."""
    input_ids = np.asarray(batch["input_ids"], dtype=np.int64)
    token_type_ids = batch["token_type_ids"] if "token_type_ids" in batch else np.zeros_like(input_ids)
    return {"input_ids": input_ids, "attention_mask": np.asarray(batch["attention_mask"], dtype=np.int64),
            "token_type_ids": np.asarray(token_type_ids, dtype=np.int64)}


def torch_predict(model) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    model = model.eval().to("cpu")

    def predict(batch):
        with torch.inference_mode():
            return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy()

    return predict


def onnx_predict(onnx_path: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    classifier = OnnxTokenClassifier(onnx_path)
    return lambda batch: classifier.run_numpy(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])


def run_post_training(
    settings: VariantSettings,
    model_dir: str,
    train_records: list[dict] | None,
    test_records: list[dict] | None,
    label_list: list[str],
    max_seq_length: int,
) -> dict:
    """Build the requested variants of the model saved in ``model_dir``; returns the entries for results.json."""
    if not settings.requested:
        return {}
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    variants = {"fp32": {"path": model_dir, "size_bytes": weights_size_bytes(model_dir)}}
    measured = {"fp32": (torch_predict(load_token_classifier(model_dir)), tokenizer)} if test_records else {}
    results = {"fp32_size_bytes": variants["fp32"]["size_bytes"]}
    source_dir = model_dir

    if settings.prune_vocab:
        pruned_dir = os.path.join(model_dir, "vocab_pruned")
        model, pruned_tokenizer, results["vocab_pruning"] = _prune(settings, model_dir, pruned_dir, tokenizer,
                                                                   train_records, test_records)
        variants["vocab_pruned"] = {"path": pruned_dir, "size_bytes": weights_size_bytes(pruned_dir)}
        measured["vocab_pruned"] = (torch_predict(model), pruned_tokenizer)
        source_dir, tokenizer = pruned_dir, pruned_tokenizer
    if settings.export_onnx:
        for name, path in _export_onnx(source_dir, tokenizer, os.path.join(model_dir, "onnx"),
                                       settings.quantize == "int8").items():
            variants[name] = {"path": path, "size_bytes": weights_size_bytes(path)}
            measured[name] = (onnx_predict(path), tokenizer)
    elif settings.quantize == "int8":
        quantized, path = _quantize_torch(source_dir, tokenizer, os.path.join(model_dir, "pytorch_int8"))
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


def _prune(settings: VariantSettings, model_dir: str, pruned_dir: str, tokenizer, train_records, test_records):
    """The pruned model and tokenizer (saved to ``pruned_dir``), and the results.json entry that describes them."""
    train_sentences = [r["tokens"] for r in train_records or []]
    if not train_sentences and not settings.prune_extra_texts:
        raise ValueError("--prune_vocab needs a training split or --prune_extra_texts to take the vocabulary from")
    model = load_token_classifier(model_dir)
    vocab_size_before = model.config.vocab_size
    model, pruned_tokenizer = prune_to_folder(model, tokenizer, pruned_dir, train_sentences,
                                              settings.prune_extra_texts, settings.prune_keep_top,
                                              settings.prune_unseen)
    info = {
        "vocab_size_before": vocab_size_before,  # rows of the word table
        "vocab_size_after": model.get_input_embeddings().num_embeddings,  # "nearest" keeps config.vocab_size
        "unseen": settings.prune_unseen,
        "corpus": ["train split"] * bool(train_sentences) + list(settings.prune_extra_texts),
        "keep_top": settings.prune_keep_top,
    }
    test_sentences = [r["tokens"] for r in test_records or []]
    if test_sentences:
        info.update(
            test_unk_rate_before=round(unk_rate(tokenizer, test_sentences), 6),
            test_unk_rate_after=round(unk_rate(pruned_tokenizer, test_sentences), 6),
            test_words_retokenized=round(retokenized_rate(tokenizer, pruned_tokenizer, test_sentences), 6),
        )
    return model, pruned_tokenizer, info


def _export_onnx(source_dir: str, tokenizer, onnx_dir: str, int8: bool) -> dict[str, str]:
    """``onnx_dir`` with model.onnx (and model_int8.onnx), the tokenizer and config.json; returns the model files."""
    with staged_dir(onnx_dir) as staging:
        export_onnx(source_dir, os.path.join(staging, "model.onnx"))
        if int8:
            quantize_onnx_int8(os.path.join(staging, "model.onnx"), os.path.join(staging, "model_int8.onnx"))
        tokenizer.save_pretrained(staging)
        shutil.copy(os.path.join(source_dir, "config.json"), staging)
    files = {"onnx": os.path.join(onnx_dir, "model.onnx"), "onnx_int8": os.path.join(onnx_dir, "model_int8.onnx")}
    return {name: path for name, path in files.items() if os.path.isfile(path)}


def _quantize_torch(source_dir: str, tokenizer, int8_dir: str):
    """The int8 PyTorch model, and its state dict saved in ``int8_dir`` beside the tokenizer and config.json."""
    quantized = quantize_dynamic_torch(load_token_classifier(source_dir))
    with staged_dir(int8_dir) as staging:
        torch.save(quantized.state_dict(), os.path.join(staging, "model_int8.pt"))
        tokenizer.save_pretrained(staging)
        shutil.copy(os.path.join(source_dir, "config.json"), staging)
    return quantized, os.path.join(int8_dir, "model_int8.pt")
