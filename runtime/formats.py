"""The NER file formats, read for training and prediction alike, and written by prediction.

  * CoNLL columns: token first, tag last, a blank line between sentences, ``-DOCSTART-`` lines between documents;
  * JSON lines: ``{"tokens": [...], "ner_tags": [...]}`` per sentence (``.json`` / ``.jsonl``, optionally ``.gz``);
  * raw text (prediction only): one document or sentence per line.

A line of nothing but whitespace and invisible format characters (a byte-order mark, a zero-width space) is a blank
line in every format. Training reads with ``read_ner_file`` (tags required, IOB1 turned into IOB2); prediction
with ``detect_input_format`` and ``read_sentences`` (gold tags optional, kept as written).

```python
>>> read_conll("train.txt")[0]
{'tokens': ['EU', 'rejects', ...], 'ner_tags': ['B-ORG', 'O', ...], 'lines': [3, 4, ...]}
>>> input_format, has_gold = detect_input_format("test.txt", first_lines)    # ("conll", True)
>>> for sentence in read_sentences("test.txt", read_lines("test.txt"), input_format, has_gold): ...
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .scoring import entity_dicts
from .textfiles import check_text_file, is_blank, read_lines

DOCSTART = "-DOCSTART-"


class NerDataError(ValueError):
    """Bad input data: the message names the file and line."""


def is_iob(tag: str) -> bool:
    return tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)


def check_tag(tag: str, where: str) -> None:
    # seqeval's strict IOB2 mode rejects anything else, and it would only do so after training
    if not is_iob(tag):
        raise NerDataError(f"{where}: tag {tag!r} is not IOB (expected 'O', 'B-TYPE' or 'I-TYPE')")


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 opens an entity with I- unless it follows one of the same type; IOB2 always opens with B-.

    IOB2 input comes back unchanged, so the function is safe on either scheme.
    """
    converted = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-"):
            entity_type = tag[2:]
            if previous == "O" or previous[2:] != entity_type:
                tag = "B-" + entity_type
        converted.append(tag)
        previous = tag
    return converted


def is_json_lines_name(path: str) -> bool:
    return path.removesuffix(".gz").endswith((".json", ".jsonl"))


# ----------------------------------------------------------------------------------------------------------------
# Reading


@dataclass
class Sentence:
    """One unit of a file, in file order: a raw line, a sentence of words, or a line to copy through."""

    kind: str  # "text", "words" or "copy" (a blank or -DOCSTART- line)
    lines: list[str]  # the source lines (text: the line itself)
    words: list[str] = field(default_factory=list)
    gold: list[str] | None = None  # the tags as written (IOB1 stays IOB1)
    record: dict | None = None  # JSON lines: the record, written back with the predicted tags
    line_numbers: list[int] = field(default_factory=list)  # per word, its line in the file


def detect_input_format(path: str, head: list[str]) -> tuple[str, bool]:
    """("text" | "conll" | "jsonl", whether gold tags are present), from the name and the first lines ``head``.

    JSON lines: a ``.json`` / ``.jsonl`` name (gold is then known per record), or a first line that is a JSON object
    with a ``"tokens"`` list. CoNLL: a first line ``-DOCSTART-``, or mostly token lines that are tagged (two or more
    columns, the last an IOB tag: O, B-X, I-X). The tagged lines decide, so that one line without its tag does not
    turn a tagged file into an untagged one: ``read_sentences`` then stops at that line. Anything else: raw text.
    """
    if is_json_lines_name(path):
        return "jsonl", False
    lines = [line for line in head if not is_blank(line)]
    if not lines:
        return "text", False
    if lines[0].lstrip().startswith("{"):  # JSON lines without the extension (stdin, say)
        try:
            if isinstance(json.loads(lines[0]).get("tokens"), list):
                return "jsonl", False
        except (json.JSONDecodeError, AttributeError):
            pass
    token_lines = [columns for columns in map(str.split, lines) if columns[0] != DOCSTART]
    tagged = sum(len(columns) >= 2 and is_iob(columns[-1]) for columns in token_lines)
    mostly_tagged = tagged * 2 > len(token_lines)
    if lines[0].split()[0] == DOCSTART:
        return "conll", mostly_tagged
    return ("conll", True) if mostly_tagged else ("text", False)


def read_sentences(path: str, numbered_lines: Iterable[tuple[int, str]], input_format: str, has_gold: bool
                   ) -> Iterator[Sentence]:
    """The sentences of ``(line number, line)`` pairs in ``input_format``; ``has_gold``: every sentence must carry
    IOB tags (CoNLL: the last column; JSON lines: ``ner_tags``), and one that does not is an error naming its line."""
    name = "<stdin>" if path == "-" else path
    if input_format == "text":
        for _, line in numbered_lines:
            yield Sentence("text", [line])
    elif input_format == "jsonl":
        for line_no, line in numbered_lines:
            if not is_blank(line):
                yield _json_sentence(line, f"{name}:{line_no}", has_gold, line_no)
    else:
        yield from _conll_sentences(name, numbered_lines, has_gold)


