"""Unique parameters and compression ratio of every model type, for two BERT shapes, as a Markdown table.

```bash
python benchmarks/param_count.py            # about a minute on 2 CPU cores
python benchmarks/param_count.py --energy_all   # also the rank-energy row at bert-base size (many SVDs, slow)
```

Every row is a model type of ``modeling.recipes`` with some overrides, and every count is of the real model:
``compress`` (``from_bert`` and ``build_student``) runs on the meta device, which builds the exact modules and
shapes without memory or arithmetic. Only the ``rank_energy`` row needs weights, because its
ranks come from the singular values; the teacher is then randomly initialized (no download). A random matrix has a
flat spectrum, so the energy rule picks far higher ranks than it would on a trained model: that row shows the
mechanics, not the size a trained teacher would give.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForTokenClassification

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

import modeling  # noqa: E402
from benchmarks.shapes import NUM_LABELS, SHAPES  # noqa: E402
from modeling import planner  # noqa: E402
from modeling.recipes import NAMED_RECIPES, compress  # noqa: E402

PLAN_TARGETS = (5, 10, 20)
TINY_SHAPE = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
# The rows --prune_student_vocab keeps of MiniLM's table on the CoNLL-2003 training split (results/cpu_full); the
# other shapes are planned without student-vocabulary pruning (their tokenizers are not on this machine).
PLAN_ROWS = {"minilm": 16000}

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
    e, ffn = embedding_size, "share_mode=attention_ffn"
    builds = {  # row -> (model type, overrides of its recipe, the settings in words)
        "teacher": ("teacher", {}, ""),
        "factorized": ("factorized", dict(embedding_size=e), f"E={e}"),
        "shared_attn": ("shared_attn", {}, "share_mode=attention"),
        "shared_ffn": ("shared_ffn", {}, ffn),
        "shared_ffn + factorized": ("shared_ffn", dict(embedding_size=e), f"{ffn}, E={e}"),
        "shared_ffn groups + factorized": ("shared_ffn", dict(num_shared_groups=groups, share_init="layer:0",
                                                               embedding_size=e), f"{ffn}, G={groups}, E={e}"),
        "shared_ffn relaxed + factorized": ("shared_ffn", dict(share_delta_rank=delta_rank, embedding_size=e),
                                            f"{ffn}, R={delta_rank}, E={e}"),
        "low_rank": ("low_rank", dict(rank=rank), f"rank={rank}"),
        "low_rank (energy)": ("low_rank", dict(rank_energy=rank_energy), f"rank_energy={rank_energy}"),
        "student": ("student", dict(student_num_layers=student_layers), f"{student_layers} layers"),
    }
    if rank_energy is None:
        del builds["low_rank (energy)"]
    with torch.device(device):
        torch.manual_seed(seed)
        teacher = BertForTokenClassification(config).eval()
        teacher_count = modeling.count_unique_parameters(teacher)
        rows = []
        for name, (model_type, overrides, settings) in builds.items():
            if name == "low_rank (energy)":
                model = _energy_model(teacher, rank_energy, seed)
                ranks = sorted(model.config.low_rank_ranks.values())
                settings += f" (ranks {ranks[0]}-{ranks[-1]})"
            else:
                model = compress(teacher, model_type, **overrides)
            count = modeling.count_unique_parameters(model)
            rows.append(dict(model=name, settings=settings, parameters=count, ratio=teacher_count / count))
    return rows


def _energy_model(teacher: BertForTokenClassification, rank_energy: float, seed: int):
    """The low-rank model whose ranks keep ``rank_energy`` of each layer's spectrum, built like ``teacher``."""
    if not next(teacher.parameters()).is_meta:
        return compress(teacher, "low_rank", rank_energy=rank_energy)
    with torch.device("cpu"):  # the ranks need real weights: the same random teacher, materialized
        torch.manual_seed(seed)
        weighted = BertForTokenClassification(teacher.config)
        ranks = modeling.resolve_ranks(weighted.bert, modeling.DEFAULT_LOW_RANK_TARGETS, energy=rank_energy)
        del weighted
    # built on the meta teacher for its config (nothing computed); only the ranks differ
    shaped = compress(teacher, "low_rank", rank=1)
    shaped.config.low_rank_ranks = ranks
    return type(shaped)(shaped.config)


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


def plan_rows(shapes: dict) -> list[dict]:
    """The budget planner's settings at each of PLAN_TARGETS for each shape (a refusal names the reachable ratio)."""
    rows = []
    for name, shape in shapes.items():
        config = BertConfig(num_labels=NUM_LABELS, **shape)
        for target in PLAN_TARGETS:
            try:
                plan = planner.plan(config, target_ratio=target, embedding_rows=PLAN_ROWS.get(name))
            except planner.BudgetError as err:
                rows.append(dict(shape=name, target=target, settings=f"refused: {err}", parameters=None, ratio=None))
                continue
            settings = (f"{plan.stage}: G={plan.num_shared_groups}, E={plan.embedding_size}, "
                        f"positions {plan.position_embedding_size}, rank {plan.rank or 'full'}, "
                        f"{'pruned to ' + format(plan.embedding_rows, ',') + ' rows' if plan.prune_student_vocab else 'full vocabulary'}, "
                        f"lr {plan.training.learning_rate:g}")
            rows.append(dict(shape=name, target=target, settings=settings, parameters=plan.num_parameters,
                             ratio=plan.ratio))
    return rows


def plan_table(rows: list[dict]) -> str:
    lines = ["| shape | --target_ratio | unique params (M) | ratio | planned settings |", "|---|---:|---:|---:|---|"]
    for row in rows:
        count = f"{row['parameters'] / 1e6:.2f}" if row["parameters"] else "—"
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] else "—"
        lines.append(f"| {row['shape']} | {row['target']} | {count} | {ratio} | {row['settings']} |")
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
        energy = 0.5 if args.energy_all or name != "bert-base" else None
        tables[name] = param_rows(shape, rank_energy=energy)
    print(markdown_table(tables))
    print("\nThe budget planner (modeling/planner.py), and the named recipes' sizes:\n")
    print(plan_table(plan_rows({**SHAPES, "tiny": TINY_SHAPE})))
    with torch.device("meta"):
        for name, recipe in NAMED_RECIPES.items():
            sizes = {k: v for k, v in recipe.compression.items() if k != "prune_student_vocab"}
            counts = []
            for shape_name, shape in SHAPES.items():
                teacher = BertForTokenClassification(BertConfig(num_labels=NUM_LABELS, **shape))
                model = compress(teacher, recipe.model_type, **sizes)
                counts.append(f"{shape_name} {modeling.count_unique_parameters(teacher) / modeling.count_unique_parameters(model):.2f}×")
            pruned = " (before --prune_student_vocab)" if recipe.compression.get("prune_student_vocab") else ""
            print(f"- --recipe {name}: {', '.join(counts)}{pruned}")
    print(f"\n{NUM_LABELS} labels; ratio = the teacher's unique parameters / the model's; the energy row's ranks "
          f"come from random weights. ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
