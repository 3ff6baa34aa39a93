"""Distillation on an unlabelled transfer set: raw sentences, the teacher's word-level targets (computed once and
cached), and a training dataset that mixes them with the labelled sentences.

The teacher runs once over the transfer sentences (eval mode, no_grad) and its logits at the first subword of each
word are stored as fp16, one row per word, in a safetensors file whose name and metadata carry a hash of everything
that decides them (teacher weights, labels, tokenizer, file bytes, max_seq_length, max_transfer_samples). A changed
teacher or file gets another key; a file whose key, shapes or values do not check out (its metadata holds a sha256
of the stored values, so values overwritten after writing are found too) is logged in one warning and rebuilt.
Word-level targets serve any student tokenizer: at dataset-build time the words are tokenized with the student's
tokenizer and each word's teacher logits go to the student's first subword of that word.

```python
>>> sentences = read_transfer_sentences(["reuters.txt.gz"], tokenizer, max_sentences=40_000)
>>> targets = load_or_build_targets(teacher, tokenizer, sentences, files, max_seq_length=256,
...                                 max_transfer_samples=40_000, cache_dir=default_cache_dir())
>>> pool = TransferPool.build(sentences, targets, student_tokenizer, max_seq_length=256)
>>> train = TransferMixDataset(labelled_features, pool.select(min_entities=1), ratio=1.0)
>>> trainer = DistillationTrainer(..., train_dataset=train, data_collator=TransferCollator(student_tokenizer),
...                               callbacks=[TransferEpochCallback(train)])
```

Fill the cache once from the command line (before several runs share it):
``python -m trainers.cache_transfer --teacher DIR --transfer_file F [F ...] --max_seq_length 256``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (
    AutoTokenizer,
    DataCollatorForTokenClassification,
    TrainerCallback,
)

from runtime.atomic import atomic_path
from runtime.fields import Bounds, check_fields
from runtime.formats import detect_input_format
from runtime.textfiles import check_text_file, is_blank, open_binary, read_lines

from .ner_data import iob1_to_iob2, read_ner_file

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the stored layout or the target computation changes: old files then miss
TRANSFER_KEYS = ("teacher_logits", "is_transfer")  # batch keys that the DistillationTrainer takes out
_SNIFF_BYTES = 8192
_SNIFF_LINES = 100  # lines looked at to tell CoNLL columns or JSON lines from raw text


@dataclass
class TransferArguments:
    """The transfer-set flags of run_ner_compress.py (used only with a teacher)."""

    # The numeric flags' bounds, checked by runtime.fields.check_fields in __post_init__ (config files too)
    BOUNDS: ClassVar[dict] = {
        "max_transfer_samples": Bounds(min=1), "transfer_ratio": Bounds(above=0), "transfer_kl_weight": Bounds(min=0),
        "transfer_min_entities": Bounds(min=0),
    }

    transfer_file: list[str] | None = field(
        default=None,
        metadata={"help": "Unlabelled text for distillation: one raw sentence per line (.txt or .gz), or a CoNLL "
                          "or JSON-lines file (labels ignored). Needs --teacher_name_or_path."},
    )
    max_transfer_samples: int | None = field(
        default=None,
        metadata={"help": "Use the first N transfer sentences (before --transfer_min_entities)."},
    )
    transfer_ratio: float = field(
        default=1.0,
        metadata={"help": "Transfer sentences per labelled sentence in each epoch (a fresh slice of the pool each "
                          "epoch; --num_train_epochs counts labelled epochs)."},
    )
    transfer_kl_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the transfer rows' KL term, relative to the labelled rows' KL."},
    )
    transfer_min_entities: int = field(
        default=0,
        metadata={"help": "Keep transfer sentences where the teacher finds at least K entities (0: all).",
},
    )
    transfer_targets: str = field(
        default="cached",
        metadata={"help": "'cached': teacher targets computed once; 'live': the teacher runs on transfer rows in "
                          "every step (to measure the cache's saving).", "choices": ("cached", "live")},
    )
    transfer_cache_dir: str | None = field(
        default=None, metadata={"help": "Where teacher predictions are cached (default: see default_cache_dir())."}
    )

    def __post_init__(self):
        check_fields(self)  # each field's bounds and choices (inf or NaN included: inf would overflow round())
        for path in self.transfer_file or []:  # fail before any teacher or training work
            check_transfer_file(path)
        if self.requested:  # the teacher's predictions are written there once it has run: find out now
            check_cache_dir(self.transfer_cache_dir)

    @property
    def requested(self) -> bool:
        return bool(self.transfer_file)


def default_cache_dir() -> str:
    """``$HF_HOME/bert_ner_compress/...`` if set, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)."""
    if os.environ.get("HF_HOME"):
        base = os.environ["HF_HOME"]
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bert_ner_compress", "teacher_predictions")


def check_cache_dir(cache_dir: str | None) -> None:
    """The cache folder (``None``: the default) exists as a writable folder or can be made: else one error naming
    --transfer_cache_dir. Writes nothing: the probe is an unnamed temporary file in the nearest existing folder."""
    flag = f"--transfer_cache_dir {cache_dir}" if cache_dir else f"--transfer_cache_dir (default {default_cache_dir()})"
    folder = os.path.abspath(cache_dir or default_cache_dir())
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{flag}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):  # os.access says yes to root on a read-only folder
            pass
    except OSError as err:
        raise ValueError(f"{flag}: cannot write in {existing} ({err.strerror})") from None


# ----------------------------------------------------------------------------------------------------------------
# Reading


def check_transfer_file(path: str) -> None:
    """Missing, empty, undecodable, binary (NUL bytes, or not gzip when named .gz) or blank -> one error naming the
    file (and the line of a bad byte): checked before any teacher or training work."""
    check_text_file(path, "--transfer_file")
    with open_binary(path) as f:
        head = f.read(_SNIFF_BYTES)
    if not head.strip():
        raise ValueError(f"--transfer_file {path}: the file holds no text")


def _holds_records(path: str) -> bool:
    """JSON lines, or tagged CoNLL columns, as ``run_ner_predict`` tells them from raw text (a ``.gz`` is raw text:
    one sentence per line)."""
    if path.endswith(".gz"):
        return False
    input_format, tagged = detect_input_format(path, [line for _, line in itertools.islice(read_lines(path),
                                                                                            _SNIFF_LINES)])
    return input_format == "jsonl" or input_format == "conll" and tagged


def read_transfer_sentences(paths: list[str], tokenizer, max_sentences: int | None = None) -> list[list[str]]:
    """The transfer sentences as word lists, in file order, at most ``max_sentences``.

    Raw lines (``.txt``/``.gz``, one sentence per line, blank lines skipped) are split by the tokenizer's own
    pre-tokenizer, so their words look like CoNLL tokens; ``.json``/``.jsonl`` and CoNLL-column files are read by
    the training readers and their tags ignored. Words the tokenizer's normalizer erases (a lone zero-width space)
    are dropped, as they would get no subword to carry a target.
    """
    backend = tokenizer.backend_tokenizer
    pre_tokenizer, normalizer = backend.pre_tokenizer, backend.normalizer
    sentences: list[list[str]] = []
    for path in paths:
        check_transfer_file(path)
        before = len(sentences)
        if _holds_records(path):
            lines = (record["tokens"] for record in read_ner_file(path))
        else:  # the text was checked whole (UTF-8, no NUL) by check_transfer_file
            lines = ([word for word, _ in pre_tokenizer.pre_tokenize_str(text)] if pre_tokenizer else text.split()
                     for _, text in read_lines(path) if not is_blank(text))
        for words in lines:
            words = _keep_words(words, normalizer)
            if words:
                sentences.append(words)
            if max_sentences is not None and len(sentences) >= max_sentences:
                break
        if len(sentences) == before:
            raise ValueError(f"--transfer_file {path}: no sentences with words found")
        if max_sentences is not None and len(sentences) >= max_sentences:
            break
    return sentences


def _keep_words(words: list[str], normalizer) -> list[str]:
    if normalizer is None:
        return [word for word in words if word.strip()]
    return [word for word in words if normalizer.normalize_str(word).strip()]


# ----------------------------------------------------------------------------------------------------------------
# Teacher targets and their cache


@dataclass
class TransferTargets:
    """The teacher's logits at the first subword of each word, one row per word, sentence after sentence.

    Sentence i owns rows ``offsets[i]:offsets[i+1]``: targets for its first ``offsets[i+1] - offsets[i]`` words
    (words cut off by max_seq_length have none, and they are always the last ones).
    """

    logits: torch.Tensor  # (total_words, num_labels) fp16
    offsets: torch.Tensor  # (num_sentences + 1,) int64
    key: str = ""
    path: str | None = None

    def sentence(self, index: int) -> torch.Tensor:
        return self.logits[self.offsets[index] : self.offsets[index + 1]]  # (words_i, C)


def cache_key(teacher, tokenizer, paths: list[str], max_seq_length: int, max_transfer_samples: int | None) -> str:
    """sha256 over all that decides the targets: weights, labels, tokenizer, file list and bytes, the limits."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}:{len(data)}:".encode())
        digest.update(data)

    add("format", str(CACHE_FORMAT).encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        add(f"param {name} {tuple(tensor.shape)} {tensor.dtype}", flat.view(torch.uint8).numpy().tobytes())
    id2label = {int(k): v for k, v in teacher.config.id2label.items()}
    add("id2label", json.dumps(id2label, sort_keys=True).encode())
    # Vocabulary, normalizer, pre-tokenizer; not the padding and truncation that the last call happened to set.
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    state = {k: v for k, v in state.items() if k not in ("padding", "truncation")}
    add("tokenizer", json.dumps(state, sort_keys=True).encode())
    add("files", json.dumps([os.path.basename(p) for p in paths]).encode())
    for path in paths:
        file_digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                file_digest.update(block)
        add("file bytes", file_digest.digest())
    add("limits", json.dumps([max_seq_length, max_transfer_samples]).encode())
    return digest.hexdigest()


@torch.no_grad()
def compute_word_logits(teacher, tokenizer, sentences: list[list[str]], max_seq_length: int,
                        batch_size: int = 64, device=None) -> TransferTargets:
    """Run the teacher over the sentences (longest first, batched) and keep its logits at each word's first subword."""
    device = device or next(teacher.parameters()).device
    was_training = teacher.training
    teacher.eval()
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))  # similar lengths pad little
    per_sentence: list[torch.Tensor | None] = [None] * len(sentences)
    for start in range(0, len(order), batch_size):
        batch_ids = order[start : start + batch_size]
        encoding = tokenizer([sentences[i] for i in batch_ids], is_split_into_words=True, truncation=True,
                             max_length=max_seq_length, padding=True, return_tensors="pt")
        inputs = {k: v.to(device) for k, v in encoding.items()}
        logits = teacher(**inputs).logits.float().cpu()  # (B, T, C)
        for row, index in enumerate(batch_ids):
            first = {}
            for position, word in enumerate(encoding.word_ids(row)):
                if word is not None and word not in first:
                    first[word] = position
            kept = 0  # the words with a subword form a prefix; truncation cuts the rest
            while kept in first:
                kept += 1
            per_sentence[index] = logits[row, [first[w] for w in range(kept)]].to(torch.float16)  # (kept, C)
    teacher.train(was_training)
    counts = torch.tensor([0] + [t.shape[0] for t in per_sentence], dtype=torch.int64)
    num_labels = teacher.config.num_labels
    stacked = torch.cat(per_sentence) if per_sentence else torch.zeros(0, num_labels, dtype=torch.float16)
    return TransferTargets(logits=stacked.contiguous(), offsets=counts.cumsum(0))


