"""TextPruner's smallest model of a saved teacher: VocabularyPruner, then TransformerPruner down to ``--heads``
attention heads and ``--ffn_size`` FFN neurons a layer. Run inside the textpruner environment (make_venvs.sh).

Imports nothing of the project. Follows TextPruner's documented use: ``VocabularyPruner(...).prune(dataiter=texts)``
as peer_textpruner.py does, then ``TransformerPruner(model, TransformerPruningConfig(target_ffn_size=F,
target_num_of_heads=H, pruning_method="masks"), general_config).prune(head_mask=..., ffn_mask=...)``. Masks, not
the iterative importance search: the question here is the size TextPruner can reach, and a layer's parameter count
does not depend on which heads and neurons it keeps. TextPruner prunes heads and FFN neurons, never the hidden size
(its authors say so in airaria/TextPruner issue 4), so the word table keeps the teacher's width.

    python peer_textpruner_structured.py --teacher T --text train.txt --heads 1 --ffn_size 1 --output_dir D \\
        --result r.json
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


def unique_parameters(model) -> int:
    return sum({p.data_ptr(): p.numel() for p in model.parameters()}.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--text", action="append", required=True)
    parser.add_argument("--heads", type=int, default=1, help="Attention heads kept in every layer.")
    parser.add_argument("--ffn_size", type=int, default=1, help="FFN neurons kept in every layer.")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()

    import textpruner
    import torch
    import transformers
    from textpruner import (GeneralConfig, TransformerPruner, TransformerPruningConfig, VocabularyPruner,
                            VocabularyPruningConfig)
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = AutoModelForTokenClassification.from_pretrained(args.teacher).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    before = unique_parameters(model)
    texts = [line for path in args.text for line in read_lines(path)]
    started = time.perf_counter()
    general = GeneralConfig(use_device="cpu", output_dir=args.output_dir)
    VocabularyPruner(model, tokenizer, vocabulary_pruning_config=VocabularyPruningConfig(min_count=1),
                     general_config=general).prune(dataiter=texts, save_model=False)
    after_vocabulary = unique_parameters(model)
    config = model.config
    head_mask = torch.zeros(config.num_hidden_layers, config.num_attention_heads)
    head_mask[:, :args.heads] = 1
    ffn_mask = torch.zeros(config.num_hidden_layers, config.intermediate_size)
    ffn_mask[:, :args.ffn_size] = 1
    pruner = TransformerPruner(model, TransformerPruningConfig(target_ffn_size=args.ffn_size,
                                                               target_num_of_heads=args.heads,
                                                               pruning_method="masks"), general_config=general)
    save_dir = pruner.prune(head_mask=head_mask, ffn_mask=ffn_mask, save_model=True)
    seconds = time.perf_counter() - started
    with torch.no_grad():  # the pruned model still runs (ids within its pruned table)
        logits = model(input_ids=torch.arange(1, 8).unsqueeze(0)).logits
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump({"model_dir": os.path.abspath(save_dir), "unique_params_before": before,
                   "unique_params_after_vocabulary": after_vocabulary, "unique_params": unique_parameters(model),
                   "word_rows": model.get_input_embeddings().weight.shape[0],
                   "hidden_size": model.config.hidden_size, "heads_per_layer": args.heads,
                   "ffn_size": model.config.intermediate_size, "runs": list(logits.shape),
                   "corpus_lines": len(texts), "prune_seconds": round(seconds, 1),
                   "versions": {"textpruner": textpruner.__version__, "transformers": transformers.__version__,
                                "torch": torch.__version__}}, f)


if __name__ == "__main__":
    main()
