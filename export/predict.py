"""Predict entities in a file with a saved model (PyTorch) or an ONNX file (ONNX Runtime): the core of ``run_ner_predict``.

This module imports neither torch nor transformers at import time. The ONNX path needs only numpy, tokenizers and
onnxruntime (the distribution in ``serve/``); the PyTorch path imports torch, transformers and ``modeling`` when
it loads a model.

Input formats (``detect_input_format``), decided from the name and the first lines:
  * ``.json`` / ``.jsonl`` (optionally ``.gz``), or a first line that is a JSON object with a ``"tokens"`` list:
    JSON lines like the training files, ``{"tokens": [...]}`` with optional gold ``"ner_tags"``;
  * a first line ``-DOCSTART-``, or first non-blank lines that all have two or more columns ending in an IOB tag
    (``O``, ``B-X``, ``I-X``): CoNLL columns, token first, gold tag last;
  * anything else (``.txt``, ``.gz``, ``-`` for stdin): raw text, one document or sentence per line.

Aggregation follows training (``trainers.ner_data.tokenize_and_align``): a word's tag is the tag of its first
subword, and B-/I- tags are grouped into entities as conlleval and seqeval's default mode do (an ``I-X`` after ``O``
or after another type opens an entity). In raw text, the words are the tokenizer's pre-tokenizer words (BERT splits
on whitespace and punctuation, as CoNLL does).

A line longer than the model's maximum length is split into windows of subwords that overlap by ``stride``
subwords; each word takes its tag from the window where it lies farthest from a cut edge, and words are grouped
into entities after that, so an entity that straddles a window edge is found whole. Nothing is truncated.

Throughput: the file is read, tokenized, predicted and written ``CHUNK_SENTENCES`` sentences at a time, with the
model one chunk ahead of the writing. An ONNX model on CPU runs one single-threaded call per core, side by side in
threads (ONNX Runtime releases the GIL): NER batches are small, and one call split over all cores leaves them
partly idle. The threads take a chunk's longest batches first, so that they finish together. The batches, and so
the output, do not depend on the number of threads. The cost: an input that makes a single batch (a few long
lines, say) uses one core.

```python
>>> backend, tokenizer = load_backend(PredictArguments(model="outputs/teacher/onnx/model_int8.onnx", input="-"))
>>> predictor = NerPredictor(backend, tokenizer)
>>> predictor.entities(["Mara Velden joined Norvane Bank ."])
[[{'start': 0, 'end': 11, 'label': 'PER', 'text': 'Mara Velden', 'score': 0.9871}, ...]]
```
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import gzip
import inspect
import io
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .onnx_session import OnnxNerSession, import_onnxruntime

FORMATS = ("jsonl", "conll")
DEVICES = ("cpu", "cuda")
DOCSTART = "-DOCSTART-"
PEEK_LINES = 20  # non-blank lines looked at to tell CoNLL columns from raw text
CHUNK_SENTENCES = 2048  # read, predict and write this many sentences at a time: memory does not grow with the file
MAX_COPY_LINES = 65536  # blank / -DOCSTART- lines a chunk may hold besides its sentences (a file of blank lines)
DEFAULT_MAX_LENGTH = 512


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "A saved model folder, a Hub id, or an .onnx file (fp32 or int8)."})
    input: str = field(metadata={"help": "Raw text (.txt, .gz, or - for stdin; one document per line), or a CoNLL / "
                                         "JSON-lines file like the training ones."})
    output: str | None = field(default=None, metadata={"help": "Where to write (default: stdout)."})
    format: str | None = field(
        default=None,
        metadata={"help": "Output format (default: conll for CoNLL input, jsonl otherwise).", "choices": FORMATS},
    )
    batch_size: int = field(default=32, metadata={"help": "Windows per model call (batched by length)."})
    device: str = field(default="cpu", metadata={"help": "cpu or cuda.", "choices": DEVICES})
    tokenizer: str | None = field(
        default=None, metadata={"help": "Tokenizer folder (default: the model folder, or the .onnx file's folder)."}
    )
    encoding: str | None = field(
        default=None, metadata={"help": "The input's text encoding (default: UTF-8, and other bytes are an error)."}
    )
    max_seq_length: int | None = field(
        default=None,
        metadata={"help": "Subwords per window, special tokens included (default: the model's maximum, at most 512)."},
    )
    stride: int | None = field(
        default=None, metadata={"help": "Subwords shared by consecutive windows of a long line (default: a quarter)."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow a Hub model whose class is code in its repository to run that code."}
    )

    def __post_init__(self):
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"--format {self.format!r} must be one of {FORMATS}")
        if self.device not in DEVICES:
            raise ValueError(f"--device {self.device!r} must be one of {DEVICES}")
        if self.batch_size < 1:
            raise ValueError(f"--batch_size {self.batch_size} must be at least 1")
        if self.max_seq_length is not None and self.max_seq_length < 4:
            raise ValueError(f"--max_seq_length {self.max_seq_length} must be at least 4")
        if self.stride is not None and self.stride < 0:
            raise ValueError(f"--stride {self.stride} must be 0 or more")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise ValueError(f"--encoding {self.encoding!r}: unknown text encoding") from None
        if self.input != "-" and not os.path.isfile(self.input):
            raise FileNotFoundError(f"--input {self.input}: no such file")
        if self.output and os.path.isdir(self.output):
            raise ValueError(f"--output {self.output}: is a folder; give a file name")


def parse_predict_args(argv: list[str] | None = None, prog: str = "run_ner_predict") -> PredictArguments:
    """argparse built from the dataclass fields (transformers' HfArgumentParser would import torch)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(PredictArguments):
        required = f.default is dataclasses.MISSING
        if f.type in ("bool", bool):
            parser.add_argument(f"--{f.name}", action="store_true", help=f.metadata["help"])
            continue
        kind = int if "int" in str(f.type) else str
        parser.add_argument(f"--{f.name}", type=kind, required=required, default=None if required else f.default,
                            choices=f.metadata.get("choices"), help=f.metadata["help"])
    return PredictArguments(**vars(parser.parse_args(argv)))


# ----------------------------------------------------------------------------------------------------------------
# Models: a backend is ``id2label``, ``max_positions`` and ``logits(input_ids, attention_mask, token_type_ids)``;
# ``parallel_calls`` (default 1) says how many ``logits`` calls may run at once, each in its own thread.


def usable_cores() -> int:
    """The cores this process may run on (taskset and container CPU sets included)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class OnnxBackend:
    def __init__(self, session: OnnxNerSession, max_positions: int | None, parallel_calls: int = 1):
        self.session = session
        self.id2label = session.id2label
        self.max_positions = max_positions
        self.parallel_calls = parallel_calls

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        return self.session.logits(input_ids, attention_mask, token_type_ids)  # (B, T, num_labels)


class TorchBackend:
    def __init__(self, model, device: str):
        self.model = model
        self.device = device
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.max_positions = getattr(model.config, "max_position_embeddings", None)
        self.takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        import torch

        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.takes_token_types:
            inputs["token_type_ids"] = token_type_ids
        with torch.inference_mode():
            outputs = self.model(**{k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()})
        return outputs.logits.float().cpu().numpy()  # (B, T, num_labels)


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_tokenizer_file(folder: str, model: str):
    """The fast tokenizer saved as ``folder``/tokenizer.json, read by the tokenizers library alone."""
    from tokenizers import Tokenizer

    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{model}: its tokenizer folder {folder} does not exist (pass --tokenizer FOLDER)")
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{model}: no tokenizer.json in its tokenizer folder {folder} (pass --tokenizer FOLDER)")
    try:
        return Tokenizer.from_file(path)
    except Exception as err:  # tokenizers raises a bare Exception for a malformed file
        raise ValueError(f"{path}: not a tokenizers file ({err})") from None


def load_onnx(args: PredictArguments):
    onnxruntime = import_onnxruntime()
    folder = args.tokenizer or os.path.dirname(os.path.abspath(args.model))
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"--model {args.model}: no such ONNX file")
    tokenizer = load_tokenizer_file(folder, args.model)
    config_path = os.path.join(os.path.dirname(os.path.abspath(args.model)), "config.json")
    if not os.path.isfile(config_path):
        config_path = os.path.join(folder, "config.json")
    config = _read_json(config_path) if os.path.isfile(config_path) else {}
    id2label = {int(k): v for k, v in config["id2label"].items()} if "id2label" in config else None
    providers, options, parallel_calls = ["CPUExecutionProvider"], onnxruntime.SessionOptions(), usable_cores()
    if args.device == "cuda":
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise ValueError("--device cuda: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
        providers, parallel_calls = ["CUDAExecutionProvider"], 1
    else:
        options.enable_mem_pattern = False  # its memory plan is made per input shape, and ours change every call
    if parallel_calls > 1:
        # One core per call and one call per core (NerPredictor runs them side by side): the small batches of NER
        # split poorly across cores. A call's result does not depend on its thread count, so the output is the same.
        options.intra_op_num_threads = 1
    try:
        session = OnnxNerSession(args.model, id2label, providers, options)
    except (ValueError, OSError):  # already one line naming the file
        raise
    except Exception as err:  # onnxruntime's own types for a file that is not a model
        raise ValueError(f"--model {args.model}: ONNX Runtime cannot load it ({str(err).splitlines()[0]})") from None
    # A tokenizer with ids past the embedding table is another model's (the model may have spare rows: no error)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if not session.accepts_token_id(size - 1):
        raise ValueError(f"{args.model} does not match the tokenizer in {folder}: the tokenizer has {size} tokens, "
                         "more than the model's vocabulary (pass the model's own folder with --tokenizer)")
    return OnnxBackend(session, config.get("max_position_embeddings"), parallel_calls), tokenizer


def load_torch(args: PredictArguments):
    try:
        import torch
        from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer
    except ImportError as err:
        raise ImportError(f"--model {args.model}: a model folder or Hub id runs with PyTorch and transformers ({err}); "
                          "install the project, or give an exported .onnx file") from None

    from transformers.utils import logging as transformers_logging

    import modeling  # noqa: F401  (registers the compressed model types with the Auto classes)

    transformers_logging.disable_progress_bar()  # its weight-loading bar would land in the user's stderr or pipe
    transformers_logging.set_verbosity_error()

    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device")
    try:
        config = AutoConfig.from_pretrained(args.model, trust_remote_code=args.trust_remote_code)
    except (OSError, ValueError) as err:
        raise OSError(f"--model {args.model}: not a model folder, Hub id or .onnx file "
                      f"({str(err).splitlines()[0]})") from None
    architectures = getattr(config, "architectures", None) or []
    if not any(name.endswith("ForTokenClassification") for name in architectures):
        raise ValueError(f"{args.model}: no token-classification head (architectures {architectures}); "
                         "give a folder saved by run_ner_compress.py or another *ForTokenClassification model")
    model = AutoModelForTokenClassification.from_pretrained(args.model, trust_remote_code=args.trust_remote_code)
    model = model.eval().to(args.device)
    tokenizer_source = args.tokenizer or args.model
    try:
        hf_tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=args.trust_remote_code)
    except (OSError, ValueError) as err:
        raise OSError(f"{tokenizer_source}: cannot load a tokenizer ({str(err).splitlines()[0]})") from None
    if not getattr(hf_tokenizer, "is_fast", False):
        raise ValueError(f"{tokenizer_source}: a fast tokenizer (tokenizer.json) is needed for word alignment")
    return TorchBackend(model, args.device), hf_tokenizer.backend_tokenizer


def load_backend(args: PredictArguments):
    """(backend, ``tokenizers.Tokenizer``) for an .onnx file (no torch) or a folder / Hub id (PyTorch)."""
    if args.model.endswith(".onnx"):
        return load_onnx(args)
    return load_torch(args)


# ----------------------------------------------------------------------------------------------------------------
# Prediction


def special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer's post-processor puts before and after one sequence ([CLS] and [SEP] for BERT)."""
    bare = tokenizer.encode("a", add_special_tokens=False).ids
    full = tokenizer.encode("a", add_special_tokens=True).ids
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            return full[:start], full[start + len(bare):]
    return [], []


def group_entities(tags: list[str]) -> list[tuple[int, int, str]]:
    """(first word, last word + 1, type) of each entity, opened as conlleval does: B-X, or I-X after O/another type."""
    spans, start, kind = [], None, None
    for index, tag in enumerate(tags + ["O"]):
        prefix, entity_type = (tag[:1], tag[2:]) if tag != "O" else ("O", None)
        continues = prefix == "I" and start is not None and entity_type == kind
        if start is not None and not continues:
            spans.append((start, index, kind))
            start, kind = None, None
        if prefix in ("B", "I") and start is None:
            start, kind = index, entity_type
    return spans


@dataclass
class WordPredictions:
    """Per word of one sentence: its tag, the probability of that tag, and its characters (raw text only)."""

    tags: list[str]
    scores: list[float]
    spans: list[tuple[int, int]] | None = None


@dataclass
class WindowBatch:
    """One model call: rows are windows ``(encoding, first subword, end subword)``, padded to the longest."""

    jobs: list[tuple[int, int, int]]
    input_ids: np.ndarray  # (B, T)
    attention_mask: np.ndarray  # (B, T)


class PendingWords:
    """The words of the lines given to ``NerPredictor.submit_text`` / ``submit_words``; ``result()`` waits for
    the model calls (already running in the predictor's threads, if it has any) and aggregates them."""

    def __init__(self, predictor: NerPredictor, encodings: list, num_words: list[int] | None):
        self.predictor, self.encodings, self.num_words = predictor, encodings, num_words
        self.batches = predictor.batches(encodings)  # shortest first
        self.calls = None
        if predictor.pool:
            # Longest first, so that the threads finish together: the last call left is a short one.
            self.calls = [predictor.pool.submit(predictor.run, batch) for batch in reversed(self.batches)][::-1]

    def result(self) -> list[WordPredictions]:
        predictor = self.predictor
        logits = (call.result() for call in self.calls) if self.calls else map(predictor.run, self.batches)
        return predictor.words(self.encodings, predictor.gather(self.encodings, self.batches, logits), self.num_words)


class NerPredictor:
    """Tags words with first-subword aggregation, over windows of at most ``max_seq_length`` subwords.

    With ``workers`` > 1 the model calls run in that many threads (ONNX Runtime releases the GIL; each call then
    uses one core), while the caller reads, tokenizes and writes: ``submit_*`` starts the calls, ``result()``
    collects them in order. The batches are the same either way, so the output is too.
    """

    def __init__(self, backend, tokenizer, max_seq_length: int | None = None, stride: int | None = None,
                 batch_size: int = 32, workers: int = 1):
        self.backend = backend
        self.tokenizer = tokenizer
        tokenizer.no_truncation()  # a saved tokenizer.json may carry training-time truncation or padding
        tokenizer.no_padding()
        self.prefix, self.suffix = special_tokens_around(tokenizer)
        limit = backend.max_positions or DEFAULT_MAX_LENGTH
        self.max_seq_length = max_seq_length or min(limit, DEFAULT_MAX_LENGTH)
        if self.max_seq_length > limit:
            raise ValueError(f"--max_seq_length {self.max_seq_length} exceeds the model's {limit} positions")
        self.window = self.max_seq_length - len(self.prefix) - len(self.suffix)  # subwords of text per window
        if self.window < 1:
            raise ValueError(f"--max_seq_length {self.max_seq_length} leaves no room beside the special tokens")
        self.stride = self.window // 4 if stride is None else stride
        if self.stride >= self.window:
            raise ValueError(f"--stride {self.stride} must be below the {self.window} text subwords of a window "
                             f"(--max_seq_length {self.max_seq_length} minus the special tokens)")
        self.batch_size = batch_size
        self.pad_id = tokenizer.token_to_id("[PAD]") or 0
        self.id2label = backend.id2label
        self.windows_run = 0
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="ner-model") if workers > 1 else None

    def close(self) -> None:
        """Stop the model threads; calls not yet started are dropped (after an error, say)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def windows(self, length: int) -> list[tuple[int, int]]:
        """[start, end) subword ranges covering ``length`` subwords, consecutive ones sharing ``stride``."""
        if length <= self.window:
            return [(0, length)]
        step = self.window - self.stride
        starts = list(range(0, length - self.window, step)) + [length - self.window]
        return [(start, start + self.window) for start in starts]

    def batches(self, encodings) -> list[WindowBatch]:
        """Every window of every encoding, sorted by length (little padding) and cut into ``batch_size`` rows."""
        jobs = [(i, start, end) for i, enc in enumerate(encodings) for start, end in self.windows(len(enc))]
        jobs = [job for job in jobs if job[2] > job[1]]
        jobs.sort(key=lambda job: job[2] - job[1])
        batches = []
        for first in range(0, len(jobs), self.batch_size):
            rows = jobs[first:first + self.batch_size]
            width = max(end - start for _, start, end in rows) + len(self.prefix) + len(self.suffix)
            # Padded by hand, not by DataCollatorForTokenClassification: the ONNX path runs without transformers.
            input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)  # (B, T)
            attention_mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, (i, start, end) in enumerate(rows):
                ids = self.prefix + encodings[i].ids[start:end] + self.suffix
                input_ids[row, :len(ids)] = ids
                attention_mask[row, :len(ids)] = 1
            batches.append(WindowBatch(rows, input_ids, attention_mask))
        return batches

    def run(self, batch: WindowBatch) -> np.ndarray:
        return self.backend.logits(batch.input_ids, batch.attention_mask, np.zeros_like(batch.input_ids))  # (B, T, C)

    def gather(self, encodings, batches: list[WindowBatch], logits: Iterable[np.ndarray]) -> np.ndarray:
        """(N, num_labels) logits of all N subwords of ``encodings`` end to end, each from its most central window."""
        lengths = [len(enc) for enc in encodings]
        offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
        out = np.zeros((offsets[-1], len(self.id2label)), dtype=np.float32)
        best = None  # per subword, its distance from the nearest cut edge in the window it was taken from
        n_prefix = len(self.prefix)
        for batch, batch_logits in zip(batches, logits):
            self.windows_run += len(batch.jobs)
            for row, (i, start, end) in enumerate(batch.jobs):
                rows = batch_logits[row, n_prefix:n_prefix + end - start]
                length, offset = lengths[i], offsets[i]
                if end - start == length:  # the line's only window
                    out[offset:offset + length] = rows
                    continue
                if best is None:
                    best = np.full(len(out), -1.0)
                positions = np.arange(start, end)
                left = positions - start if start > 0 else np.full(end - start, length)
                right = end - 1 - positions if end < length else np.full(end - start, length)
                centrality = np.minimum(left, right)
                seen = best[offset + start:offset + end]
                better = centrality > seen
                seen[better] = centrality[better]
                out[offset + start:offset + end][better] = rows[better]
        return out

    def words(self, encodings, logits: np.ndarray, num_words: list[int] | None) -> list[WordPredictions]:
        """Each word's tag from its first subword; ``logits`` are ``gather``'s. Raw text (``num_words`` None):
        the words the pre-tokenizer made, with their character spans; else ``num_words[i]`` words per sentence,
        one that has no subword (a lone zero-width space, say) tagged O."""
        lengths = [len(enc) for enc in encodings]
        word_ids = np.fromiter((-1 if w is None else w for enc in encodings for w in enc.word_ids), np.int64,
                               count=sum(lengths))
        sentence = np.repeat(np.arange(len(encodings)), lengths)
        positions = np.flatnonzero(word_ids >= 0)
        word_ids, sentence = word_ids[positions], sentence[positions]
        key = sentence * (int(word_ids.max(initial=0)) + 1) + word_ids  # one number per (sentence, word)
        _, first = np.unique(key, return_index=True)  # sorted by (sentence, word); the first occurrence of each
        chosen = logits[positions[first]]  # (W, C)
        chosen = chosen - chosen.max(axis=-1, keepdims=True)
        probabilities = np.exp(chosen) / np.exp(chosen).sum(axis=-1, keepdims=True)
        labels = probabilities.argmax(axis=-1)
        tags = [self.id2label[label] for label in labels.tolist()]
        scores = probabilities[np.arange(len(labels)), labels].tolist()
        if num_words is not None:
            return self._all_words(sentence[first], word_ids[first], tags, scores, num_words)
        _, last = np.unique(key[::-1], return_index=True)
        offsets = np.array([span for enc in encodings for span in enc.offsets], dtype=np.int64).reshape(-1, 2)
        starts = offsets[positions[first], 0].tolist()
        ends = offsets[positions[len(key) - 1 - last], 1].tolist()
        bounds = np.cumsum(np.bincount(sentence[first], minlength=len(encodings))).tolist()
        return [WordPredictions(tags[a:b], scores[a:b], list(zip(starts[a:b], ends[a:b])))
                for a, b in zip([0] + bounds[:-1], bounds)]

    @staticmethod
    def _all_words(sentence: np.ndarray, word: np.ndarray, tags: list[str], scores: list[float],
                   num_words: list[int]) -> list[WordPredictions]:
        bounds = np.cumsum(num_words).tolist()
        all_tags, all_scores = ["O"] * (bounds[-1] if bounds else 0), [1.0] * (bounds[-1] if bounds else 0)
        starts = [0] + bounds[:-1]
        for index, tag, score in zip((np.asarray(starts, dtype=np.int64)[sentence] + word).tolist(), tags, scores):
            all_tags[index], all_scores[index] = tag, score
        return [WordPredictions(all_tags[a:b], all_scores[a:b]) for a, b in zip(starts, bounds)]

    def submit_words(self, sentences: list[list[str]]) -> PendingWords:
        """Pre-split words (CoNLL, JSON lines): one tag per word, once ``result()`` is called."""
        encodings = self.tokenizer.encode_batch(sentences, is_pretokenized=True,
                                                add_special_tokens=False) if sentences else []
        return PendingWords(self, encodings, [len(s) for s in sentences])

    def submit_text(self, lines: list[str]) -> PendingWords:
        """Raw lines: the pre-tokenizer's words, with character spans into each line, once ``result()`` is called."""
        encodings = self.tokenizer.encode_batch(lines, add_special_tokens=False) if lines else []
        return PendingWords(self, encodings, None)

    def tag_words(self, sentences: list[list[str]]) -> list[WordPredictions]:
        return self.submit_words(sentences).result()

    def tag_text(self, lines: list[str]) -> list[WordPredictions]:
        return self.submit_text(lines).result()

    def entities(self, lines: list[str]) -> list[list[dict]]:
        """``{"start", "end", "label", "text", "score"}`` per entity, offsets into each line."""
        return [entity_dicts(line, words) for line, words in zip(lines, self.tag_text(lines))]


