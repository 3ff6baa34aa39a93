"""Reading NER files, IOB1 -> IOB2, label order, subword alignment and bad-input messages (trainers/ner_data.py)."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import LABELS, make_tiny_tokenizer

from trainers.ner_data import (
    NerDataError,
    check_known_tags,
    iob1_to_iob2,
    load_ner_splits,
    read_conll,
    read_jsonl,
    read_ner_file,
    sort_labels,
    tokenize_and_align,
)

LABEL2ID = {label: i for i, label in enumerate(LABELS)}
CONLL_TEXT = """\
-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC


-DOCSTART- -X- -X- O
Peter NNP B-NP B-PER
Blackburn\tNNP\tI-NP\tI-PER
"""


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


# ---------------------------------------------------------------------------------------------------------------
# Reading


def test_read_conll_columns_docstart_and_sentence_breaks(tmp_path):
    sentences = read_conll(write(tmp_path, "train.txt", CONLL_TEXT))
    # token first, tag last; -DOCSTART- skipped; two blank lines are one break; no blank line needed at the end
    assert sentences == [
        {"tokens": ["EU", "rejects", "German"], "ner_tags": ["B-ORG", "O", "B-MISC"], "lines": [3, 4, 5]},
        {"tokens": ["Peter", "Blackburn"], "ner_tags": ["B-PER", "I-PER"], "lines": [9, 10]},
    ]


def test_read_conll_two_columns_crlf_and_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff-DOCSTART- O\r\n\r\nJoss B-PER\r\nrose O\r\n".encode())
    assert read_conll(str(path)) == [{"tokens": ["Joss", "rose"], "ner_tags": ["B-PER", "O"], "lines": [3, 4]}]


# Whitespace and invisible format characters (Unicode Cf): a byte-order mark, a zero-width space, a word joiner
INVISIBLE_LINES = ["\ufeff", "\u200b", " \u200c\t", "\u2060\u200b "]


@pytest.mark.parametrize("invisible", INVISIBLE_LINES)
def test_a_line_of_invisible_characters_is_a_blank_line(tmp_path, invisible):
    conll = write(tmp_path, "train.txt", f"Joss B-PER\nrose O\n{invisible}\nTalbrook B-LOC\n{invisible}\n")
    assert read_conll(conll) == [{"tokens": ["Joss", "rose"], "ner_tags": ["B-PER", "O"], "lines": [1, 2]},
                                 {"tokens": ["Talbrook"], "ner_tags": ["B-LOC"], "lines": [4]}]
    jsonl = write(tmp_path, "train.jsonl", f'{invisible}\n{{"tokens": ["Joss"], "ner_tags": ["B-PER"]}}\n{invisible}\n')
    assert read_jsonl(jsonl) == [{"tokens": ["Joss"], "ner_tags": ["B-PER"], "lines": [2]}]


def test_read_conll_converts_iob1(tmp_path):
    path = write(tmp_path, "iob1.txt", "Lake I-LOC\nMiren I-LOC\nand O\nJoss I-PER\n")
    assert read_conll(path)[0]["ner_tags"] == ["B-LOC", "I-LOC", "O", "B-PER"]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_read_jsonl(tmp_path, suffix):
    lines = [
        {"tokens": ["Joss", "Harlan", "spoke"], "ner_tags": ["B-PER", "I-PER", "O"]},
        {"tokens": [], "ner_tags": []},  # an empty sentence is dropped
        {"tokens": ["in", "Talbrook"], "ner_tags": ["O", "I-LOC"], "id": 7},  # IOB1, extra keys ignored
    ]
    text = json.dumps(lines[0]) + "\n\n" + json.dumps(lines[1]) + "\n" + json.dumps(lines[2]) + "\n"
    path = write(tmp_path, "data" + suffix, text)
    expected = [
        {"tokens": ["Joss", "Harlan", "spoke"], "ner_tags": ["B-PER", "I-PER", "O"], "lines": [1, 1, 1]},
        {"tokens": ["in", "Talbrook"], "ner_tags": ["O", "B-LOC"], "lines": [4, 4]},
    ]
    assert read_jsonl(path) == expected
    assert read_ner_file(path) == expected  # dispatch on the extension


# ---------------------------------------------------------------------------------------------------------------
# IOB1 -> IOB2 and label order


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),  # I- opening the sentence
        (["O", "I-LOC"], ["O", "B-LOC"]),  # I- after O
        (["B-ORG", "I-LOC", "I-LOC"], ["B-ORG", "B-LOC", "I-LOC"]),  # I- after another type
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),  # IOB1's B- between two same-type entities
        (["B-PER", "I-PER", "O", "B-LOC", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]),  # IOB2 unchanged
        (["O", "O"], ["O", "O"]),
        ([], []),
    ],
)
def test_iob1_to_iob2(tags, expected):
    assert iob1_to_iob2(tags) == expected
    assert iob1_to_iob2(expected) == expected  # idempotent


def test_sort_labels_is_stable_and_ignores_order_of_appearance():
    expected = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert sort_labels(["I-PER", "B-PER", "O", "I-ORG", "B-LOC", "B-MISC", "I-MISC", "B-ORG", "I-LOC", "O"]) == expected
    assert sort_labels(reversed(expected)) == expected
    assert sort_labels(["B-PER", "O"]) == ["O", "B-PER"]


def test_load_ner_splits_labels_come_from_train(tmp_path):
    train = write(tmp_path, "train.txt", "Joss B-PER\nin O\nTalbrook B-LOC\n")
    test = write(tmp_path, "test.txt", "Talbrook B-LOC\nOpen I-LOC\n")
    data = load_ner_splits(train_file=train, test_file=test)
    assert set(data.splits) == {"train", "test"}
    assert data.sources == {"train": train, "test": test}
    assert data.label_list == ["O", "B-LOC", "B-PER"]


# ---------------------------------------------------------------------------------------------------------------
# Label alignment. The tiny vocabulary spells unknown words letter by letter: "Joss" -> j ##o ##s ##s.


def record(tokens, tags):
    return {"tokens": tokens, "ner_tags": tags, "lines": None}


def test_first_subword_carries_the_label(tokenizer):
    records = [record(["Joss", "rose", "in", "Lake"], ["B-PER", "O", "O", "B-LOC"])]
    [feature] = tokenize_and_align(records, tokenizer, LABEL2ID, max_length=32)
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens == ["[CLS]", "j", "##o", "##s", "##s", "rose", "in", "lake", "[SEP]"]
    B_PER, B_LOC, O = LABEL2ID["B-PER"], LABEL2ID["B-LOC"], LABEL2ID["O"]
    assert feature["labels"] == [-100, B_PER, -100, -100, -100, O, O, B_LOC, -100]
    assert len(feature["attention_mask"]) == len(feature["labels"])


def test_label_all_tokens_turns_b_into_i_on_continuations(tokenizer):
    records = [record(["Joss", "Harlan", "rose"], ["B-PER", "I-PER", "O"])]
    [feature] = tokenize_and_align(records, tokenizer, LABEL2ID, max_length=32, label_all_tokens=True)
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens == ["[CLS]", "j", "##o", "##s", "##s", "h", "##a", "##r", "##l", "##a", "##n", "rose", "[SEP]"]
    B, I, O = LABEL2ID["B-PER"], LABEL2ID["I-PER"], LABEL2ID["O"]
    assert feature["labels"] == [-100, B, I, I, I, I, I, I, I, I, I, O, -100]


def test_label_all_tokens_keeps_b_when_the_label_map_has_no_i(tokenizer):
    label2id = {"O": 0, "B-PER": 1}
    [feature] = tokenize_and_align([record(["Joss"], ["B-PER"])], tokenizer, label2id, 32, label_all_tokens=True)
    assert feature["labels"] == [-100, 1, 1, 1, 1, -100]


def test_long_sentence_is_truncated_with_one_warning(tokenizer, caplog):
    records = [
        record(["Joss", "Harlan", "rose"], ["B-PER", "I-PER", "O"]),  # 13 subwords with [CLS] and [SEP]
        record(["in", "Lake"], ["O", "B-LOC"]),  # 4
        record(["the", "team", "won"], ["O", "O", "O"]),  # 5
        record(["Talbrook", "rose"], ["B-LOC", "O"]),  # 11
    ]
    with caplog.at_level(logging.WARNING, logger="trainers.ner_data"):
        features = tokenize_and_align(records, tokenizer, LABEL2ID, max_length=8, source="train.txt")
    assert [len(f["input_ids"]) for f in features] == [8, 4, 5, 8]
    B_PER = LABEL2ID["B-PER"]
    assert features[0]["labels"] == [-100, B_PER, -100, -100, -100, LABEL2ID["I-PER"], -100, -100]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "train.txt: 2 of 4 sentences" in warnings[0] and "max_seq_length=8" in warnings[0]


def test_word_without_subwords_is_not_counted_as_truncated(tokenizer, caplog):
    # a lone zero-width space tokenizes to nothing; its label is lost, but nothing was truncated
    with caplog.at_level(logging.WARNING, logger="trainers.ner_data"):
        [feature] = tokenize_and_align([record(["in", "\u200b"], ["O", "O"])], tokenizer, LABEL2ID, max_length=16)
    assert feature["labels"] == [-100, LABEL2ID["O"], -100]
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one NerDataError naming the file (and line)


@pytest.mark.parametrize(
    "name, text, where, what",
    [
        ("empty.txt", "", "empty.txt", "empty"),
        ("blank.txt", "-DOCSTART- O\n\n\n", "blank.txt", "no sentences"),
        ("one_column.txt", "Joss B-PER\nrose O\n\nTalbrook\n", "one_column.txt:4", "single column"),
        ("bad_tag.txt", "Joss B-PER\nrose O\nTalbrook S-LOC\n", "bad_tag.txt:3", "'S-LOC'"),
        ("bare_type.txt", "Joss PER\n", "bare_type.txt:1", "'PER'"),
        ("bad.json", '{"tokens": ["a"], "ner_tags": ["O"]}\n{"tokens": ["a"\n', "bad.json:2", "not valid JSON"),
        ("list.jsonl", '["a", "O"]\n', "list.jsonl:1", "JSON object"),
        ("ids.jsonl", '{"tokens": ["a"], "ner_tags": [0]}\n', "ids.jsonl:1", "tag strings"),
        ("count.jsonl", '{"tokens": ["a", "b"], "ner_tags": ["O"]}\n', "count.jsonl:1", "2 tokens but 1"),
        ("missing_key.jsonl", '{"tokens": ["a"]}\n', "missing_key.jsonl:1", "'ner_tags'"),
        ("bad_tag.jsonl", '{"tokens": ["a"], "ner_tags": ["PERSON"]}\n', "bad_tag.jsonl:1", "'PERSON'"),
    ],
)
def test_bad_file_names_file_and_line(tmp_path, name, text, where, what):
    path = write(tmp_path, name, text)
    with pytest.raises(NerDataError) as err:
        read_ner_file(path)
    message = str(err.value)
    assert message.startswith(str(tmp_path / where)), message
    assert what in message


def test_missing_file(tmp_path):
    with pytest.raises(NerDataError, match=r"nope\.txt: no such file"):
        load_ner_splits(train_file=str(tmp_path / "nope.txt"))


def test_unknown_tag_in_test_data_names_file_and_line(tmp_path):
    train = write(tmp_path, "train.txt", "Joss B-PER\nrose O\n")
    test = write(tmp_path, "test.txt", "-DOCSTART- O\n\nJoss B-PER\n\nrose O\nMonday B-DATE\n")
    data = load_ner_splits(train_file=train, test_file=test)
    label2id = {label: i for i, label in enumerate(data.label_list)}
    check_known_tags(data.splits["train"], label2id, data.sources["train"])
    with pytest.raises(NerDataError) as err:
        check_known_tags(data.splits["test"], label2id, data.sources["test"])
    assert str(err.value).startswith(f"{test}:6: tag 'B-DATE'")


def test_unknown_tag_without_lines_names_the_example():
    with pytest.raises(NerDataError, match=r"^hub\[test\] \(example 1\): tag 'B-DATE'"):
        check_known_tags([record(["a"], ["O"]), record(["b"], ["B-DATE"])], LABEL2ID, "hub[test]")


def test_no_data_source_at_all():
    with pytest.raises(NerDataError, match="--dataset_name"):
        load_ner_splits(dataset_name=None)
