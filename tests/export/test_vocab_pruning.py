"""Vocabulary pruning on tiny models: the corpus keeps its pieces, the model its logits, every model type included;
both ways of treating a dropped piece (``unseen="resplit"``: the tokenizer loses it; ``"nearest"``: the tokenizer is
kept and the piece takes its nearest kept row)."""

from __future__ import annotations

import pytest
import torch
from conftest import DEMO_DIR, LABELS, TINY_MODEL_BUILDERS, make_tiny_bert, tiny_bert_config, tiny_vocab
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertForMaskedLM,
    BertForTokenClassification,
    BertTokenizer,
    BertTokenizerFast,
    pipeline,
)

from export.vocab_pruning import corpus_vocabulary, prune_to_folder, prune_vocabulary, retokenized_rate, unk_rate
from modeling import CompressedBertForTokenClassification, IndexedEmbedding, count_unique_parameters
from trainers.ner_data import read_conll

MODEL_TYPES = TINY_MODEL_BUILDERS


@pytest.fixture(scope="module")
def train_sentences():
    return [r["tokens"] for r in read_conll(str(DEMO_DIR / "demo_train.txt"))]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny teacher and its tokenizer, saved once for the module."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    model = make_tiny_bert(directory)
    return model, AutoTokenizer.from_pretrained(directory)


