"""Vocabulary pruning (TextPruner's idea): keep only the wordpieces a corpus uses, and their embedding rows.

A BERT's word embedding is often the largest single tensor (30522×384 of MiniLM's 22.7M parameters). An NER model
only ever sees the pieces its language produces, so the rows of every other piece can go. What is kept:

- every piece that occurs when the corpus is tokenized (the training split's words, plus extra text files);
- every special and added token (``[PAD]``, ``[UNK]``, ``[CLS]``, ...) and any token id the config names;
- by default every single-character piece and its ``##`` form, so that unseen words still split into pieces
  instead of falling to ``[UNK]``;
- optionally (``keep_top=N``) the N first pieces of the pretrained vocabulary, ``[unusedK]`` placeholders skipped.
  BERT's WordPiece vocabularies list their pieces from most to least frequent (after the special tokens and the
  single characters), so these are the pretraining corpus's most common words: they spare the unseen words of
  later text some of the finer splits, at the price of their rows.

What a word outside the kept pieces costs: WordPiece splits it into other, smaller pieces that the fine-tuned
model has not seen it with. On CoNLL-2003 with the training split alone, 3.7% of test words change (half of
them inside entities: 18% of the words of person names) and a MiniLM tagger loses about 1.5 F1 points;
``keep_top`` trades rows for part of that (the measured curve is in docs/deployment.md).

WordPiece matches greedily, longest piece first, and the kept set is a subset of the old one that contains
every piece the corpus used; so corpus text tokenizes to exactly the same pieces as before, only renumbered.
The model is unchanged except for the rows of its word table: BERT's V×H table, or the V×E table of factorized
embeddings (the E×H projection stays as it is).

That is ``unseen="resplit"``. ``unseen="nearest"`` (the default) avoids the re-split: the tokenizer stays as it
was, so every word splits exactly as the fine-tuned model saw it, and a dropped piece is read from the row of the
kept piece most cosine-similar to it. The same rows are kept; the id→row map is a persistent int32 buffer in the
model (``modeling.IndexedEmbedding``, ``config.embedding_rows``). With the training split plus the Reuters text on
the CPU MiniLM teacher it cost 0.18 test F1 points where re-splitting cost 0.44
(results/history/cpu_transfer/prune_nearest.md).

```python
>>> keep = corpus_vocabulary(tokenizer, sentences=[r["tokens"] for r in train_records], text_files=["extra.txt"])
>>> model, tokenizer = prune_vocabulary(model, tokenizer, keep, unseen="resplit")  # or "nearest": tokenizer kept
>>> unk_rate(tokenizer, [r["tokens"] for r in test_records])  # share of test words that now become [UNK]
>>> retokenized_rate(original_tokenizer, tokenizer, [r["tokens"] for r in test_records])  # ... or split finer
>>> model.save_pretrained("pruned"); tokenizer.save_pretrained("pruned")
>>> model, tokenizer = prune_to_folder(model, tokenizer, "pruned", sentences)  # the three steps above in one
```
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from modeling import CompressedBertForTokenClassification, IndexedEmbedding
from modeling.modeling_compressed_bert import CompressedBertPreTrainedModel
from runtime.atomic import staged_dir
from runtime.textfiles import check_text_file, is_blank, read_lines

logger = logging.getLogger(__name__)

_BATCH = 1000  # sentences tokenized per call: bounds memory on large corpora


def read_text_file(path: str) -> list[str]:
    """The non-blank lines of a plain-text corpus file (``.gz`` is decompressed); a missing, empty, undecodable
    or binary file is an error naming it (and the line of a bad byte)."""
    check_text_file(path, "vocabulary pruning corpus")
    lines = [text.strip() for _, text in read_lines(path) if not is_blank(text)]
    if not lines:
        raise ValueError(f"{path}: the corpus file for vocabulary pruning is empty")
    return lines


def _wordpiece_state(tokenizer) -> dict:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"{type(tokenizer).__name__}: vocabulary pruning needs a fast (tokenizers-backed) tokenizer")
    state = json.loads(backend.to_str())
    if state["model"]["type"] != "WordPiece":
        raise ValueError(f"{type(tokenizer).__name__}: vocabulary pruning supports WordPiece tokenizers, "
                         f"not {state['model']['type']}")
    return state


def _encode(tokenizer, texts: list, split_into_words: bool):
    for start in range(0, len(texts), _BATCH):
        yield tokenizer(texts[start : start + _BATCH], is_split_into_words=split_into_words,
                        add_special_tokens=False, truncation=False)


def required_tokens(model, tokenizer) -> dict[str, int]:
    """Tokens no pruning may drop: special and added tokens, and the ids the model config names (pad, ...)."""
    required = {str(token): token_id for token_id, token in tokenizer.added_tokens_decoder.items()}
    required.update(zip(tokenizer.all_special_tokens, tokenizer.all_special_ids))
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        token_id = getattr(model.config, name, None)
        if isinstance(token_id, int):
            required[tokenizer.convert_ids_to_tokens(token_id)] = token_id
    return required


def corpus_vocabulary(
    tokenizer,
    sentences: Iterable[Sequence[str]] = (),
    text_files: Sequence[str] = (),
    keep_characters: bool = True,
    keep_top: int = 0,
) -> list[str]:
    """The pieces to keep, in vocabulary order: those the corpus uses, the special tokens, (by default) every
    single character with its ``##`` form, and the ``keep_top`` first pieces of the vocabulary that are not
    ``[unusedK]`` placeholders.

    ``sentences`` are pre-split words (CoNLL records' ``tokens``); ``text_files`` are plain text, one or more
    sentences per line, tokenized the way the tokenizer splits raw text.
    """
    if keep_top < 0:
        raise ValueError(f"keep_top={keep_top} must be 0 or more")
    state = _wordpiece_state(tokenizer)
    vocab = state["model"]["vocab"]
    used: set[int] = set()
    sentences = [list(words) for words in sentences if len(words)]
    for encoding in _encode(tokenizer, sentences, split_into_words=True):
        used.update(i for ids in encoding["input_ids"] for i in ids)
    for path in text_files:
        for encoding in _encode(tokenizer, read_text_file(path), split_into_words=False):
            used.update(i for ids in encoding["input_ids"] for i in ids)
    if not used:
        raise ValueError("the corpus for vocabulary pruning holds no words")
    used.update(tokenizer.all_special_ids)
    used.update(token_id for token_id in tokenizer.added_tokens_decoder)
    if keep_characters:
        prefix = state["model"].get("continuing_subword_prefix") or "##"
        used.update(i for piece, i in vocab.items()
                    if len(piece) == 1 or (piece.startswith(prefix) and len(piece) == len(prefix) + 1))
    if keep_top:
        placeholder = re.compile(r"\[unused\d+\]")
        ordered = sorted((i, piece) for piece, i in vocab.items() if not placeholder.fullmatch(piece))
        used.update(i for i, _ in ordered[:keep_top])
    id_to_piece = {i: piece for piece, i in vocab.items()}
    id_to_piece.update({i: str(token) for i, token in tokenizer.added_tokens_decoder.items()})
    return [id_to_piece[i] for i in sorted(used)]


def _remap_post_processor(processor: dict | None, old_to_new: dict[int, int]) -> None:
    """Renumber the special-token ids inside a serialized post-processor (Template, Bert/Roberta, Sequence)."""
    if not processor:
        return
    kind = processor.get("type")
    if kind == "TemplateProcessing":
        for special in processor["special_tokens"].values():
            special["ids"] = [old_to_new[i] for i in special["ids"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for key in ("sep", "cls"):
            token, token_id = processor[key]
            processor[key] = [token, old_to_new[token_id]]
    elif kind == "Sequence":
        for inner in processor["processors"]:
            _remap_post_processor(inner, old_to_new)


def build_pruned_tokenizer(tokenizer, kept_ids: list[int]):
    """The same tokenizer (class, normalizer, pre-tokenizer, special tokens) over the kept pieces, renumbered
    0..len(kept_ids)-1 in the old order.

    It is written to a scratch folder and loaded back, so what is returned is exactly what ``from_pretrained``
    gives for the saved pruned tokenizer.
    """
    state = _wordpiece_state(tokenizer)
    old_to_new = {old: new for new, old in enumerate(kept_ids)}
    id_to_piece = {i: piece for piece, i in state["model"]["vocab"].items()}
    state["model"]["vocab"] = {id_to_piece[old]: new for new, old in enumerate(kept_ids)}
    for added in state.get("added_tokens") or []:
        added["id"] = old_to_new[added["id"]]
    _remap_post_processor(state.get("post_processor"), old_to_new)
    if state.get("padding"):
        state["padding"]["pad_id"] = old_to_new[state["padding"]["pad_id"]]
    with tempfile.TemporaryDirectory(prefix="pruned-tokenizer-") as scratch:
        tokenizer.save_pretrained(scratch)
        with open(os.path.join(scratch, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(state, f, ensure_ascii=False)
        vocab_file = os.path.join(scratch, "vocab.txt")
        if os.path.exists(vocab_file):  # tokenizers saved with a vocab.txt must agree with tokenizer.json
            with open(vocab_file, "w", encoding="utf-8") as f:
                f.write("".join(id_to_piece[old] + "\n" for old in kept_ids))
        pruned = type(tokenizer).from_pretrained(scratch)
    pruned.name_or_path = tokenizer.name_or_path
    return pruned


UNSEEN_MODES = ("resplit", "nearest")
DEFAULT_UNSEEN = "nearest"  # chosen on CoNLL-2003 validation F1 (results/history/cpu_transfer/prune_nearest.md)
_NEAREST_CHUNK = 1024  # dropped rows compared with the kept rows at a time: bounds the (chunk, K) similarity matrix


@torch.no_grad()
def prune_vocabulary(model, tokenizer, keep_tokens: Iterable[str], unseen: str = DEFAULT_UNSEEN):
    """Keep only the rows of ``keep_tokens`` in the model's word table; returns ``(model, tokenizer)``.

    What becomes of a piece that is not kept (``unseen``):

    - ``"resplit"``: the tokenizer loses it too, so a word that used it is split into other (kept) pieces. The
      model is changed in place: its input embedding keeps the rows of the kept pieces, ``config.vocab_size`` and
      ``config.pad_token_id`` follow. Works for any model whose ``get_input_embeddings()`` is the word table.
    - ``"nearest"``: the tokenizer is returned unchanged, so every word splits as before; the dropped piece's id
      is looked up in the row of the kept piece whose original row is most cosine-similar (kept rows compacted in
      id order; ``IndexedEmbedding`` holds the id→row index, ``config.embedding_rows`` the row count). The
      similarity is taken on the model's own word-table rows: V×H, or the V×E table of factorized embeddings.
      Compressed BERTs are changed in place; a plain BERT cannot hold the index, so it is first converted with
      ``CompressedBertForTokenClassification.from_bert`` (no compression, same logits) and a NEW model is
      returned.

    Either way the kept table is V'×H (or V'×E for factorized embeddings; the E×H projection stays as it is).
    Models with an output embedding tied to the word table, and models already pruned with ``"nearest"``, are
    refused.
    """
    if unseen not in UNSEEN_MODES:
        raise ValueError(f"unseen={unseen!r} is not one of {UNSEEN_MODES}")
    state = _wordpiece_state(tokenizer)
    vocab = dict(state["model"]["vocab"])
    vocab.update({str(token): i for i, token in tokenizer.added_tokens_decoder.items()})
    keep_tokens = list(dict.fromkeys(keep_tokens))
    unknown = [token for token in keep_tokens if token not in vocab]
    if unknown:
        raise ValueError(f"tokens to keep that are not in the vocabulary: {unknown[:10]}")
    kept_set = set(keep_tokens)
    for token, token_id in required_tokens(model, tokenizer).items():
        if token not in kept_set:
            raise ValueError(f"vocabulary pruning would drop the special token {token!r} (id {token_id}); "
                             "special tokens, added tokens and the config's token ids must be kept")
    if model.get_output_embeddings() is not None:
        raise ValueError(f"{type(model).__name__} has an output embedding (tied to the word table); "
                         "vocabulary pruning supports encoders with a token-classification head")
    if getattr(model.config, "embedding_rows", None) is not None:
        raise ValueError(f"{type(model).__name__} is already vocabulary-pruned (embedding_rows="
                         f"{model.config.embedding_rows}, unseen='nearest'); prune the unpruned model instead")
    old_embedding = model.get_input_embeddings()
    kept_ids = sorted(vocab[token] for token in keep_tokens)
    if kept_ids[-1] >= old_embedding.num_embeddings:
        raise ValueError(f"token id {kept_ids[-1]} is beyond the model's word table "
                         f"({old_embedding.num_embeddings} rows)")
    if unseen == "nearest":
        return _prune_to_nearest(model, kept_ids), tokenizer
    old_to_new = {old: new for new, old in enumerate(kept_ids)}

    index = torch.tensor(kept_ids, device=old_embedding.weight.device)
    pad_token_id = model.config.pad_token_id
    new_pad = old_to_new[pad_token_id] if pad_token_id is not None else None
    new_embedding = nn.Embedding(len(kept_ids), old_embedding.embedding_dim, padding_idx=new_pad,
                                 device=old_embedding.weight.device, dtype=old_embedding.weight.dtype)
    new_embedding.weight.copy_(old_embedding.weight.index_select(0, index))  # (V', E or H)
    model.set_input_embeddings(new_embedding)
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        if isinstance(getattr(model.config, name, None), int):
            setattr(model.config, name, old_to_new[getattr(model.config, name)])
    logger.info("vocabulary pruned from %d to %d pieces", old_embedding.num_embeddings, len(kept_ids))
    model.config.vocab_size = len(kept_ids)
    return model, build_pruned_tokenizer(tokenizer, kept_ids)


def _prune_to_nearest(model, kept_ids: list[int]):
    """``model`` (a compressed BERT, or a plain one converted first) with a word table of the ``kept_ids`` rows,
    every other id sent to its most cosine-similar kept row."""
    if not isinstance(model, CompressedBertPreTrainedModel):
        model = CompressedBertForTokenClassification.from_bert(model).to(model.device).eval()
    weight = model.get_input_embeddings().weight  # (V, H or E)
    kept = torch.tensor(kept_ids, device=weight.device)
    token_index = torch.empty(weight.shape[0], dtype=torch.int32, device=weight.device)  # (V,)
    token_index[kept] = torch.arange(len(kept_ids), dtype=torch.int32, device=weight.device)
    dropped = torch.ones(weight.shape[0], dtype=torch.bool, device=weight.device)
    dropped[kept] = False
    dropped = dropped.nonzero().squeeze(1)
    kept_unit = nn.functional.normalize(weight[kept].float(), dim=1)  # (K, dim)
    for chunk in dropped.split(_NEAREST_CHUNK):
        similarity = nn.functional.normalize(weight[chunk].float(), dim=1) @ kept_unit.T  # (chunk, K)
        token_index[chunk] = similarity.argmax(dim=1).to(torch.int32)
    model.set_input_embeddings(IndexedEmbedding.from_rows(weight[kept], token_index))
    model.config.embedding_rows = len(kept_ids)
    logger.info("vocabulary pruned from %d to %d rows; the other %d ids use their nearest kept row",
                weight.shape[0], len(kept_ids), len(dropped))
    return model


def prune_to_folder(model, tokenizer, target_dir: str, sentences: Iterable[Sequence[str]] = (),
                    text_files: Sequence[str] = (), keep_top: int = 0, unseen: str = DEFAULT_UNSEEN):
    """``prune_vocabulary`` to the pieces of ``sentences`` and ``text_files`` (see ``corpus_vocabulary``), saved
    with the (pruned or, for ``unseen="nearest"``, unchanged) tokenizer to ``target_dir``, which appears only once
    complete; returns ``(model, tokenizer)``."""
    keep = corpus_vocabulary(tokenizer, sentences, text_files, keep_top=keep_top)
    model, pruned_tokenizer = prune_vocabulary(model, tokenizer, keep, unseen=unseen)
    with staged_dir(target_dir) as staging:
        model.save_pretrained(staging)
        pruned_tokenizer.save_pretrained(staging)
    return model, pruned_tokenizer


def unk_rate(tokenizer, sentences: Iterable[Sequence[str]]) -> float:
    """The share of words (pre-split, as in CoNLL records' ``tokens``) with an ``[UNK]`` among their pieces."""
    sentences = [list(words) for words in sentences if len(words)]
    words = sum(len(words) for words in sentences)
    if not words:
        raise ValueError("no words to measure the [UNK] rate on")
    unknown = 0
    for encoding in _encode(tokenizer, sentences, split_into_words=True):
        for index, ids in enumerate(encoding["input_ids"]):
            word_ids = encoding.word_ids(index)
            unknown += len({word_ids[position] for position, i in enumerate(ids) if i == tokenizer.unk_token_id})
    return unknown / words


def retokenized_rate(tokenizer, pruned_tokenizer, sentences: Iterable[Sequence[str]]) -> float:
    """The share of words that the pruned tokenizer splits into other pieces than the original (``[UNK]`` or a
    finer split): words outside the pruning corpus can change, words inside it never do."""
    sentences = [list(words) for words in sentences if len(words)]
    words = sum(len(words) for words in sentences)
    if not words:
        raise ValueError("no words to compare the tokenizers on")
    changed = 0
    for before, after in zip(_encode(tokenizer, sentences, split_into_words=True),
                             _encode(pruned_tokenizer, sentences, split_into_words=True)):
        for index in range(len(before["input_ids"])):
            pieces = [{}, {}]
            for side, encoding, vocab_of in ((0, before, tokenizer), (1, after, pruned_tokenizer)):
                tokens = vocab_of.convert_ids_to_tokens(encoding["input_ids"][index])
                for word_id, token in zip(encoding.word_ids(index), tokens):
                    pieces[side].setdefault(word_id, []).append(token)
            changed += sum(pieces[0][w] != pieces[1].get(w) for w in pieces[0])
    return changed / words