def _check_targets(targets: TransferTargets, sentences: list[list[str]], num_labels: int) -> str | None:
    """What is wrong with loaded targets for these sentences, or None."""
    logits, offsets = targets.logits, targets.offsets
    if logits.dim() != 2 or logits.shape[1] != num_labels or logits.dtype != torch.float16:
        return f"logits of shape {tuple(logits.shape)} and dtype {logits.dtype}, expected (words, {num_labels}) fp16"
    if offsets.dim() != 1 or offsets.shape[0] != len(sentences) + 1 or offsets.dtype != torch.int64:
        return f"offsets of shape {tuple(offsets.shape)}, expected ({len(sentences) + 1},) int64"
    counts = offsets[1:] - offsets[:-1]
    if offsets[0] != 0 or offsets[-1] != logits.shape[0] or (counts < 0).any():
        return "offsets do not cover the logits in order"
    if (counts > torch.tensor([len(s) for s in sentences])).any():
        return "more targets than words in some sentence"
    if not torch.isfinite(logits).all():
        return "non-finite logits"
    return None


def values_checksum(targets: TransferTargets) -> str:
    """sha256 of the stored tensors' bytes (logits, then offsets): recorded in the cache's metadata, so that values
    changed after writing (still finite, still the right shape) are found."""
    digest = hashlib.sha256()
    for tensor in (targets.logits, targets.offsets):
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_or_build_targets(teacher, tokenizer, sentences: list[list[str]], paths: list[str], max_seq_length: int,
                          max_transfer_samples: int | None, cache_dir: str | None = None,
                          batch_size: int = 64, device=None) -> TransferTargets:
    """The cached targets when the cache holds a valid file for this key; otherwise compute and store them."""
    key = cache_key(teacher, tokenizer, paths, max_seq_length, max_transfer_samples)
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, f"{key[:32]}.safetensors")
    num_labels = teacher.config.num_labels
    if os.path.isfile(path):
        try:
            with safe_open(path, framework="pt") as f:
                metadata = f.metadata() or {}
                loaded = TransferTargets(f.get_tensor("logits"), f.get_tensor("offsets"), metadata.get("key", ""), path)
            problem = None if loaded.key == key else "its key does not match"
            problem = problem or _check_targets(loaded, sentences, num_labels)
            if problem is None and metadata.get("values_sha256") != values_checksum(loaded):
                problem = ("its values do not match their checksum" if metadata.get("values_sha256")
                           else "it has no checksum of its values (an older cache)")
        except Exception as err:  # safetensors raises its own error types on a damaged file
            problem = f"unreadable ({type(err).__name__}: {err})"
        if problem is None:
            logger.info("transfer set: teacher predictions loaded from %s (%d sentences, %d words)", path,
                        len(sentences), loaded.logits.shape[0])
            return loaded
        logger.warning("transfer set: the cached teacher predictions %s are stale or corrupt (%s): rebuilding them",
                       path, problem)
    logger.info("transfer set: running the teacher over %d sentences (cache %s)", len(sentences), path)
    targets = compute_word_logits(teacher, tokenizer, sentences, max_seq_length, batch_size, device)
    problem = _check_targets(targets, sentences, num_labels)
    if problem:
        raise ValueError(f"the teacher's predictions on the transfer set are unusable: {problem}")
    targets.key, targets.path = key, path
    os.makedirs(cache_dir, exist_ok=True)
    metadata = {"key": key, "format": str(CACHE_FORMAT), "num_sentences": str(len(sentences)),
                "files": json.dumps([os.path.abspath(p) for p in paths]), "max_seq_length": str(max_seq_length),
                "max_transfer_samples": str(max_transfer_samples), "values_sha256": values_checksum(targets),
                "id2label": json.dumps({int(k): v for k, v in teacher.config.id2label.items()})}
    with atomic_path(path) as partial:  # a run reading the cache meanwhile sees the old file or the whole new one
        save_file({"logits": targets.logits, "offsets": targets.offsets}, partial, metadata=metadata)
    return targets