def entity_dicts(text: str, words: WordPredictions) -> list[dict]:
    """Entities of one raw line; ``text[start:end] == entity["text"]``; the score is the mean word probability."""
    entities = []
    for first, stop, label in group_entities(words.tags):
        start, end = words.spans[first][0], words.spans[stop - 1][1]
        score = sum(words.scores[first:stop]) / (stop - first)
        entities.append({"start": start, "end": end, "label": label, "text": text[start:end],
                         "score": round(score, 4)})
    return entities


# ----------------------------------------------------------------------------------------------------------------
# Reading


def _open_binary(path: str):
    if path == "-":
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_lines(path: str, encoding: str | None) -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending), decoded line by line so that a bad byte names its line."""
    name = "<stdin>" if path == "-" else path
    stream = _open_binary(path)
    try:
        for line_no, raw in enumerate(stream, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf") and encoding is None:
                raw = raw[3:]  # a UTF-8 byte-order mark
            try:
                text = raw.decode(encoding or "utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{name}:{line_no}: not {encoding or 'UTF-8'} text (byte {raw[err.start]:#04x} at "
                                 f"byte {err.start + 1} of the line); a binary file? give --encoding if the text "
                                 "uses another encoding") from None
            if encoding is None and "\x00" in text:
                raise ValueError(f"{name}:{line_no}: a NUL byte: this looks like a binary file, not text "
                                 "(give --encoding to read it anyway)")
            yield line_no, text.rstrip("\n").removesuffix("\r")
    except (OSError, EOFError) as err:  # a truncated or invalid .gz
        raise ValueError(f"{name}: cannot read it ({err})") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def is_iob(tag: str) -> bool:
    return tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)


def detect_input_format(path: str, head: list[str]) -> tuple[str, bool]:
    """("text" | "conll" | "jsonl", whether gold tags are present); see the module docstring for the rule."""
    if path.removesuffix(".gz").endswith((".json", ".jsonl")):
        return "jsonl", False  # gold is known per record
    non_blank = [line for line in head if line.strip()]
    if not non_blank:
        return "text", False
    if non_blank[0].lstrip().startswith("{"):  # JSON lines without the extension (stdin, say)
        try:
            if isinstance(json.loads(non_blank[0]).get("tokens"), list):
                return "jsonl", False
        except (json.JSONDecodeError, AttributeError):
            pass
    if non_blank[0].split()[0] == DOCSTART:
        token_lines = [line.split() for line in non_blank[1:] if line.split()[0] != DOCSTART]
        return "conll", bool(token_lines) and all(len(c) >= 2 and is_iob(c[-1]) for c in token_lines)
    if all(len(line.split()) >= 2 and is_iob(line.split()[-1]) for line in non_blank):
        return "conll", True
    return "text", False


@dataclass
class Sentence:
    """One unit of output, in input order: a raw line, a CoNLL sentence, or lines to copy through."""

    kind: str  # "text", "words" or "copy"
    lines: list[str]  # the source lines (text: the line itself)
    words: list[str] = field(default_factory=list)
    gold: list[str] | None = None
    record: dict | None = None  # JSON lines: the record, written back with the predicted tags


def read_sentences(path: str, numbered_lines: Iterable[tuple[int, str]], input_format: str, has_gold: bool
                   ) -> Iterator[Sentence]:
    name = "<stdin>" if path == "-" else path
    if input_format == "text":
        for _, line in numbered_lines:
            yield Sentence("text", [line])
        return
    if input_format == "jsonl":
        for line_no, line in numbered_lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{name}:{line_no}: not valid JSON ({err.msg})") from None
            tokens = record.get("tokens") if isinstance(record, dict) else None
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise ValueError(f"{name}:{line_no}: each line needs a list of strings 'tokens'")
            gold = record.get("ner_tags")
            if gold is not None and (not isinstance(gold, list) or len(gold) != len(tokens)
                                     or not all(isinstance(t, str) and is_iob(t) for t in gold)):
                raise ValueError(f"{name}:{line_no}: 'ner_tags' must be one IOB tag string per token")
            yield Sentence("words", [line], tokens, gold, record)
        return
    lines, words, gold = [], [], []
    for line_no, line in numbered_lines:
        columns = line.split()
        if not columns or columns[0] == DOCSTART:
            if words:
                yield Sentence("words", lines, words, gold if has_gold else None)
                lines, words, gold = [], [], []
            yield Sentence("copy", [line])
            continue
        if has_gold and (len(columns) < 2 or not is_iob(columns[-1])):
            raise ValueError(f"{name}:{line_no}: expected a token and an IOB tag (O, B-X, I-X) as the last column, "
                             f"found {line.strip()!r}")
        lines.append(line)
        words.append(columns[0])
        gold.append(columns[-1])
    if words:
        yield Sentence("words", lines, words, gold if has_gold else None)


# ----------------------------------------------------------------------------------------------------------------
# Writing and scoring


class EntityCounts:
    """Micro entity P/R/F1 accumulated sentence by sentence: seqeval's default (conlleval) mode, streamed."""

    def __init__(self):
        self.get_entities = None  # seqeval (and scikit-learn under it) load on the first gold sentence: ~1 s
        self.available = True
        self.gold = self.predicted = self.correct = self.sentences = 0

    def load(self) -> None:
        try:
            from seqeval.metrics.sequence_labeling import get_entities
        except ImportError:  # optional in serve/ (its scores extra)
            self.available = False
            return
        self.get_entities = get_entities

    def add(self, gold: list[str], predicted: list[str]) -> None:
        if self.get_entities is None and self.available:
            self.load()
        if not self.available:
            return
        gold_set, predicted_set = set(self.get_entities(gold)), set(self.get_entities(predicted))
        self.gold += len(gold_set)
        self.predicted += len(predicted_set)
        self.correct += len(gold_set & predicted_set)
        self.sentences += 1

    def scores(self) -> dict[str, float]:
        precision = self.correct / self.predicted if self.predicted else 0.0
        recall = self.correct / self.gold if self.gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1}


