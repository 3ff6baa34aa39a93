"""The demo sample: regenerated exactly, and held-out splits that a model which memorized the training names does
not ace (the quickstart's validation once scored 1.0, which showed nothing)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from seqeval.metrics import f1_score

from trainers.demo_data import DEMO_DIR, HELD_OUT, SPLIT_SIZES, write_demo_data
from runtime.formats import read_conll

DEMO_DIR_PATH = Path(DEMO_DIR)


def test_the_shipped_files_regenerate_exactly(tmp_path):
    write_demo_data(str(tmp_path))
    for split in SPLIT_SIZES:
        name = f"demo_{split}.txt"
        assert (tmp_path / name).read_bytes() == (DEMO_DIR_PATH / name).read_bytes(), name


def memorizer_f1(train: list[dict], held_out: list[dict]) -> float:
    """Entity F1 of tagging each word with its most frequent training tag (O when never seen)."""
    seen = defaultdict(Counter)
    for record in train:
        for word, tag in zip(record["tokens"], record["ner_tags"]):
            seen[word][tag] += 1
    predicted = [[seen[w].most_common(1)[0][0] if w in seen else "O" for w in r["tokens"]] for r in held_out]
    return f1_score([r["ner_tags"] for r in held_out], predicted)


def test_validation_and_test_are_held_out_from_training_and_from_each_other():
    splits = {split: read_conll(str(DEMO_DIR_PATH / f"demo_{split}.txt")) for split in SPLIT_SIZES}
    assert {split: len(records) for split, records in splits.items()} == SPLIT_SIZES
    train_words = {w for r in splits["train"] for w in r["tokens"]}
    for split in HELD_OUT:
        # a memorizer of the training names scores visibly below 1.0 on each held-out split
        assert memorizer_f1(splits["train"], splits[split]) < 0.7, split
        words = {w for r in splits[split] for w in r["tokens"]}
        assert words - train_words, split  # names and contexts training never shows
    # each held-out split's own pool stays out of the other one: choosing on validation does not see the test names
    own = {split: {word for pool in slots.values() for name in pool for word in name.split() if word != "the"}
           for split, (_, slots) in HELD_OUT.items()}
    test_words = {w for r in splits["test"] for w in r["tokens"]}
    validation_words = {w for r in splits["validation"] for w in r["tokens"]}
    assert own["validation"] & validation_words and not own["validation"] & test_words
    assert own["test"] & test_words and not own["test"] & validation_words
