#!/usr/bin/env python
"""What vocabulary pruning costs a trained NER model, for several ``--prune_keep_top`` values, as a Markdown table.

```bash
python benchmarks/prune_curve.py --model_dir cmp/teacher \
    --train_file train.txt --validation_file valid.txt --test_file test.txt --keep_top 0,10000,20000,25000
python benchmarks/prune_curve.py --model_dir cmp/teacher --train_file train.txt --validation_file valid.txt \
    --test_file test.txt --keep_top 0 --extra_texts ../shared/data/reuters21578/sentences.txt.gz \
    --unseen resplit,nearest
```

Each line prunes the model's vocabulary to the training split's pieces (plus every single character, the special
tokens and the ``keep_top`` most frequent pieces of the pretrained vocabulary), then scores the pruned model on
validation and test beside the unpruned one: F1 and its change in points, the rows left in the word table and
the share of words that now split into other pieces. ``--unseen`` picks what becomes of a dropped piece (one line
per ``keep_top`` × mode): ``resplit`` drops it from the tokenizer too, ``nearest`` keeps the tokenizer and sends it
to the most similar kept row, so no word is re-split. Choose ``keep_top`` and the mode on the validation columns.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from benchmarks.report import emit  # noqa: E402
from export.vocab_pruning import DEFAULT_UNSEEN, UNSEEN_MODES  # noqa: E402

logger = logging.getLogger("prune_curve")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", type=Path, required=True, help="A saved token-classification model.")
    parser.add_argument("--train_file", type=Path, required=True, help="The corpus whose pieces are kept.")
    parser.add_argument("--validation_file", type=Path, required=True)
    parser.add_argument("--test_file", type=Path)
    parser.add_argument("--keep_top", default="0", help="Comma-separated --prune_keep_top values to try.")
    parser.add_argument("--extra_texts", type=Path, nargs="+", default=[],
                        help="Raw text files (.txt or .gz, one sentence per line) whose pieces are kept too, as "
                             "run_ner_compress.py --prune_extra_texts does.")
    parser.add_argument("--unseen", default=DEFAULT_UNSEEN,
                        help=f"Comma-separated modes for the dropped pieces, of {', '.join(UNSEEN_MODES)} "
                             "(export.vocab_pruning.prune_vocabulary's unseen).")
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--output", type=Path, help="Also write the Markdown table here.")
    args = parser.parse_args(argv)
    try:
        args.keep_top = [int(value) for value in args.keep_top.split(",") if value.strip()]
    except ValueError:
        parser.error(f"--keep_top {args.keep_top!r}: expected comma-separated whole numbers")
    if not args.keep_top or min(args.keep_top) < 0:
        parser.error(f"--keep_top {args.keep_top}: give one or more values of 0 or more")
    args.unseen = [value.strip() for value in args.unseen.split(",") if value.strip()]
    if not args.unseen or set(args.unseen) - set(UNSEEN_MODES):
        parser.error(f"--unseen {','.join(args.unseen)!r}: give one or more of {', '.join(UNSEEN_MODES)}")
    for flag in ("model_dir", "train_file", "validation_file", "test_file"):
        path = getattr(args, flag)
        if path is not None and not path.exists():
            parser.error(f"--{flag} {path}: no such file or folder")
    for path in args.extra_texts:
        if not path.is_file():
            parser.error(f"--extra_texts {path}: no such file")
    return args


def prune_curve(model, tokenizer, train: list[dict], splits: dict[str, list[dict]], keep_top: list[int],
                max_seq_length: int = 256, extra_texts: list[str] = (), unseen: list[str] = (DEFAULT_UNSEEN,)
                ) -> list[dict]:
    """One dict per ``keep_top`` value × ``unseen`` mode (and one for the unpruned model first): rows, F1 and
    re-split words per split."""
    from export.evaluate_variants import evaluate_variant, torch_backend
    from export.vocab_pruning import corpus_vocabulary, prune_vocabulary, retokenized_rate

    def scores(candidate, candidate_tokenizer) -> dict:
        backend, tokens = torch_backend(candidate, candidate_tokenizer)
        return {name: evaluate_variant(backend, tokens, records, max_seq_length=max_seq_length)["test_f1"]
                for name, records in splits.items()}

    base = scores(model, tokenizer)
    lines = [{"keep_top": None, "rows": model.get_input_embeddings().num_embeddings,
              **{f"{name}_f1": f1 for name, f1 in base.items()}}]
    sentences = [record["tokens"] for record in train]
    for top in keep_top:
        keep = corpus_vocabulary(tokenizer, sentences, text_files=[str(path) for path in extra_texts], keep_top=top)
        for mode in unseen:
            pruned, pruned_tokenizer = prune_vocabulary(copy.deepcopy(model), tokenizer, keep, unseen=mode)
            line = {"keep_top": top, "unseen": mode, "rows": pruned.get_input_embeddings().num_embeddings}
            for name, f1 in scores(pruned, pruned_tokenizer).items():
                words = [record["tokens"] for record in splits[name]]
                resplit = 0.0 if mode == "nearest" else retokenized_rate(tokenizer, pruned_tokenizer, words)
                line.update({f"{name}_f1": f1, f"{name}_change": 100 * (f1 - base[name]), f"{name}_resplit": resplit})
            logger.info("keep_top %d, unseen %s: %s", top, mode, line)
            lines.append(line)
    return lines


def format_table(lines: list[dict], split_names: list[str]) -> str:
    header = ["keep_top", "unseen", "word-table rows"]
    for name in split_names:
        header += [f"{name} F1", f"{name} change (points)", f"{name} words re-split"]
    out = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for line in lines:
        cells = ["unpruned" if line["keep_top"] is None else str(line["keep_top"]), line.get("unseen", ""),
                 str(line["rows"])]
        for name in split_names:
            cells.append(f"{line[f'{name}_f1']:.4f}")
            if line["keep_top"] is None:
                cells += ["", ""]
            else:
                cells += [f"{line[f'{name}_change']:+.2f}", f"{line[f'{name}_resplit']:.2%}"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> str:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args = parse_args(argv)
    from transformers import AutoTokenizer

    from export.onnx_export import load_token_classifier
    from trainers.ner_data import read_ner_file

    model = load_token_classifier(str(args.model_dir))
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    splits = {"validation": read_ner_file(str(args.validation_file))}
    if args.test_file:
        splits["test"] = read_ner_file(str(args.test_file))
    lines = prune_curve(model, tokenizer, read_ner_file(str(args.train_file)), splits, args.keep_top,
                        args.max_seq_length, args.extra_texts, args.unseen)
    corpus = " and ".join([args.train_file.name, *(path.name for path in args.extra_texts)])
    report = "\n".join([
        f"# Vocabulary pruning cost: {args.model_dir}", "",
        f"Kept: the pieces of {corpus}, every single character, the special tokens and the "
        "keep_top most frequent pieces of the pretrained vocabulary. Change: pruned minus unpruned F1. Unseen: "
        "what a dropped piece becomes (resplit: the tokenizer splits its words into kept pieces; nearest: the "
        "tokenizer is kept, the piece uses its most similar kept row).", "",
        format_table(lines, list(splits)), "",
    ])
    return emit(report, args.output)


if __name__ == "__main__":
    main()