def format_sentence(sentence: Sentence, words: WordPredictions, output_format: str) -> str:
    if sentence.kind == "copy":  # blank and -DOCSTART- lines: kept in CoNLL output, dropped from JSON lines
        if output_format == "jsonl":
            return ""
        line = sentence.lines[0]
        return (line.rstrip() + " O\n") if line.split() else "\n"
    if sentence.kind == "text":
        text = sentence.lines[0]
        if output_format == "conll":
            return "".join(f"{text[s:e]} {tag}\n" for (s, e), tag in zip(words.spans, words.tags)) + "\n"
        return json.dumps({"text": text, "entities": entity_dicts(text, words)}, ensure_ascii=False) + "\n"
    if output_format == "conll":
        if sentence.record is not None:  # JSON lines in: token, gold (if any), predicted
            gold = sentence.gold or [None] * len(sentence.words)
            return "".join(" ".join(c for c in (w, g, p) if c) + "\n"
                           for w, g, p in zip(sentence.words, gold, words.tags)) + "\n"
        return "".join(f"{line.rstrip()} {tag}\n" for line, tag in zip(sentence.lines, words.tags))
    record = dict(sentence.record) if sentence.record is not None else {"tokens": sentence.words}
    if sentence.gold is not None:
        record["ner_tags"] = sentence.gold
    record["pred_tags"] = words.tags
    return json.dumps(record, ensure_ascii=False) + "\n"