def _conll_sentences(name: str, numbered_lines: Iterable[tuple[int, str]], has_gold: bool) -> Iterator[Sentence]:
    lines, words, gold, numbers = [], [], [], []
    for line_no, line in numbered_lines:
        columns = line.split()
        if is_blank(line) or columns[0] == DOCSTART:
            if words:
                yield Sentence("words", lines, words, gold if has_gold else None, line_numbers=numbers)
                lines, words, gold, numbers = [], [], [], []
            yield Sentence("copy", [line])
            continue
        if has_gold:
            if len(columns) < 2:
                raise NerDataError(f"{name}:{line_no}: expected a token and a tag separated by whitespace, "
                                   f"found a single column {line.strip()!r}")
            check_tag(columns[-1], f"{name}:{line_no}")
        lines.append(line)
        words.append(columns[0])
        gold.append(columns[-1])
        numbers.append(line_no)
    if words:
        yield Sentence("words", lines, words, gold if has_gold else None, line_numbers=numbers)


def _json_sentence(line: str, where: str, tags_required: bool, line_no: int) -> Sentence:
    """One JSON-lines record; ``ner_tags`` may be left out unless ``tags_required``."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise NerDataError(f"{where}: not valid JSON ({err.msg})") from None
    wanted = "'tokens' and 'ner_tags'" if tags_required else "'tokens' (and optionally 'ner_tags')"
    if not isinstance(record, dict):
        raise NerDataError(f"{where}: expected a JSON object with {wanted}")
    tokens, tags = record.get("tokens"), record.get("ner_tags")
    if not isinstance(tokens, list) or not (isinstance(tags, list) or (tags is None and not tags_required)):
        raise NerDataError(f"{where}: each line needs the list{'s' if tags_required else ''} {wanted}")
    if tags is not None:
        if len(tokens) != len(tags):
            raise NerDataError(f"{where}: {len(tokens)} tokens but {len(tags)} ner_tags")
        if not all(isinstance(t, str) for t in tags):
            raise NerDataError(f"{where}: ner_tags must be tag strings such as 'B-PER'")
    if not all(isinstance(t, str) for t in tokens):
        raise NerDataError(f"{where}: tokens must be strings")
    for tag in tags or ():
        check_tag(tag, where)
    return Sentence("words", [line], tokens, tags, record, line_numbers=[line_no] * len(tokens))


def check_data_file(path: str) -> None:
    """Exists, is a non-empty UTF-8 text file: else one ``NerDataError`` (the readers raise one error type)."""
    try:
        check_text_file(path)  # Python's decode error names neither the file nor the line
    except (ValueError, OSError) as err:
        raise NerDataError(str(err)) from None


def _training_records(path: str, input_format: str) -> list[dict]:
    """Records ``{"tokens", "ner_tags" (IOB2), "lines"}`` of a tagged file; sentences without words are left out."""
    check_data_file(path)
    return [{"tokens": s.words, "ner_tags": iob1_to_iob2(s.gold), "lines": s.line_numbers}
            for s in read_sentences(path, read_lines(path), input_format, has_gold=True) if s.words]


def read_conll(path: str) -> list[dict]:
    """Read CoNLL column format: token first, tag last, blank line between sentences, -DOCSTART- skipped."""
    records = _training_records(path, "conll")
    if not records:
        raise NerDataError(f"{path}: no sentences found (the file holds only blank or -DOCSTART- lines)")
    return records


def read_jsonl(path: str) -> list[dict]:
    """Read JSON lines, one sentence per line: ``{"tokens": [...], "ner_tags": ["O", "B-PER", ...]}``."""
    records = _training_records(path, "jsonl")
    if not records:
        raise NerDataError(f"{path}: no sentences found")
    return records


def read_ner_file(path: str) -> list[dict]:
    """Dispatch on the name: ``.json``/``.jsonl`` (optionally ``.gz``) are JSON lines, anything else CoNLL."""
    if is_json_lines_name(path):
        return read_jsonl(path)
    return read_conll(path)


# ----------------------------------------------------------------------------------------------------------------
# Writing


def text_record(text: str, words) -> dict:
    """The JSON-lines record of one raw line and its ``WordPredictions``: ``{"text", "entities"}`` (``--serve``'s
    answer per text too)."""
    return {"text": text, "entities": entity_dicts(text, words)}


def format_sentence(sentence: Sentence, words, output_format: str) -> str:
    """The output text of one sentence and its ``WordPredictions`` (None for a copied line) in ``output_format``."""
    if sentence.kind == "copy":  # blank and -DOCSTART- lines: kept in CoNLL output, dropped from JSON lines
        if output_format == "jsonl":
            return ""
        line = sentence.lines[0]
        return "\n" if is_blank(line) else line.rstrip() + " O\n"
    if sentence.kind == "text":
        text = sentence.lines[0]
        if output_format == "conll":
            return "".join(f"{text[s:e]} {tag}\n" for (s, e), tag in zip(words.spans, words.tags)) + "\n"
        return json.dumps(text_record(text, words), ensure_ascii=False) + "\n"
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
