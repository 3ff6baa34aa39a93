"""NER data for training (local files, or a Hub dataset) and its labels aligned to subwords.

Every split comes out as records ``{"tokens": [...], "ner_tags": [...], "lines": [...]}`` with string tags
in IOB2. ``lines`` keeps the source line of each token so that a bad tag can be reported as ``file:line``.
Local files are read by ``runtime.formats`` (the reader ``run_ner_predict`` uses too); its readers are re-exported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from runtime.formats import NerDataError, check_tag, iob1_to_iob2
from runtime.formats import read_conll, read_jsonl, read_ner_file  # noqa: F401  (re-exported: the training readers)

logger = logging.getLogger(__name__)

DEFAULT_MAX_SEQ_LENGTH = 256  # subword positions per sentence; longer ones are truncated with a warning


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
                raise NerDataError(
                    f"{where}: tag {tag!r} is not among the model's labels {sorted(label2id)}"
                )


@dataclass
class NerSplits:
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
) -> NerSplits:
    """Local files win over ``dataset_name``; labels come from the train split (or the Hub features)."""
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    if any(files.values()):
        splits = {name: read_ner_file(path) for name, path in files.items() if path}
        sources = {name: path for name, path in files.items() if path}
        label_source = splits.get("train") or next(iter(splits.values()))
        label_list = sort_labels(tag for r in label_source for tag in r["ner_tags"])
        return NerSplits(splits, sources, label_list)
    if not dataset_name:
        raise NerDataError("give --dataset_name or at least one of --train_file/--validation_file/--test_file")
    return _load_hub_splits(dataset_name, dataset_config_name, cache_dir)


def _load_hub_splits(dataset_name: str, config_name: str | None, cache_dir: str | None) -> NerSplits:
    from datasets import load_dataset  # late: a second to import, and local files never need it

    try:
        raw = load_dataset(dataset_name, config_name, cache_dir=cache_dir)
    except Exception as err:  # the datasets library raises many types; the user needs the name and the cause
        raise NerDataError(
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
                check_tag(tag, f"{dataset_name}[{split_name}] (example {index})")
            if row["tokens"]:
                records.append({"tokens": row["tokens"], "ner_tags": iob1_to_iob2(tags), "lines": None})
        splits[split_name] = records
        sources[split_name] = f"{dataset_name}[{split_name}]"
    label_list = list(names) if names else sort_labels(t for r in splits["train"] for t in r["ner_tags"])
    return NerSplits(splits, sources, label_list)


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