class AtomicOutput:
    """stdout, or a hidden temporary file beside ``path`` that is renamed to it only when all went well.

    Not ``trainers.atomic``: importing the ``trainers`` package loads torch, which this module must not need.
    """

    def __init__(self, path: str | None):
        self.path = path
        self.partial = None

    def __enter__(self):
        if not self.path:
            return sys.stdout
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"--output {self.path}: the folder {directory} does not exist")
        handle, self.partial = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".partial",
                                                dir=directory)
        self.file = io.open(handle, "w", encoding="utf-8", newline="\n")
        return self.file

    def __exit__(self, exc_type, exc, traceback):
        if not self.path:
            sys.stdout.flush()
            return False
        self.file.close()
        if exc_type is None:
            os.chmod(self.partial, 0o644)  # mkstemp makes it owner-only; predictions are meant to be shared
            os.replace(self.partial, self.path)
        else:
            os.remove(self.partial)
        return False


def sentence_chunks(sentences: Iterable[Sentence]) -> Iterator[list[Sentence]]:
    """Chunks of ``CHUNK_SENTENCES`` sentences to tag, with the blank and -DOCSTART- lines between them riding along
    uncounted (up to ``MAX_COPY_LINES`` a chunk): the model's batches then depend on the sentences alone, so
    ``evaluate_variants`` batches a test split's records exactly as the command batches its file."""
    chunk, tagged = [], 0
    for sentence in sentences:
        chunk.append(sentence)
        tagged += sentence.kind != "copy"
        if tagged == CHUNK_SENTENCES or len(chunk) - tagged == MAX_COPY_LINES:
            yield chunk
            chunk, tagged = [], 0
    if chunk:
        yield chunk