# ----------------------------------------------------------------------------------------------------------------
# Training data


@dataclass
class TransferPool:
    """Transfer sentences tokenized for the student, with where each word's teacher target goes."""

    features: list[dict]  # input_ids, attention_mask, (token_type_ids), target_positions, target_words
    targets: TransferTargets
    sentence_ids: list[int]  # index of each feature's sentence in ``targets``

    @classmethod
    def build(cls, sentences: list[list[str]], targets: TransferTargets, tokenizer, max_seq_length: int,
              keep: list[int] | None = None) -> TransferPool:
        """Tokenize ``sentences[keep]`` with the student's tokenizer; a word's target sits at its first subword."""
        keep = list(range(len(sentences))) if keep is None else list(keep)
        features, sentence_ids = [], []
        for start in range(0, len(keep), 1000):
            chunk = keep[start : start + 1000]
            encoding = tokenizer([sentences[i] for i in chunk], is_split_into_words=True, truncation=True,
                                 max_length=max_seq_length)
            for row, index in enumerate(chunk):
                with_target = int(targets.offsets[index + 1] - targets.offsets[index])
                positions, words, seen = [], [], set()
                for position, word in enumerate(encoding.word_ids(row)):
                    if word is not None and word < with_target and word not in seen:
                        seen.add(word)
                        positions.append(position)
                        words.append(word)
                if not positions:  # nothing to learn from (every word cut off)
                    continue
                feature = {key: encoding[key][row] for key in encoding.keys()}
                feature.update(target_positions=positions, target_words=words)
                features.append(feature)
                sentence_ids.append(index)
        return cls(features, targets, sentence_ids)

    def __len__(self) -> int:
        return len(self.features)

    def item(self, index: int) -> dict:
        """One training row: labels all -100, ``teacher_logits`` (T, C) with NaN where no word starts."""
        feature = self.features[index]
        word_logits = self.targets.sentence(self.sentence_ids[index])  # (W, C)
        length = len(feature["input_ids"])
        teacher_logits = torch.full((length, word_logits.shape[1]), float("nan"))  # (T, C)
        teacher_logits[feature["target_positions"]] = word_logits[feature["target_words"]].float()
        item = {k: v for k, v in feature.items() if k not in ("target_positions", "target_words")}
        item.update(labels=[-100] * length, teacher_logits=teacher_logits)
        return item


