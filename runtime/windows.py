"""Tag words with a token-classification model over windows of subwords: ``NerPredictor``.

A word's tag is the tag of its first subword, as in training (``trainers.ner_data.tokenize_and_align``). In raw
text, the words are the tokenizer's pre-tokenizer words (BERT splits on whitespace and punctuation, as CoNLL does).

A line longer than the model's maximum length is split into windows of subwords that overlap by ``stride``
subwords; each word takes its tag from the window where it lies farthest from a cut edge, and words are grouped
into entities after that, so an entity that straddles a window edge is found whole. Nothing is truncated.

The windows of many lines are sorted by length and cut into batches of ``batch_size`` rows (little padding). With
``workers`` > 1 the batches run in threads, longest first, so that the threads finish together; the batches, and
so the tags, do not depend on the number of threads.

```python
>>> backend, tokenizer = load_backend(PredictArguments(model="outputs/teacher/onnx/model_int8.onnx", input="-"))
>>> predictor = NerPredictor(backend, tokenizer)
>>> predictor.entities(["Mara Velden joined Norvane Bank ."])
[[{'start': 0, 'end': 11, 'label': 'PER', 'text': 'Mara Velden', 'score': 0.9871}, ...]]
```
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .scoring import entity_dicts

DEFAULT_MAX_LENGTH = 512  # subwords per window by default, and the limit for a model that gives none


def special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer's post-processor puts before and after one sequence ([CLS] and [SEP] for BERT)."""
    bare = tokenizer.encode("a", add_special_tokens=False).ids
    full = tokenizer.encode("a", add_special_tokens=True).ids
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            return full[:start], full[start + len(bare):]
    return [], []


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
        # Encoding.ids builds a new list of the whole line at each access: once per line, not once per window (a
        # 1 MB line has hundreds of windows, so that was quadratic in the line's length)
        ids = {i: encodings[i].ids for i in {job[0] for job in jobs}}
        batches = []
        for first in range(0, len(jobs), self.batch_size):
            rows = jobs[first:first + self.batch_size]
            width = max(end - start for _, start, end in rows) + len(self.prefix) + len(self.suffix)
            # Padded by hand, not by DataCollatorForTokenClassification: the ONNX path runs without transformers.
            input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)  # (B, T)
            attention_mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, (i, start, end) in enumerate(rows):
                window = self.prefix + ids[i][start:end] + self.suffix
                input_ids[row, :len(window)] = window
                attention_mask[row, :len(window)] = 1
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