def _progress(disable: bool):
    if disable:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # optional in serve/ (its progress extra): no bar
        return None
    return tqdm(unit=" sentences", disable=disable, file=sys.stderr)


@dataclass
class PredictSummary:
    sentences: int
    entities: int
    seconds: float
    input_format: str
    scores: dict[str, float] | None = None

    @property
    def sentences_per_second(self) -> float:
        return self.sentences / self.seconds if self.seconds else 0.0


class ChunkFormatter:
    """Turns chunks of sentences and their pending words into output text, in input order, and counts them."""

    def __init__(self, output_format: str, counts: EntityCounts, bar=None):
        self.output_format, self.counts, self.bar = output_format, counts, bar
        self.sentences = self.entities = 0

    def format(self, chunk: list[Sentence], text: PendingWords, words: PendingWords) -> str:
        text_predictions, word_predictions = iter(text.result()), iter(words.result())
        parts = []
        for sentence in chunk:
            if sentence.kind == "copy":
                parts.append(format_sentence(sentence, None, self.output_format))
                continue
            predicted = next(text_predictions if sentence.kind == "text" else word_predictions)
            if sentence.gold is not None:
                self.counts.add(sentence.gold, predicted.tags)
            self.entities += len(group_entities(predicted.tags))
            self.sentences += 1
            parts.append(format_sentence(sentence, predicted, self.output_format))
        if self.bar is not None:
            self.bar.update(sum(s.kind != "copy" for s in chunk))
        return "".join(parts)