def logits(model, tokenizer, words):
    encoding = tokenizer([words], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        return model(**encoding).logits  # (1, T, num_labels)


def test_corpus_tokenizes_to_the_same_pieces(tiny, train_sentences):
    model, tokenizer = tiny
    keep = corpus_vocabulary(tokenizer, train_sentences, keep_characters=False)
    _, pruned = prune_vocabulary(make_tiny_bert(), tokenizer, keep, unseen="resplit")
    assert len(pruned) == len(keep) < len(tokenizer)
    before = tokenizer(train_sentences, is_split_into_words=True)["input_ids"]
    after = pruned(train_sentences, is_split_into_words=True)["input_ids"]
    for old_ids, new_ids in zip(before, after):
        assert pruned.convert_ids_to_tokens(new_ids) == tokenizer.convert_ids_to_tokens(old_ids)
    assert pruned.unk_token_id not in {i for ids in after for i in ids}


def test_keep_top_adds_the_first_pieces_of_the_vocabulary_but_no_placeholders(tiny):
    _, tokenizer = tiny
    corpus_only = corpus_vocabulary(tokenizer, [["bank"]], keep_characters=False)
    with_top = corpus_vocabulary(tokenizer, [["bank"]], keep_characters=False, keep_top=8)
    assert set(with_top) - set(corpus_only) == {"a", "b", "c"}  # ids 0-7: five specials, then a, b, c
    placeholders = tiny_vocab()[:5] + ["[unused0]", "[unused1]"] + tiny_vocab()[5:97]
    spaced = BertTokenizerFast(vocab={piece: i for i, piece in enumerate(placeholders)}, do_lower_case=True)
    kept = corpus_vocabulary(spaced, [["bank"]], keep_characters=False, keep_top=8)
    assert not {"[unused0]", "[unused1]"} & set(kept) and {"a", "b", "c"} <= set(kept)
    with pytest.raises(ValueError, match="keep_top=-1"):
        corpus_vocabulary(tokenizer, [["bank"]], keep_top=-1)


def test_characters_are_kept_by_default(tiny):
    _, tokenizer = tiny
    keep = set(corpus_vocabulary(tokenizer, [["the", "bank"]]))
    assert {"q", "##q", "7", "[PAD]", "[MASK]", "the", "bank"} <= keep
    assert "lake" not in keep
    assert not {"q", "##q"} & set(corpus_vocabulary(tokenizer, [["the", "bank"]], keep_characters=False))


@pytest.mark.parametrize("kind", MODEL_TYPES)
def test_every_model_type_keeps_its_logits(tiny, train_sentences, kind):
    teacher, tokenizer = tiny
    model = MODEL_TYPES[kind](make_tiny_bert()).eval()
    words = train_sentences[0]
    expected = logits(model, tokenizer, words)
    keep = corpus_vocabulary(tokenizer, train_sentences, keep_characters=False)
    width = model.get_input_embeddings().embedding_dim

    model, pruned = prune_vocabulary(model, tokenizer, keep, unseen="resplit")

    table = model.get_input_embeddings()
    assert table.weight.shape == (len(keep), width)  # V'×E for factorized, V'×H otherwise
    assert model.config.vocab_size == len(keep)
    assert model.config.pad_token_id == pruned.pad_token_id == table.padding_idx
    torch.testing.assert_close(logits(model, pruned, words), expected, rtol=0, atol=0)


@pytest.mark.parametrize("kind", MODEL_TYPES)
def test_nearest_keeps_every_model_types_logits_and_tokenizer_and_drops_only_rows(tiny, train_sentences, kind):
    _, tokenizer = tiny
    model = MODEL_TYPES[kind](make_tiny_bert()).eval()
    words = train_sentences[0]  # every piece of it is kept
    expected = logits(model, tokenizer, words)
    keep = corpus_vocabulary(tokenizer, train_sentences, keep_characters=False)
    vocab_size, width = model.get_input_embeddings().weight.shape  # V×H, or V×E for factorized
    plain = type(model) is BertForTokenClassification  # the teacher and the student
    if plain:  # a plain BERT cannot hold the index: pruning converts it first, which changes no logit
        converted = CompressedBertForTokenClassification.from_bert(model).eval()
        torch.testing.assert_close(logits(converted, tokenizer, words), expected, rtol=0, atol=0)
        before = count_unique_parameters(converted)
    else:
        before = count_unique_parameters(model)

    pruned, same_tokenizer = prune_vocabulary(model, tokenizer, keep, unseen="nearest")

    assert same_tokenizer is tokenizer and (pruned is not model) == plain
    table = pruned.get_input_embeddings()
    assert isinstance(table, IndexedEmbedding) and table.weight.shape == (len(keep), width) < (vocab_size, width)
    assert table.token_index.shape == (vocab_size,) and not table.token_index.is_floating_point()
    assert pruned.config.embedding_rows == len(keep) and pruned.config.vocab_size == vocab_size
    assert before - count_unique_parameters(pruned) == (vocab_size - len(keep)) * width  # the buffer is not counted
    torch.testing.assert_close(logits(pruned, tokenizer, words), expected, rtol=0, atol=0)


def test_a_dropped_piece_takes_the_row_of_its_most_similar_kept_piece():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "zebra", "the", "bank", "lake"]
    tokenizer = BertTokenizer(vocab={piece: i for i, piece in enumerate(vocab)})
    model = BertForTokenClassification(tiny_bert_config(vocab_size=len(vocab))).eval()
    rows = model.get_input_embeddings().weight  # (9, 32)
    with torch.no_grad():
        rows[5] = 3 * rows[7] + 0.01 * rows[6]  # zebra: almost parallel to bank, not to its own scale
        rows[8] = 0.5 * rows[6]  # lake: parallel to the
    original = rows.detach().clone()

    model, _ = prune_vocabulary(model, tokenizer, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "bank"],
                                unseen="nearest")

    table = model.get_input_embeddings()
    assert table.token_index.tolist() == [0, 1, 2, 3, 4, 6, 5, 6, 5]  # kept rows compacted in id order
    with torch.no_grad():
        torch.testing.assert_close(table(torch.tensor([5, 8, 0])), original[[7, 6, 0]], rtol=0, atol=0)
        got = model(**tokenizer([["zebra", "lake"]], is_split_into_words=True, return_tensors="pt")).logits
        want = model(**tokenizer([["bank", "the"]], is_split_into_words=True, return_tensors="pt")).logits
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_bad_pruning_options_raise(tiny, tmp_path):
    _, tokenizer = tiny
    keep = corpus_vocabulary(tokenizer, [["the", "bank"]])
    with pytest.raises(ValueError, match="unseen='drop' is not one of"):
        prune_vocabulary(make_tiny_bert(), tokenizer, keep, unseen="drop")
    pruned, _ = prune_vocabulary(make_tiny_bert(), tokenizer, keep, unseen="nearest")
    for unseen in ("resplit", "nearest"):  # a second pruning would renumber a table that is already indexed
        with pytest.raises(ValueError, match=f"already vocabulary-pruned \\(embedding_rows={len(keep)}"):
            prune_vocabulary(pruned, tokenizer, keep, unseen=unseen)
        with pytest.raises(ValueError, match="output embedding"):
            prune_vocabulary(BertForMaskedLM(tiny_bert_config()), tokenizer, keep, unseen=unseen)
    with pytest.raises(ValueError, match="unseen='Nearest'"):
        prune_to_folder(make_tiny_bert(), tokenizer, str(tmp_path / "out"), [["the"]], unseen="Nearest")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("unseen", ["resplit", "nearest"])
