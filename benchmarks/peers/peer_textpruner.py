"""TextPruner's VocabularyPruner on a saved teacher, run inside the textpruner environment (make_venvs.sh).

Imports nothing of the project. Follows TextPruner's documented use: ``VocabularyPruner(model, tokenizer,
vocabulary_pruning_config, general_config).prune(dataiter=texts, save_model=True)``, with texts the lines of the
``--text`` files (raw sentences). TextPruner writes ``vocab.txt``, ``pytorch_model.bin`` and ``config.json`` and
asks the user to re-create the tokenizer from the new ``vocab.txt``; that is the one adapter here: the teacher's
tokenizer class, built on that file with the teacher's settings (lower-casing), saved beside it, so that
``run_ner_predict`` (which reads ``tokenizer.json``) can load the folder.

    python peer_textpruner.py --teacher T --text train.txt [--text more.txt.gz] --output_dir D --result r.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time


def read_lines(path: str) -> list[str]:
    with (gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")) as f:
        return [line.strip() for line in f if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--text", action="append", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()

    import textpruner
    import torch
    import transformers
    from textpruner import GeneralConfig, VocabularyPruner, VocabularyPruningConfig
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = AutoModelForTokenClassification.from_pretrained(args.teacher).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    rows_before = model.get_input_embeddings().weight.shape[0]
    texts = [line for path in args.text for line in read_lines(path)]
    started = time.perf_counter()
    pruner = VocabularyPruner(model, tokenizer,
                              vocabulary_pruning_config=VocabularyPruningConfig(min_count=1, prune_lm_head="auto"),
                              general_config=GeneralConfig(use_device="cpu", output_dir=args.output_dir))
    save_dir = pruner.prune(dataiter=texts, save_model=True)
    prune_seconds = time.perf_counter() - started
    # The adapter: TextPruner saved only vocab.txt; re-create the tokenizer on it, as its message asks
    rebuilt = type(tokenizer)(vocab_file=os.path.join(save_dir, "vocab.txt"),
                              do_lower_case=tokenizer.init_kwargs.get("do_lower_case", True))
    rebuilt.save_pretrained(save_dir)
    rows_after = model.get_input_embeddings().weight.shape[0]
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump({"model_dir": os.path.abspath(save_dir), "rows_before": rows_before, "rows_after": rows_after,
                   "corpus_lines": len(texts), "prune_seconds": round(prune_seconds, 1),
                   "versions": {"textpruner": textpruner.__version__, "transformers": transformers.__version__,
                                "torch": torch.__version__},
                   "note": "adapter: the tokenizer re-created from TextPruner's vocab.txt (it saves no "
                           "tokenizer.json); no character fallback: only pieces the corpus used are kept"}, f)


if __name__ == "__main__":
    main()