def predict_sentences(predictor: NerPredictor, sentences: Iterable[Sentence], formatter: ChunkFormatter
                      ) -> Iterator[str]:
    """The output text of ``sentences``, a chunk at a time, in input order; ``formatter`` counts and scores them.

    One chunk ahead: the model works on chunk k+1 while chunk k is formatted (and written by the caller) and chunk
    k+2 is read and tokenized. At most two chunks are held, so memory does not grow with the input.
    """
    in_flight = None
    for chunk in sentence_chunks(sentences):
        submitted = (chunk, predictor.submit_text([s.lines[0] for s in chunk if s.kind == "text"]),
                     predictor.submit_words([s.words for s in chunk if s.kind == "words"]))
        if in_flight is not None:
            yield formatter.format(*in_flight)
        in_flight = submitted
    if in_flight is not None:
        yield formatter.format(*in_flight)


def predict_file(args: PredictArguments, backend=None, tokenizer=None, log=None) -> PredictSummary:
    """Read ``args.input``, write predictions to ``args.output`` (or stdout), report on ``log`` (stderr)."""
    log = log or sys.stderr
    if backend is None:
        backend, tokenizer = load_backend(args)
    predictor = NerPredictor(backend, tokenizer, args.max_seq_length, args.stride, args.batch_size,
                             workers=getattr(backend, "parallel_calls", 1))
    numbered = read_lines(args.input, args.encoding)
    head = list(itertools.islice(numbered, PEEK_LINES * 5))
    input_format, has_gold = detect_input_format(args.input, [line for _, line in head])
    sentences = read_sentences(args.input, itertools.chain(head, numbered), input_format, has_gold)
    counts = EntityCounts()
    if input_format != "text":
        counts.load()  # before the clock, like the model
    started = time.perf_counter()  # the throughput counts reading, tokenizing, the model and writing: not loading
    bar = _progress(disable=not sys.stderr.isatty())
    formatter = ChunkFormatter(args.format or ("conll" if input_format == "conll" else "jsonl"), counts, bar)
    with predictor, AtomicOutput(args.output) as out:
        for text in predict_sentences(predictor, sentences, formatter):
            out.write(text)
    if bar is not None:
        bar.close()
    total, found = formatter.sentences, formatter.entities
    summary = PredictSummary(total, found, time.perf_counter() - started, input_format)
    where = f" -> {args.output}" if args.output else ""
    print(f"run_ner_predict: {total} sentences in {summary.seconds:.1f} s ({summary.sentences_per_second:.1f} "
          f"sentences/s), {found} entities found{where}", file=log)
    if counts.sentences:
        summary.scores = counts.scores()
        print("run_ner_predict: entity-level against the gold tags (seqeval default mode, as conlleval): "
              + ", ".join(f"{k} {v:.4f}" for k, v in summary.scores.items()), file=log)
    elif not counts.available:
        print("run_ner_predict: gold tags present, but scoring needs seqeval (pip install seqeval)", file=log)
    return summary
