"""Predict entities in a file with a saved model (PyTorch) or an ONNX file (ONNX Runtime): the core of ``run_ner_predict``.

This module imports neither torch nor transformers at import time; the ONNX path never does (``runtime.backends``).
The input formats and how they are told apart are ``runtime.formats``'s; the tagging, with windows for long lines,
is ``runtime.windows.NerPredictor``; entities open as conlleval opens them (``runtime.scoring``).

Throughput: the file is read, tokenized, predicted and written ``CHUNK_SENTENCES`` sentences at a time, with the
model one chunk ahead of the writing. An ONNX model on CPU runs one single-threaded call per core, side by side in
threads (ONNX Runtime releases the GIL): NER batches are small, and one call split over all cores leaves them
partly idle. The threads take a chunk's longest batches first, so that they finish together. The batches, and so
the output, do not depend on the number of threads. The cost: an input that makes a single batch (a few long
lines, say) uses one core.

```python
>>> summary = predict_file(parse_predict_args(["--model", "outputs/teacher/onnx/model_int8.onnx",
...                                            "--input", "news.txt", "--output", "news.jsonl"]))
>>> summary.sentences, summary.entities, summary.scores   # scores: with gold tags in the input
```
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import dataclasses
import errno
import itertools
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .atomic import check_writable, text_output
from .backends import load_backend
from .console import one_line_errors
from .formats import Sentence, detect_input_format, format_sentence, read_sentences
from .scoring import EntityCounts, group_entities
from .textfiles import check_stdin, check_stdout, read_lines
from .windows import NerPredictor, PendingWords

FORMATS = ("jsonl", "conll")
DEVICES = ("cpu", "cuda")
PEEK_LINES = 20  # non-blank lines looked at to tell CoNLL columns from raw text
CHUNK_SENTENCES = 2048  # read, predict and write this many sentences at a time: memory does not grow with the file
# What a full disk, a closed pipe or a read-only target raises while the output is written (a file or a node).
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EPIPE, errno.EROFS, errno.EIO, errno.EBADF}
MAX_COPY_LINES = 65536  # blank / -DOCSTART- lines a chunk may hold besides its sentences (a file of blank lines)
PROGRESS_SECONDS = 30.0  # off a terminal (a pipe, a log file): a progress line this often, none for a shorter run


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "A saved model folder, a Hub id, or an .onnx file (fp32 or int8)."})
    input: str | None = field(default=None, metadata={
        "help": "Raw text (.txt, .gz, or - for stdin; one document per line), or a CoNLL / JSON-lines file like the "
                "training ones. Required, except with --serve."})
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
    # --serve: the same model and predictor behind HTTP (runtime/serve.py) instead of --input / --output
    serve: bool = field(default=False, metadata={"help": "Serve the model over HTTP (POST /predict, GET /health, a "
                                                         "page at /) instead of reading --input; needs the http "
                                                         "extra (pip install 'bert-ner-compress-serve[http]')."})
    host: str = field(default="127.0.0.1", metadata={"help": "--serve: the address to listen on."})
    port: int = field(default=8000, metadata={"help": "--serve: the port to listen on (0: any free port)."})
    batch_window_ms: int = field(default=5, metadata={
        "help": "--serve: how long the first of concurrent requests waits for others to share one model call "
                "(0: no batching across requests)."})
    max_batch_texts: int = field(default=32, metadata={"help": "--serve: at most this many texts per shared call."})
    max_body_bytes: int = field(default=1_048_576, metadata={"help": "--serve: the largest request body (413 above)."})
    max_text_chars: int = field(default=100_000, metadata={
        "help": "--serve: the longest text, in characters (413 above); long texts are windowed as in a file."})

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
        if self.serve:
            self._check_serve()
            return
        if self.input is None:
            raise ValueError("--input is required (or --serve, to serve the model over HTTP)")
        if self.input == "-":
            check_stdin()
        elif not os.path.isfile(self.input):
            raise FileNotFoundError(f"--input {self.input}: no such file")
        if self.output:
            check_writable(self.output, "--output")
        else:
            check_stdout()

    def _check_serve(self) -> None:
        given = [flag for flag, value in (("--input", self.input), ("--output", self.output), ("--format", self.format))
                 if value is not None]
        if given:
            raise ValueError(f"--serve reads no file and writes none: drop {' '.join(given)}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port {self.port} must be between 0 and 65535")
        for flag, value, least in (("--batch_window_ms", self.batch_window_ms, 0),
                                   ("--max_batch_texts", self.max_batch_texts, 1),
                                   ("--max_body_bytes", self.max_body_bytes, 64),
                                   ("--max_text_chars", self.max_text_chars, 1)):
            if value < least:
                raise ValueError(f"{flag} {value} must be at least {least}")


def parse_predict_args(argv: list[str] | None = None, prog: str = "run_ner_predict") -> PredictArguments:
    """argparse built from the dataclass fields (transformers' HfArgumentParser would import torch)."""
    parser = one_line_errors(argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0]))
    for f in dataclasses.fields(PredictArguments):
        required = f.default is dataclasses.MISSING
        if f.type in ("bool", bool):
            parser.add_argument(f"--{f.name}", action="store_true", help=f.metadata["help"])
            continue
        kind = int if "int" in str(f.type) else str
        parser.add_argument(f"--{f.name}", type=kind, required=required, default=None if required else f.default,
                            choices=f.metadata.get("choices"), help=f.metadata["help"])
    values = vars(parser.parse_args(argv))
    if values["input"] is None and not values["serve"]:
        parser.error("the following arguments are required: --input")  # as argparse says it
    return PredictArguments(**values)


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


class ProgressLines:
    """Where no bar is drawn (off a terminal, or without tqdm): a line on ``log`` every ``every`` seconds, from a
    timer thread, with the sentences written and the model windows run so far. The windows move within one long
    line too (a 1 MB line is hundreds of windows, and one sentence). A run shorter than ``every`` prints none."""

    def __init__(self, predictor: NerPredictor, formatter: ChunkFormatter, log, every: float | None = None):
        self.predictor, self.formatter, self.log = predictor, formatter, log
        self.every = PROGRESS_SECONDS if every is None else every
        self.started = time.perf_counter()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._report, name="ner-progress", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join()
        return False

    def _report(self) -> None:
        while not self.stopped.wait(self.every):
            seconds = time.perf_counter() - self.started
            print(f"run_ner_predict: {seconds:.0f} s, {self.formatter.sentences:,} sentences written, "
                  f"{self.predictor.windows_run:,} model windows run", file=self.log, flush=True)


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
    progress = ProgressLines(predictor, formatter, log) if bar is None else contextlib.nullcontext()
    try:
        with predictor, progress, text_output(args.output) as out:
            for text in predict_sentences(predictor, sentences, formatter):
                out.write(text)
    except OSError as err:
        if err.errno not in WRITE_ERRORS:
            raise
        raise OSError(f"{'--output ' + args.output if args.output else 'standard output'}: cannot write "
                      f"({err.strerror})") from None
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
