"""Reading NER data (CoNLL columns, JSON lines, or a Hub dataset) and aligning labels to subwords.

Every split comes out as records ``{"tokens": [...], "ner_tags": [...], "lines": [...]}`` with string tags
in IOB2. ``lines`` keeps the source line of each token so that a bad tag can be reported as ``file:line``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from .checks import check_text_file

logger = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"
DEFAULT_MAX_SEQ_LENGTH = 256  # subword positions per sentence; longer ones are truncated with a warning


class NERDataError(ValueError):
    """Bad input data: the message names the file and line."""


def read_conll(path: str) -> list[dict]:
    """Read CoNLL column format: token first, tag last, blank line between sentences, -DOCSTART- skipped."""
    _check_file(path)
    sentences, tokens, tags, lines = [], [], [], []
    with open(path, encoding="utf-8-sig") as f:  # -sig: drop a byte-order mark
        for line_no, raw in enumerate(f, start=1):
            columns = raw.split()
            if not columns:
                if tokens:
                    sentences.append({"tokens": tokens, "ner_tags": tags, "lines": lines})
                    tokens, tags, lines = [], [], []
                continue
            if columns[0] == DOCSTART:
                continue
            if len(columns) < 2:
                raise NERDataError(
                    f"{path}:{line_no}: expected a token and a tag separated by whitespace, "
                    f"found a single column {raw.strip()!r}"
                )
            _check_tag(columns[-1], f"{path}:{line_no}")
            tokens.append(columns[0])
            tags.append(columns[-1])
            lines.append(line_no)
    if tokens:
        sentences.append({"tokens": tokens, "ner_tags": tags, "lines": lines})
    if not sentences:
        raise NERDataError(f"{path}: no sentences found (the file holds only blank or -DOCSTART- lines)")
    return [dict(s, ner_tags=iob1_to_iob2(s["ner_tags"])) for s in sentences]


def read_jsonl(path: str) -> list[dict]:
    """Read JSON lines, one sentence per line: ``{"tokens": [...], "ner_tags": ["O", "B-PER", ...]}``."""
    _check_file(path)
    sentences = []
    with open(path, encoding="utf-8-sig") as f:  # -sig: drop a byte-order mark
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as err:
                raise NERDataError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise NERDataError(f"{path}:{line_no}: expected a JSON object with 'tokens' and 'ner_tags'")
            tokens, tags = record.get("tokens"), record.get("ner_tags")
            if not isinstance(tokens, list) or not isinstance(tags, list):
                raise NERDataError(f"{path}:{line_no}: each line needs the lists 'tokens' and 'ner_tags'")
            if len(tokens) != len(tags):
                raise NERDataError(
                    f"{path}:{line_no}: {len(tokens)} tokens but {len(tags)} ner_tags"
                )
            if not all(isinstance(t, str) for t in tags):
                raise NERDataError(f"{path}:{line_no}: ner_tags must be tag strings such as 'B-PER'")
            if not all(isinstance(t, str) for t in tokens):
                raise NERDataError(f"{path}:{line_no}: tokens must be strings")
            for tag in tags:
                _check_tag(tag, f"{path}:{line_no}")
            if tokens:
                sentences.append(
                    {"tokens": tokens, "ner_tags": iob1_to_iob2(tags), "lines": [line_no] * len(tokens)}
                )
    if not sentences:
        raise NERDataError(f"{path}: no sentences found")
    return sentences


def read_ner_file(path: str) -> list[dict]:
    """Dispatch on the extension: ``.json``/``.jsonl`` are JSON lines, anything else is CoNLL columns."""
    if path.endswith((".json", ".jsonl")):
        return read_jsonl(path)
    return read_conll(path)


def _check_file(path: str) -> None:
    try:
        check_text_file(path)  # Python's decode error names neither the file nor the line
    except (ValueError, OSError) as err:  # the readers raise one error type for bad data
        raise NERDataError(str(err)) from None


def _check_tag(tag: str, where: str) -> None:
    # seqeval's strict IOB2 mode rejects anything else, and it would only do so after training
    if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
        raise NERDataError(f"{where}: tag {tag!r} is not IOB (expected 'O', 'B-TYPE' or 'I-TYPE')")


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


def sort_labels(labels) -> list[str]:
    """A stable order: O first, then by entity type, B- before I-."""

    def key(label: str):
        if label == "O":
            return (0, "", "")
        prefix, _, entity_type = label.partition("-")
        return (1, entity_type, prefix)

    return sorted(set(labels), key=key)


def check_known_tags(records: list[dict], label2id: dict, source: str) -> None:
    """Raise naming ``source:line`` for the first tag that the label map does not know."""
    for index, record in enumerate(records):
        for tag, line in zip(record["ner_tags"], record.get("lines") or [None] * len(record["ner_tags"])):
            if tag not in label2id:
                where = f"{source}:{line}" if line is not None else f"{source} (example {index})"
                raise NERDataError(
                    f"{where}: tag {tag!r} is not among the model's labels {sorted(label2id)}"
                )


@dataclass
class NERSplits:
    """The three splits as lists of records, where each came from, and the label names."""

    splits: dict[str, list[dict]]
    sources: dict[str, str]
    label_list: list[str] = field(default_factory=list)


def load_ner_splits(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
    cache_dir: str | None = None,
) -> NERSplits:
    """Local files win over ``dataset_name``; labels come from the train split (or the Hub features)."""
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    if any(files.values()):
        splits = {name: read_ner_file(path) for name, path in files.items() if path}
        sources = {name: path for name, path in files.items() if path}
        label_source = splits.get("train") or next(iter(splits.values()))
        label_list = sort_labels(tag for r in label_source for tag in r["ner_tags"])
        return NERSplits(splits, sources, label_list)
    if not dataset_name:
        raise NERDataError("give --dataset_name or at least one of --train_file/--validation_file/--test_file")
    return _load_hub_splits(dataset_name, dataset_config_name, cache_dir)


def _load_hub_splits(dataset_name: str, config_name: str | None, cache_dir: str | None) -> NERSplits:
    from datasets import load_dataset  # late: a second to import, and local files never need it

    try:
        raw = load_dataset(dataset_name, config_name, cache_dir=cache_dir)
    except Exception as err:  # the datasets library raises many types; the user needs the name and the cause
        raise NERDataError(
            f"--dataset_name {dataset_name}: could not load it ({type(err).__name__}: {err}). "
            "Without network access, pass local files with --train_file/--validation_file/--test_file."
        ) from None
    tag_feature = raw[next(iter(raw))].features["ner_tags"].feature
    names = getattr(tag_feature, "names", None)
    splits, sources = {}, {}
    for split_name in ("train", "validation", "test"):
        if split_name not in raw:
            continue
        records = []
        for index, row in enumerate(raw[split_name]):
            tags = [names[t] for t in row["ner_tags"]] if names else list(row["ner_tags"])
            for tag in tags:
                _check_tag(tag, f"{dataset_name}[{split_name}] (example {index})")
            if row["tokens"]:
                records.append({"tokens": row["tokens"], "ner_tags": iob1_to_iob2(tags), "lines": None})
        splits[split_name] = records
        sources[split_name] = f"{dataset_name}[{split_name}]"
    label_list = list(names) if names else sort_labels(t for r in splits["train"] for t in r["ner_tags"])
    return NERSplits(splits, sources, label_list)


def tokenize_and_align(
    records: list[dict],
    tokenizer,
    label2id: dict,
    max_length: int,
    label_all_tokens: bool = False,
    source: str = "data",
) -> list[dict]:
    """Tokenize pre-split words and put each word's label on its first subword (others get -100).

    With ``label_all_tokens`` the other subwords carry the label too, B- turned into I- as in run_ner.py.
    Sentences longer than ``max_length`` subwords are truncated, and one warning counts them.
    """
    encodings = tokenizer(
        [r["tokens"] for r in records],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
        return_overflowing_tokens=False,
    )
    features, truncated = [], 0
    for index, record in enumerate(records):
        word_ids = encodings.word_ids(index)
        last_word = max((w for w in word_ids if w is not None), default=-1)
        # A last word without subwords (a lone zero-width space, say) also leaves last_word short: count only full rows
        if len(word_ids) >= max_length and last_word < len(record["tokens"]) - 1:
            truncated += 1
        labels, previous = [], None
        for word_id in word_ids:
            if word_id is None:
                labels.append(-100)
            elif word_id != previous:
                labels.append(label2id[record["ner_tags"][word_id]])
            elif label_all_tokens:
                tag = record["ner_tags"][word_id]
                inside = "I-" + tag[2:] if tag.startswith("B-") else tag
                labels.append(label2id.get(inside, label2id[tag]))
            else:
                labels.append(-100)
            previous = word_id
        feature = {key: encodings[key][index] for key in encodings.keys()}
        feature["labels"] = labels
        features.append(feature)
    if truncated:
        logger.warning(
            "%s: %d of %d sentences are longer than max_seq_length=%d subwords and were truncated; "
            "their cut-off words are not scored",
            source, truncated, len(records), max_length,
        )
    return features
