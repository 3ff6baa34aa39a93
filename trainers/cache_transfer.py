"""Fill the transfer-set cache once, before several runs share it (what run_ner_compress.py --transfer_file reads).

``python -m trainers.cache_transfer --teacher DIR --transfer_file F [F ...] --max_seq_length 256
[--max_transfer_samples N] [--transfer_cache_dir D]`` runs the teacher over the sentences and writes the same cache
file that a run with these flags would build (trainers/transfer.py, ``load_or_build_targets``). Its own module, not
trainers/transfer.py's, so that ``python -m`` does not run a module the package has already imported.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from .transfer import TransferArguments, load_or_build_targets, read_transfer_sentences


def main(argv: list[str] | None = None) -> str:
    """Fill the cache for these flags (or find it filled and checked) and return its path."""
    parser = argparse.ArgumentParser(description="Compute and cache a teacher's word-level predictions on a "
                                                 "transfer set (what run_ner_compress.py --transfer_file reads).")
    parser.add_argument("--teacher", required=True, help="The fine-tuned NER teacher folder.")
    parser.add_argument("--transfer_file", nargs="+", required=True)
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--max_transfer_samples", type=int)
    parser.add_argument("--transfer_cache_dir")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    TransferArguments(transfer_file=args.transfer_file, max_transfer_samples=args.max_transfer_samples)
    try:
        tokenizer = AutoTokenizer.from_pretrained(args.teacher)
        teacher = AutoModelForTokenClassification.from_pretrained(args.teacher)
    except OSError as err:
        raise OSError(f"--teacher {args.teacher}: cannot load a model and tokenizer ({err})") from None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    teacher.to(device)
    sentences = read_transfer_sentences(args.transfer_file, tokenizer, args.max_transfer_samples)
    targets = load_or_build_targets(teacher, tokenizer, sentences, args.transfer_file, args.max_seq_length,
                                    args.max_transfer_samples, args.transfer_cache_dir, args.batch_size, device)
    print(f"{targets.path}: {len(sentences)} sentences, {targets.logits.shape[0]} words")
    return targets.path


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as err:
        print(f"trainers.cache_transfer: error: {err}", file=sys.stderr)
        sys.exit(2)
