"""After training: make the deployment variants of the saved model and measure each one on the test split.

``VariantSettings`` (the script's ``--prune_vocab``, ``--export_onnx`` and ``--quantize``) ask for vocabulary
pruning, an ONNX export and int8 quantization. They chain: the pruned model (if any) is the one exported, and the
exported file (if any) is the one quantized; without ``--export_onnx``, ``--quantize int8`` quantizes the PyTorch
model instead. Each variant is written beside the fp32
model and described in results.json: its size on disk, test F1 and speed, next to the same figures for fp32.

    <output_dir>/                  the fp32 model and tokenizer (as before)
    <output_dir>/vocab_pruned/     --prune_vocab: model + tokenizer (pruned with --prune_unseen resplit, unchanged
                                   with nearest), loadable by from_pretrained and pipeline
    <output_dir>/onnx/model.onnx   --export_onnx, with the tokenizer and config.json: OnnxNerPipeline(file, folder)
    <output_dir>/onnx/model_int8.onnx          --export_onnx --quantize int8
    <output_dir>/pytorch_int8/model_int8.pt    --quantize int8 alone: the state dict of quantize_dynamic_torch(model)

Every variant is measured as ``run_ner_predict`` runs it by default on a CoNLL file of the test records (same
chunks, length-sorted batches of ``EVAL_BATCH_SIZE`` windows, model threads and scorer; ``evaluate_variant``), on
CPU: its test F1 is the F1 the command prints, int8 included, and its speed the command's sentences per second
without reading and writing. results.json says so in each variant's ``eval_batching``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass

import torch
from transformers import AutoTokenizer

from runtime.atomic import staged_dir
from runtime.backends import TorchBackend, load_onnx
from runtime.formats import Sentence
from runtime.predict import CHUNK_SENTENCES, ChunkFormatter, PredictArguments, predict_sentences
from runtime.scoring import EntityCounts
from runtime.windows import NerPredictor

from .onnx_export import export_onnx, load_token_classifier
from .quantization import quantize_dynamic_torch, quantize_onnx_int8
from .vocab_pruning import DEFAULT_UNSEEN, UNSEEN_MODES, prune_to_folder, retokenized_rate, unk_rate

logger = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("none", "int8")
EVAL_BATCH_SIZE = PredictArguments.batch_size  # the command's default --batch_size
EVAL_BATCHING = (f"as run_ner_predict: batches of {EVAL_BATCH_SIZE} windows, sorted by length within chunks of "
                 f"{CHUNK_SENTENCES} sentences")
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


def evaluate_variant(backend, tokenizer, records: list[dict], batch_size: int = EVAL_BATCH_SIZE,
                     max_seq_length: int | None = None) -> dict:
    """Test F1 and sentences per second of one variant, as ``run_ner_predict`` tags and scores a CoNLL file of
    ``records`` with its defaults: the same chunks, length-sorted batches, windows, model threads and scorer.

    ``backend`` is one of the command's (``onnx_backend``, ``torch_backend``) and ``tokenizer`` the variant's own
    ``tokenizers.Tokenizer``. The time counts tokenizing, the model calls and aggregation, not reading or writing.
    Dynamic int8 quantizes each call's activations with one scale, so an int8 F1 depends on the batching: measured
    this way it is the F1 the command prints for the test file at the same ``--batch_size``.
    """
    predictor = NerPredictor(backend, tokenizer, max_seq_length, batch_size=batch_size,
                             workers=getattr(backend, "parallel_calls", 1))
    formatter = ChunkFormatter("jsonl", EntityCounts())
    formatter.counts.load()  # before the clock, as in the command
    sentences = [Sentence("words", [], record["tokens"], record["ner_tags"]) for record in records]
    with predictor:
        if records:  # one untimed call: first-call setup (allocations, thread pools) is not inference speed
            predictor.tag_words([records[0]["tokens"]])
        started = time.perf_counter()
        for _ in predict_sentences(predictor, sentences, formatter):
            pass
        seconds = time.perf_counter() - started
    return {"test_f1": round(formatter.counts.scores()["f1"], 4),
            "test_samples_per_second": round(len(records) / seconds, 2) if seconds else 0.0}


def torch_backend(model, hf_tokenizer) -> tuple[TorchBackend, object]:
    """The command's PyTorch backend on CPU, and a copy of the fast tokenizer's ``tokenizers.Tokenizer`` (the
    predictor turns its truncation and padding off)."""
    from tokenizers import Tokenizer

    return TorchBackend(model.eval().to("cpu"), "cpu"), Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())


def onnx_backend(onnx_path: str):
    """The command's ONNX Runtime session (its options and model threads) and the tokenizer beside the file."""
    return load_onnx(PredictArguments(model=onnx_path, input="-"))


def run_post_training(
    settings: VariantSettings,
    model_dir: str,
    train_records: list[dict] | None,
    test_records: list[dict] | None,
) -> dict:
    """Build the requested variants of the model saved in ``model_dir``; returns the entries for results.json."""
    if not settings.requested:
        return {}
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    variants = {"fp32": {"path": model_dir, "size_bytes": weights_size_bytes(model_dir)}}
    measured = {"fp32": torch_backend(load_token_classifier(model_dir), tokenizer)} if test_records else {}
    results = {"fp32_size_bytes": variants["fp32"]["size_bytes"]}
    source_dir = model_dir

    if settings.prune_vocab:
        pruned_dir = os.path.join(model_dir, "vocab_pruned")
        model, pruned_tokenizer, results["vocab_pruning"] = _prune(settings, model_dir, pruned_dir, tokenizer,
                                                                   train_records, test_records)
        variants["vocab_pruned"] = {"path": pruned_dir, "size_bytes": weights_size_bytes(pruned_dir)}
        measured["vocab_pruned"] = torch_backend(model, pruned_tokenizer)
        source_dir, tokenizer = pruned_dir, pruned_tokenizer
    if settings.export_onnx:
        for name, path in _export_onnx(source_dir, tokenizer, os.path.join(model_dir, "onnx"),
                                       settings.quantize == "int8").items():
            variants[name] = {"path": path, "size_bytes": weights_size_bytes(path)}
            measured[name] = onnx_backend(path)
    elif settings.quantize == "int8":
        quantized, path = _quantize_torch(source_dir, tokenizer, os.path.join(model_dir, "pytorch_int8"))
        variants["torch_int8"] = {"path": path, "size_bytes": weights_size_bytes(path)}
        measured["torch_int8"] = torch_backend(quantized, tokenizer)

    if test_records:
        for name, (backend, variant_tokenizer) in measured.items():
            variants[name].update(evaluate_variant(backend, variant_tokenizer, test_records))
            variants[name].update(eval_device="cpu", eval_batching=EVAL_BATCHING)
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