@pytest.mark.parametrize("kind", ["bert", "factorized"])
def test_save_load_round_trip_and_pipeline(tiny, train_sentences, tmp_path, kind, unseen):
    _, tokenizer = tiny
    model = MODEL_TYPES[kind](make_tiny_bert()).eval()
    text = " ".join(train_sentences[1])
    reference = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple",
                         device=-1)(text)
    keep = corpus_vocabulary(tokenizer, train_sentences)
    model, pruned = prune_vocabulary(model, tokenizer, keep, unseen=unseen)
    model.save_pretrained(tmp_path)
    pruned.save_pretrained(tmp_path)

    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is type(model) and len(loaded_tokenizer) == len(pruned)
    # resplit: one row per piece of the pruned tokenizer; nearest: the tokenizer's ids, as before, over fewer rows
    assert loaded.config.vocab_size == (len(pruned) if unseen == "resplit" else make_tiny_bert().config.vocab_size)
    assert loaded.get_input_embeddings().num_embeddings == len(keep)
    assert getattr(loaded.config, "embedding_rows", None) == (len(keep) if unseen == "nearest" else None)
    if unseen == "nearest":  # the dropped ids' rows too: the index is saved with the weights
        assert torch.equal(loaded.get_input_embeddings().token_index, model.get_input_embeddings().token_index)
        ids = torch.arange(len(tokenizer))[None]
        with torch.no_grad():
            torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits, rtol=0, atol=0)
    torch.testing.assert_close(logits(loaded, loaded_tokenizer, train_sentences[1]),
                               logits(model, pruned, train_sentences[1]))
    spans = pipeline("token-classification", model=str(tmp_path), aggregation_strategy="simple", device=-1)(text)
    assert [(e["entity_group"], e["start"], e["end"], e["word"]) for e in spans] == [
        (e["entity_group"], e["start"], e["end"], e["word"]) for e in reference
    ]


