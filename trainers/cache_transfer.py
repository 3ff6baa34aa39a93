"""Fill the transfer-set cache once, before several runs share it (what run_ner_compress.py --transfer_file reads).

``python -m trainers.cache_transfer --teacher DIR --transfer_file F [F ...] --max_seq_length 256
[--max_transfer_samples N] [--transfer_cache_dir D]`` runs the teacher over the sentences and writes the same cache
file that a run with these flags would build (trainers/transfer.py, ``load_or_build_targets``). Its own module, not
trainers/transfer.py's, so that ``python -m`` does not run a module the package has already imported.

Every flag and the teacher folder are checked before the teacher runs (``check_arguments``): a bad one is one line
naming it, and exit status 2.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import re
import sys

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from runtime.console import one_line_errors
from runtime.textfiles import check_weight_files

from .transfer import TransferArguments, load_or_build_targets, read_transfer_sentences

MIN_SEQ_LENGTH = 3  # [CLS], one subword, [SEP]
DEFAULT_LABEL = re.compile(r"LABEL_\d+")  # what PretrainedConfig names the labels of a model with no task head
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model", "vocab.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = one_line_errors(argparse.ArgumentParser(
        prog="python -m trainers.cache_transfer",
        description="Compute and cache a teacher's word-level predictions on a transfer set (what "
                    "run_ner_compress.py --transfer_file reads)."))
    parser.add_argument("--teacher", required=True, help="The fine-tuned NER teacher folder.")
    parser.add_argument("--transfer_file", nargs="+", required=True)
    parser.add_argument("--max_seq_length", type=int, default=256,
                        help=f"At least {MIN_SEQ_LENGTH}, at most the teacher's max_position_embeddings.")
    parser.add_argument("--max_transfer_samples", type=int)
    parser.add_argument("--transfer_cache_dir")
    parser.add_argument("--batch_size", type=int, default=64)
    return parser.parse_args(argv)


def check_teacher_folder(teacher: str) -> dict:
    """``teacher`` is a saved token-classification model with its labels, loadable weights and a tokenizer: else
    one ValueError naming the folder or file. Returns its config.json (read as JSON: nothing is loaded yet)."""
    if not os.path.isdir(teacher):
        raise ValueError(f"--teacher {teacher}: no such folder")
    config_path = os.path.join(teacher, "config.json")
    if not os.path.isfile(config_path):
        raise ValueError(f"--teacher {teacher}: not a saved model (no config.json)")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"--teacher {config_path}: not a readable JSON config ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"--teacher {config_path}: not a JSON object")
    architectures = config.get("architectures") or []
    labels = list((config.get("id2label") or {}).values())
    if (architectures and not any(str(a).endswith("ForTokenClassification") for a in architectures)) or (
            not labels or all(DEFAULT_LABEL.fullmatch(str(label)) for label in labels)):
        found = ", ".join(map(str, architectures)) or "no architectures"
        raise ValueError(f"--teacher {teacher}: not a fine-tuned NER model ({found}; labels {labels or 'none'}): "
                         "a base model has no trained token-classification head, so its targets would be random")
    weights = sorted(glob.glob(os.path.join(glob.escape(teacher), "*.safetensors")))
    if not weights and not glob.glob(os.path.join(glob.escape(teacher), "pytorch_model*.bin")):
        raise ValueError(f"--teacher {teacher}: no model weights (model.safetensors or pytorch_model.bin)")
    check_weight_files(teacher, "--teacher")  # the headers only: a damaged file fails here, before any loading
    if not any(os.path.isfile(os.path.join(teacher, name)) for name in TOKENIZER_FILES):
        raise ValueError(f"--teacher {teacher}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    return config


def check_arguments(args: argparse.Namespace) -> None:
    """Every flag, before the teacher loads: ValueError naming the first bad one."""
    TransferArguments(transfer_file=args.transfer_file, max_transfer_samples=args.max_transfer_samples,
                      transfer_cache_dir=args.transfer_cache_dir)
    if args.batch_size < 1:
        raise ValueError(f"--batch_size {args.batch_size} must be at least 1")
    if args.max_seq_length < MIN_SEQ_LENGTH:
        raise ValueError(f"--max_seq_length {args.max_seq_length} must be at least {MIN_SEQ_LENGTH} "
                         "([CLS], one subword, [SEP])")
    config = check_teacher_folder(args.teacher)
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and args.max_seq_length > positions:
        raise ValueError(f"--max_seq_length {args.max_seq_length} is above the teacher's max_position_embeddings "
                         f"({positions})")


def main(argv: list[str] | None = None) -> str:
    """Fill the cache for these flags (or find it filled and checked) and return its path."""
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    check_arguments(args)
    try:
        tokenizer = AutoTokenizer.from_pretrained(args.teacher)
        teacher = AutoModelForTokenClassification.from_pretrained(args.teacher)
    except Exception as err:  # transformers raises many types for a folder it cannot load; the user needs the cause
        cause = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OSError(f"--teacher {args.teacher}: cannot load a model and tokenizer ({cause})") from None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    teacher.to(device)
    sentences = read_transfer_sentences(args.transfer_file, tokenizer, args.max_transfer_samples)
    targets = load_or_build_targets(teacher, tokenizer, sentences, args.transfer_file, args.max_seq_length,
                                    args.max_transfer_samples, args.transfer_cache_dir, args.batch_size, device)
    print(f"{targets.path}: {len(sentences)} sentences, {targets.logits.shape[0]} words")
    return targets.path


def cli(argv: list[str] | None = None) -> None:
    """The command: a known input error is one line on stderr and exit status 2."""
    try:
        main(argv)
    except (ValueError, OSError) as err:
        print(f"trainers.cache_transfer: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli()
