"""Unique parameters and compression ratio of every model type, for two BERT shapes, as a Markdown table.

```bash
python benchmarks/param_count.py            # about a minute on 2 CPU cores
python benchmarks/param_count.py --energy_all   # also the rank-energy row at bert-base size (many SVDs, slow)
```

Every count is of the real model: ``from_bert`` and ``build_student`` run on the meta device, which builds the
exact modules and shapes without memory or arithmetic. Only the ``rank_energy`` row needs weights, because its
ranks come from the singular values; the teacher is then randomly initialized (no download). A random matrix has a
flat spectrum, so the energy rule picks far higher ranks than it would on a trained model: that row shows the
mechanics, not the size a trained teacher would give.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForTokenClassification

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

import modeling  # noqa: E402

SHAPES = {
    "bert-base-cased": dict(vocab_size=28996),  # BertConfig's defaults are bert-base: H 768, 12 layers, 12 heads
    "MiniLM-L6-H384": dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                           intermediate_size=1536),
}
NUM_LABELS = 9  # CoNLL-2003 in IOB2
ROW_NAMES = ("teacher", "factorized", "shared_attn", "shared_ffn", "shared_ffn + factorized",
             "shared_ffn groups + factorized", "shared_ffn relaxed + factorized", "low_rank", "low_rank (energy)",
             "student")


def param_rows(shape: dict, embedding_size: int = 128, rank: int = 64, rank_energy: float | None = 0.5,
               student_layers: int = 3, device: str = "meta", seed: int = 0, groups: int = 2,
               delta_rank: int = 8) -> list[dict]:
    """One row per model type (``ROW_NAMES``): unique parameters and compression ratio against the teacher.

    ``rank_energy=None`` leaves out the energy row. ``device="cpu"`` builds everything with real weights
    (slow at full size; the tests use it to check that the meta counts are the real ones).
    """
    config = BertConfig(num_labels=NUM_LABELS, **shape)
    compressed = modeling.CompressedBertForTokenClassification
    with torch.device(device):
        torch.manual_seed(seed)
        teacher = BertForTokenClassification(config).eval()
        builds = {
            "teacher": ("", lambda: teacher),
            "factorized": (f"E={embedding_size}", lambda: compressed.from_bert(teacher, embedding_size=embedding_size)),
            "shared_attn": ("share=attention", lambda: compressed.from_bert(teacher, share="attention")),
            "shared_ffn": ("share=attention_ffn", lambda: compressed.from_bert(teacher, share="attention_ffn")),
            "shared_ffn + factorized": (f"share=attention_ffn, E={embedding_size}", lambda: compressed.from_bert(
                teacher, share="attention_ffn", embedding_size=embedding_size)),
            "shared_ffn groups + factorized": (
                f"share=attention_ffn, G={groups}, E={embedding_size}", lambda: compressed.from_bert(
                    teacher, share="attention_ffn", num_shared_groups=groups, share_init="layer:0",
                    embedding_size=embedding_size)),
            "shared_ffn relaxed + factorized": (
                f"share=attention_ffn, R={delta_rank}, E={embedding_size}", lambda: compressed.from_bert(
                    teacher, share="attention_ffn", share_delta_rank=delta_rank, embedding_size=embedding_size)),
            "low_rank": (f"rank={rank}", lambda: compressed.from_bert(teacher, rank=rank)),
            "low_rank (energy)": (f"rank_energy={rank_energy}", lambda: _energy_model(teacher, rank_energy, seed)),
            "student": (f"{student_layers} layers", lambda: modeling.build_student(teacher, student_layers)),
        }
        if rank_energy is None:
            del builds["low_rank (energy)"]
        teacher_count = modeling.count_unique_parameters(teacher)
        rows = []
        for name, (settings, build) in builds.items():
            model = build()
            if name == "low_rank (energy)":
                ranks = sorted(model.config.low_rank_ranks.values())
                settings += f" (ranks {ranks[0]}-{ranks[-1]})"
            count = modeling.count_unique_parameters(model)
            rows.append(dict(model=name, settings=settings, parameters=count, ratio=teacher_count / count))
    return rows


def _energy_model(teacher: BertForTokenClassification, rank_energy: float, seed: int):
    """The low-rank model whose ranks keep ``rank_energy`` of each layer's spectrum, built like ``teacher``."""
    if not next(teacher.parameters()).is_meta:
        return modeling.LowRankBertForTokenClassification.from_bert(teacher, rank_energy=rank_energy)
    with torch.device("cpu"):  # the ranks need real weights: the same random teacher, materialized
        torch.manual_seed(seed)
        weighted = BertForTokenClassification(teacher.config)
        ranks = modeling.resolve_ranks(weighted.bert, modeling.DEFAULT_LOW_RANK_TARGETS, energy=rank_energy)
        del weighted
    # from_bert on the meta teacher gives the config (nothing computed); only the ranks differ
    config = copy.deepcopy(modeling.LowRankBertForTokenClassification.from_bert(teacher, rank=1).config)
    config.low_rank_ranks = ranks
    return modeling.LowRankBertForTokenClassification(config)


def markdown_table(tables: dict[str, list[dict]]) -> str:
    """One table: a row per model type, a (parameters, ratio) column pair per shape; "—" where a shape lacks it."""
    shapes = list(tables)
    header = "| model | " + " | ".join(f"{s} params (M) | {s} ratio" for s in shapes) + " | settings |"
    lines = [header, "|" + "---|" * (2 * len(shapes) + 2)]
    by_shape = {s: {row["model"]: row for row in rows} for s, rows in tables.items()}
    for name in [n for n in ROW_NAMES if any(n in rows for rows in by_shape.values())]:
        cells, settings = [], {}
        for s in shapes:
            row = by_shape[s].get(name)
            cells += [f"{row['parameters'] / 1e6:.2f}", f"{row['ratio']:.2f}×"] if row else ["—", "—"]
            if row:
                settings[s] = row["settings"]
        if len(set(settings.values())) > 1:  # e.g. energy ranks: say which shape each belongs to
            settings = {s: f"{s}: {text}" for s, text in settings.items()}
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'; '.join(dict.fromkeys(settings.values()))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--energy_all", action="store_true",
                        help="compute the rank-energy row for bert-base too (72 SVDs of up to 3072x768)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    torch.set_grad_enabled(False)
    start = time.perf_counter()
    tables = {}
    for name, shape in SHAPES.items():
        energy = 0.5 if args.energy_all or name != "bert-base-cased" else None
        tables[name] = param_rows(shape, rank_energy=energy)
    print(markdown_table(tables))
    print(f"\n{NUM_LABELS} labels; ratio = the teacher's unique parameters / the model's; the energy row's ranks "
          f"come from random weights. ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