def test_pad_token_is_remapped():
    """[PAD] after a dropped piece moves down; its row moves with it."""
    vocab = ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "zebra", "[PAD]", "the", "bank", "##s"]
    tokenizer = BertTokenizer(vocab={piece: i for i, piece in enumerate(vocab)})
    model = BertForTokenClassification(tiny_bert_config(vocab_size=len(vocab), pad_token_id=5)).eval()
    old_pad_row = model.get_input_embeddings().weight[5].clone()
    batch = [["the", "banks"], ["bank"]]
    with torch.no_grad():
        expected = model(**tokenizer(batch, is_split_into_words=True, padding=True, return_tensors="pt")).logits

    model, pruned = prune_vocabulary(model, tokenizer, corpus_vocabulary(tokenizer, batch, keep_characters=False),
                                     unseen="resplit")

    assert "zebra" not in pruned.get_vocab()
    assert model.config.pad_token_id == pruned.pad_token_id == model.get_input_embeddings().padding_idx == 4
    torch.testing.assert_close(model.get_input_embeddings().weight[4], old_pad_row)
    with torch.no_grad():
        got = model(**pruned(batch, is_split_into_words=True, padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(got, expected)


def test_extra_text_files_add_their_pieces(tiny, tmp_path):
    _, tokenizer = tiny
    extra = tmp_path / "extra.txt"
    extra.write_text("Rain at the lake\n\n", encoding="utf-8")
    keep = corpus_vocabulary(tokenizer, [["the", "bank"]], text_files=[str(extra)], keep_characters=False)
    assert {"rain", "lake", "bank", "at"} <= set(keep)
    assert "port" not in keep


def test_unk_rate(tiny):
    _, tokenizer = tiny
    assert unk_rate(tokenizer, [["the", "€"], ["bank", "lake"]]) == 0.25  # "€" is not in the tiny vocabulary
    keep = corpus_vocabulary(tokenizer, [["the", "bank"]], keep_characters=False)
    _, pruned = prune_vocabulary(make_tiny_bert(), tokenizer, keep, unseen="resplit")
    assert unk_rate(pruned, [["the", "bank"]]) == 0.0
    assert unk_rate(pruned, [["the", "zq"], ["bank", "lake"]]) == 0.5
    assert unk_rate(corpus_pruned_with_characters(tokenizer), [["the", "zq"], ["bank", "lake"]]) == 0.0
    with pytest.raises(ValueError, match="no words"):
        unk_rate(tokenizer, [])


def test_retokenized_rate(tiny, train_sentences):
    _, tokenizer = tiny
    pruned = corpus_pruned_with_characters(tokenizer)  # keeps "the", "bank" and the characters
    assert retokenized_rate(tokenizer, pruned, [["the", "bank"], ["bank"]]) == 0.0
    assert retokenized_rate(tokenizer, pruned, [["the", "lake"]]) == 0.5  # "lake" -> l ##a ##k ##e
    _, pruned_on_train = prune_vocabulary(make_tiny_bert(), tokenizer, corpus_vocabulary(tokenizer, train_sentences),
                                        unseen="resplit")
    assert retokenized_rate(tokenizer, pruned_on_train, train_sentences) == 0.0


def corpus_pruned_with_characters(tokenizer):
    return prune_vocabulary(make_tiny_bert(), tokenizer, corpus_vocabulary(tokenizer, [["the", "bank"]]),
                            unseen="resplit")[1]


def test_missing_or_empty_corpus_file_is_named(tiny, tmp_path):
    _, tokenizer = tiny
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        corpus_vocabulary(tokenizer, [["the"]], text_files=[str(missing)])
    empty = tmp_path / "blank.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="blank.txt.*empty"):
        corpus_vocabulary(tokenizer, [["the"]], text_files=[str(empty)])


def test_dropping_a_special_token_is_an_error(tiny):
    _, tokenizer = tiny
    keep = [token for token in corpus_vocabulary(tokenizer, [["the", "bank"]]) if token != "[MASK]"]
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        prune_vocabulary(make_tiny_bert(), tokenizer, keep)
    with pytest.raises(ValueError, match="not in the vocabulary.*'zebra'"):
        prune_vocabulary(make_tiny_bert(), tokenizer, keep + ["[MASK]", "zebra"])


@pytest.mark.parametrize("unseen", ["resplit", "nearest"])
def test_labels_survive(tiny, train_sentences, unseen):
    _, tokenizer = tiny
    pruned_model, _ = prune_vocabulary(make_tiny_bert(), tokenizer, corpus_vocabulary(tokenizer, train_sentences),
                                       unseen=unseen)
    assert [pruned_model.config.id2label[i] for i in range(len(LABELS))] == LABELS