def select_sentences(targets: TransferTargets, id2label: dict, min_entities: int) -> list[int]:
    """The sentences in which the teacher's argmax tags hold at least ``min_entities`` entities."""
    if min_entities <= 0:
        return list(range(targets.offsets.shape[0] - 1))
    id2label = {int(k): v for k, v in id2label.items()}
    tags = [id2label[i] for i in targets.logits.float().argmax(-1).tolist()]  # one argmax over all words
    offsets = targets.offsets.tolist()
    return [i for i in range(len(offsets) - 1)
            if sum(tag.startswith("B-") for tag in iob1_to_iob2(tags[offsets[i] : offsets[i + 1]])) >= min_entities]


class TransferMixDataset(torch.utils.data.Dataset):
    """All labelled features, then ``round(ratio × N_labelled)`` transfer rows: the epoch's slice of the pool.

    ``set_epoch(e)`` moves the slice to start at ``e × n_transfer`` (cycling through the pool), so every epoch
    sees fresh transfer sentences until the pool is used up; the Trainer's sampler shuffles the two kinds together.
    The length never changes, so samplers (DistributedSampler included) and ``num_train_epochs`` work as usual.
    """

    def __init__(self, labelled: list[dict], pool: TransferPool, ratio: float = 1.0):
        if len(pool) == 0:
            raise ValueError("the transfer set has no usable sentence (after --transfer_min_entities)")
        self.labelled, self.pool = labelled, pool
        self.num_transfer = max(1, round(ratio * len(labelled)))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labelled) + self.num_transfer

    def transfer_index(self, index: int) -> int:
        return (self.epoch * self.num_transfer + index - len(self.labelled)) % len(self.pool)

    def __getitem__(self, index: int) -> dict:
        if index < len(self.labelled):  # marked, so that a batch of labelled rows only is still a training batch
            return {**self.labelled[index], "teacher_logits": None}
        return self.pool.item(self.transfer_index(index))


class TransferEpochCallback(TrainerCallback):
    """Point the dataset at the epoch's transfer slice before the epoch's data loader starts.

    ``state.epoch`` is restored from a checkpoint, so a resumed run gets the same slices as an unbroken one.
    (With ``dataloader_num_workers > 0`` and persistent workers, the workers' copies would not see the change.)
    """

    def __init__(self, dataset: TransferMixDataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.set_epoch(math.floor((state.epoch or 0.0) + 1e-6))


@dataclass
class TransferCollator(DataCollatorForTokenClassification):
    """DataCollatorForTokenClassification, plus ``teacher_logits`` (B, T, C; NaN where there is no target) and
    ``is_transfer`` (B,) for rows of a TransferMixDataset (every training batch, even one without transfer rows, so
    that every process logs the same loss parts). Labelled rows get all-NaN teacher logits; evaluation features
    (without the key) get a plain batch."""

    num_labels: int | None = None  # C, for a batch with no transfer row

    def __call__(self, features, return_tensors=None):
        if not any("teacher_logits" in feature for feature in features):
            return super().__call__(features, return_tensors)
        logits = [feature.get("teacher_logits") for feature in features]
        stripped = [{k: v for k, v in feature.items() if k != "teacher_logits"} for feature in features]
        batch = super().__call__(stripped, return_tensors)
        batch_size, length = batch["input_ids"].shape
        num_labels = next((item.shape[-1] for item in logits if item is not None), self.num_labels or 0)
        padded = torch.full((batch_size, length, num_labels), float("nan"))  # (B, T, C)
        for row, item in enumerate(logits):
            if item is None:
                continue
            if self.tokenizer.padding_side == "left":
                padded[row, length - item.shape[0]:] = item
            else:
                padded[row, : item.shape[0]] = item
        batch["teacher_logits"] = padded
        batch["is_transfer"] = torch.tensor([item is not None for item in logits])
        return batch


@dataclass
class TransferSetup:
    """What run_ner_compress.py needs: the mixed training set, its collator and callback, and the facts for
    results.json."""

    dataset: TransferMixDataset
    collator: TransferCollator
    callback: TransferEpochCallback
    info: dict


def prepare_transfer(transfer_args: TransferArguments, teacher, teacher_path: str, tokenizer, labelled: list[dict],
                     max_seq_length: int, training_args) -> TransferSetup:
    """Read the transfer files, load or compute the teacher's targets (the main process first, so that the others
    find them cached), select, and tokenize for the student's ``tokenizer``."""
    try:
        teacher_tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    except (OSError, ValueError) as err:
        raise OSError(f"--teacher_name_or_path {teacher_path}: cannot load its tokenizer, needed to label the "
                      f"transfer set ({err})") from None
    if transfer_args.transfer_targets == "live" and teacher_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise ValueError("--transfer_targets live feeds the student's token ids to the teacher, so it needs one "
                         "tokenizer for both; use --transfer_targets cached with a pruned student")
    paths = list(transfer_args.transfer_file)
    sentences = read_transfer_sentences(paths, teacher_tokenizer, transfer_args.max_transfer_samples)
    with training_args.main_process_first(desc="teacher predictions on the transfer set"):
        teacher.to(training_args.device)
        targets = load_or_build_targets(teacher, teacher_tokenizer, sentences, paths, max_seq_length,
                                        transfer_args.max_transfer_samples, transfer_args.transfer_cache_dir,
                                        training_args.per_device_eval_batch_size, training_args.device)
    keep = select_sentences(targets, teacher.config.id2label, transfer_args.transfer_min_entities)
    pool = TransferPool.build(sentences, targets, tokenizer, max_seq_length, keep)
    dataset = TransferMixDataset(labelled, pool, transfer_args.transfer_ratio)
    logger.info("transfer set: %d of %d sentences kept (at least %d entities), %d per epoch beside %d labelled",
                len(pool), len(sentences), transfer_args.transfer_min_entities, dataset.num_transfer, len(labelled))
    info = {
        "transfer_files": paths,
        "transfer_sentences": len(pool),
        "transfer_sentences_read": len(sentences),
        "transfer_min_entities": transfer_args.transfer_min_entities,
        "transfer_ratio": transfer_args.transfer_ratio,
        "transfer_kl_weight": transfer_args.transfer_kl_weight,
        "transfer_targets": transfer_args.transfer_targets,
        "transfer_per_epoch": dataset.num_transfer,
        "transfer_cache_file": targets.path,
    }
    collator = TransferCollator(tokenizer, pad_to_multiple_of=8, num_labels=teacher.config.num_labels)
    return TransferSetup(dataset, collator, TransferEpochCallback(dataset), info)
