"""The comparison's recipe: one ``Row`` per run of run_ner_compress.py, and the command line each row runs.

``ROWS`` is the table to edit; ``plan(args)`` turns compare.py's arguments into each chosen row's command.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One line of the comparison: a run of run_ner_compress.py with these flags."""

    name: str
    flags: str  # run_ner_compress.py flags that define the method (training flags come from the command line)
    distil: bool  # learn from the source model with DISTILLATION_FLAGS
    description: str
    source: str = "teacher"  # folder under --output_dir to start from (and to learn from when distil)
    transfer: bool = False  # also distil on --transfer_file (the row runs only when one is given)


# The vocabulary-pruned copy of the teacher: its word table keeps only the wordpieces of the training split (plus
# every single character), so a factorized table of the same E costs about half. Made by prepare_pruned_teacher.
PRUNED = "teacher_vocab"
# Heavily changed models (shared or low-rank layers from a mean or SVD start) also match the teacher's hidden
# states layer by layer, and take a higher learning rate.
COMBO = "--hidden_loss_weight 1.0 --learning_rate 2e-4"

# The recipe. Change a row here, or for one comparison with --row_args ROW="--flag value" (same flags replace these).
ROWS = (
    Row("teacher", "--model_type teacher", False, "BERT fine-tuned on the NER data (baseline)"),
    Row("factorized", "--model_type factorized --embedding_size 128", False, "factorized embeddings, E=128"),
    Row("shared_attn", "--model_type shared_attn", False, "one self-attention block for all layers"),
    Row("shared_ffn", "--model_type shared_ffn", False, "one whole layer (attention + FFN) for all layers"),
    Row("low_rank", "--model_type low_rank --rank 64", False, "encoder dense layers as rank-64 SVD pairs"),
    Row("factorized_kd", "--model_type factorized --embedding_size 128", True, "factorized embeddings, E=128"),
    Row("shared_attn_kd", "--model_type shared_attn", True, "one self-attention block for all layers"),
    Row("shared_ffn_kd", "--model_type shared_ffn", True, "one whole layer (attention + FFN) for all layers"),
    Row("low_rank_kd", "--model_type low_rank --rank 64", True, "encoder dense layers as rank-64 SVD pairs"),
    Row("student", "--model_type student --student_num_layers 3", True, "3-layer student from teacher layers"),
    Row("teacher_pruned", "--model_type teacher --num_train_epochs 0", False,
        "the teacher with its vocabulary pruned to the training split (evaluated, not trained)", source=PRUNED),
    Row("best", f"--model_type shared_ffn --embedding_size 128 {COMBO}", True,
        "pruned vocabulary, E=128, one shared layer, KD + hidden MSE", source=PRUNED),
    Row("best_low_rank", f"--model_type low_rank --rank 48 --embedding_size 128 {COMBO}", True,
        "pruned vocabulary, E=128, rank-48 layers, KD + hidden MSE", source=PRUNED),
    Row("best_full_vocab", f"--model_type shared_ffn --embedding_size 64 {COMBO}", True,
        "full vocabulary, E=64, one shared layer, KD + hidden MSE"),
    Row("best10_shared", f"--model_type shared_ffn --rank 96 --embedding_size 64 {COMBO}", True,
        "pruned vocabulary, E=64, one shared rank-96 layer, KD + hidden MSE", source=PRUNED),
    Row("best10_low_rank", f"--model_type low_rank --rank 16 --embedding_size 64 {COMBO}", True,
        "pruned vocabulary, E=64, rank-16 layers, KD + hidden MSE", source=PRUNED),
    # Sized so that its int8 ONNX file is 20× smaller on disk than the fp32 teacher (MiniLM: 4.4 MB, 90.3 MB).
    Row("best_int8_20x", f"--model_type low_rank --rank 38 --embedding_size 128 {COMBO}", True,
        "pruned vocabulary, E=128, rank-38 layers, KD + hidden MSE", source=PRUNED),
    # Issue 15: layer groups and relaxed sharing (sizes counted as benchmarks/param_count.py does, MiniLM teacher
    # 22.57M). best10_shared_g: 2.06M (10.9x) at the 16,000-piece pruned vocabulary, 2.26M (10.0x) at 22,088.
    Row("best10_shared_g", f"--model_type shared_ffn --num_shared_groups 2 --rank 96 --embedding_size 32 {COMBO}",
        True, "pruned vocabulary, E=32, two shared rank-96 layers (3 layers each), KD + hidden MSE", source=PRUNED),
    # best_shared_relaxed: 4.31M, 5.23x (plain shared_ffn at E=64: 3.95M, 5.71x).
    Row("best_shared_relaxed", f"--model_type shared_ffn --share_delta_rank 8 --embedding_size 64 {COMBO}", True,
        "full vocabulary, E=64, one shared layer + per-layer rank-8 corrections (zero start), KD + hidden MSE"),
    # The sharing recipe measured on CPU (results/cpu_sharing): E=64, layer:1 start, KD without the hidden MSE.
    Row("shared_e64_kd", "--model_type shared_ffn --embedding_size 64 --learning_rate 2e-4", True,
        "full vocabulary, E=64, one shared layer, KD"),
    # Distillation on unlabelled text (issue 14): the rows above plus --transfer_file, on the same labelled epochs.
    Row("shared_e64_kd_tr", "--model_type shared_ffn --embedding_size 64 --learning_rate 2e-4", True,
        "shared_e64_kd + transfer set", transfer=True),
    Row("best_low_rank_tr", f"--model_type low_rank --rank 48 --embedding_size 128 {COMBO}", True,
        "best_low_rank + transfer set", source=PRUNED, transfer=True),
    Row("best10_low_rank_tr", f"--model_type low_rank --rank 16 --embedding_size 64 {COMBO}", True,
        "best10_low_rank + transfer set", source=PRUNED, transfer=True),
    Row("best_shared_tr", f"--model_type shared_ffn --embedding_size 64 {COMBO}", True,
        "full vocabulary, E=64, one shared layer, KD + hidden MSE + transfer set", transfer=True),
    Row("best10_shared_g_tr", f"--model_type shared_ffn --num_shared_groups 2 --rank 96 --embedding_size 32 {COMBO}",
        True, "best10_shared_g + transfer set", source=PRUNED, transfer=True),
    # The chosen 5x row with the transfer set, and the 10x row with twice the transfer text per step (the knob that
    # ranked first on the CPU's 2,000-sentence protocol, results/cpu_transfer/knobs).
    Row("best_shared_relaxed_tr", f"--model_type shared_ffn --share_delta_rank 8 --embedding_size 64 {COMBO}", True,
        "best_shared_relaxed + transfer set", transfer=True),
    Row("best10_shared_g_tr2", f"--model_type shared_ffn --num_shared_groups 2 --rank 96 --embedding_size 32 {COMBO} "
        "--transfer_ratio 2", True, "best10_shared_g + transfer set, 2 transfer sentences per labelled one",
        source=PRUNED, transfer=True),
    # best10_shared_g's student from the full teacher, its own word table pruned to the training split's pieces
    # (16,000 rows, 2.06M, also with a transfer file: its pieces would cost the 10x ratio) by --prune_student_vocab ("nearest": the tokenizer, so the teacher it distils
    # from and the transfer set, stay the full teacher's, and no word is re-split).
    Row("best10_shared_nv", f"--model_type shared_ffn --num_shared_groups 2 --rank 96 --embedding_size 32 {COMBO} "
        "--prune_student_vocab", True, "full teacher, student table pruned (nearest), E=32, two shared rank-96 "
        "layers (3 layers each), KD + hidden MSE"),
    Row("best10_shared_nv_tr", f"--model_type shared_ffn --num_shared_groups 2 --rank 96 --embedding_size 32 {COMBO} "
        "--prune_student_vocab", True, "best10_shared_nv + transfer set", transfer=True),
    Row("best10_shared_nv_tr2", f"--model_type shared_ffn --num_shared_groups 2 --rank 96 --embedding_size 32 "
        f"{COMBO} --prune_student_vocab --transfer_ratio 2", True,
        "best10_shared_nv + transfer set, 2 transfer sentences per labelled one", transfer=True),
)
# The 10x student's learning rate, chosen on validation on the CPU's 800-step protocol (results/cpu_transfer/lr_10x.md:
# 2e-4 0.7780, 5e-4 0.8203, 1e-3 0.8384, 2e-3 0.8335, 3e-3 diverged), and with it the same student with its position
# table factorized at E=16 (free at the teacher: validation 0.8721 -> 0.8735) and the 181,888 parameters saved spent
# on rank 120 instead of 96 (2.21M, 10.2x).
COMBO10 = "--hidden_loss_weight 1.0 --learning_rate 1e-3"
NV10 = "--model_type shared_ffn --num_shared_groups 2 --embedding_size 32 --prune_student_vocab"
POS10 = f"{NV10} --rank 120 --position_embedding_size 16 {COMBO10}"  # best10_shared_pos_hlr and its variants
ROWS += (
    Row("best10_shared_nv_hlr", f"{NV10} --rank 96 {COMBO10}", True, "best10_shared_nv at lr 1e-3"),
    Row("best10_shared_pos_hlr", POS10, True,
        "full teacher, student table pruned (nearest), E=32, positions factorized at 16, two shared rank-120 layers "
        "(3 layers each), KD + hidden MSE, lr 1e-3"),
    Row("best10_shared_nv_hlr_tr2", f"{NV10} --rank 96 {COMBO10} --transfer_ratio 2", True,
        "best10_shared_nv_hlr + transfer set, 2 transfer sentences per labelled one", transfer=True),
    Row("best10_shared_pos_hlr_tr2", f"{POS10} --transfer_ratio 2", True,
        "best10_shared_pos_hlr + transfer set, 2 transfer sentences per labelled one", transfer=True),
    # The same student on the CPU: the transfer set at ratio 1, and against it, without transfer text, a labelled
    # schedule of about the same wall time (7 epochs against 4 + 4 epochs' worth of cached-target transfer batches).
    Row("best10_shared_pos_hlr_tr", f"{POS10} --transfer_ratio 1", True,
        "best10_shared_pos_hlr + transfer set, 1 transfer sentence per labelled one", transfer=True),
    Row("best10_shared_pos_hlr_7ep", f"{POS10} --num_train_epochs 7", True,
        "best10_shared_pos_hlr trained 7 labelled epochs instead of 4"),
)
ROW_NAMES = tuple(row.name for row in ROWS)
DISTILLATION_FLAGS = "--temperature 2.0 --alpha 0.5"


def merge_flags(*groups: list[str]) -> list[str]:
    """Concatenate flag lists; a flag given again replaces the earlier one and its values, in the earlier place."""
    merged: dict[str, list[str]] = {}
    for tokens in groups:
        flag = None
        for token in tokens:
            if token.startswith("--"):
                flag, _, value = token.partition("=")
                merged[flag] = [value] if value else []
            elif flag is None:
                raise ValueError(f"{token!r} is not after a --flag in {tokens}")
            else:
                merged[flag].append(token)
    return [item for flag, values in merged.items() for item in (flag, *values)]


def row_flags(row: Row, args: argparse.Namespace) -> list[str]:
    """The method's flags for this comparison: the table's (or --best_args), then --row_args."""
    flags = shlex.split(args.best_args) if row.name == "best" and args.best_args else shlex.split(row.flags)
    return merge_flags(flags, args.row_args.get(row.name, []))


def row_command(row: Row, args: argparse.Namespace) -> list[str]:
    """The full run_ner_compress.py argument list of one row."""
    output_dir = Path(args.output_dir)
    source_dir = str(output_dir / row.source)
    data = []
    for flag in ("dataset_name", "dataset_config_name", "train_file", "validation_file", "test_file",
                 "max_seq_length", "max_train_samples", "max_eval_samples", "max_predict_samples"):
        if getattr(args, flag) is not None:
            data += [f"--{flag}", str(getattr(args, flag))]
    if args.quickstart:
        data.append("--quickstart")
    if row.name == "teacher":
        source = ["--model_name_or_path", args.model_name_or_path] if args.model_name_or_path else []
        schedule = [args.teacher_epochs, args.teacher_learning_rate, args.teacher_batch_size]
    else:
        source = ["--model_name_or_path", source_dir]
        schedule = [args.epochs, args.learning_rate, args.batch_size]
        if row.transfer:  # batch_size labelled + ratio × batch_size transfer sentences: the baseline's steps per epoch
            schedule[2] = round(args.batch_size * (1 + transfer_ratio(row_flags(row, args))))
    training = [
        "--num_train_epochs", str(schedule[0]), "--learning_rate", str(schedule[1]),
        "--per_device_train_batch_size", str(schedule[2]), "--per_device_eval_batch_size", str(args.eval_batch_size),
        "--eval_strategy", args.eval_strategy, "--save_strategy", args.save_strategy, "--save_total_limit", "1",
        "--seed", str(args.seed), "--report_to", "none",
    ]
    distillation = ["--teacher_name_or_path", source_dir, *shlex.split(DISTILLATION_FLAGS)] if row.distil else []
    transfer = transfer_flags(args) if row.transfer else []
    return merge_flags(
        source, data, training, transfer, row_flags(row, args), distillation, shlex.split(args.extra),
        ["--output_dir", str(output_dir / row.name)],
    )


def transfer_ratio(flags: list[str]) -> float:
    """The row's --transfer_ratio (run_ner_compress.py's default when the row sets none)."""
    from trainers.transfer import TransferArguments

    value = merge_flags(["--transfer_ratio", str(TransferArguments.transfer_ratio)], flags)
    return float(value[value.index("--transfer_ratio") + 1])


def transfer_flags(args: argparse.Namespace) -> list[str]:
    """The --transfer_* flags shared by run_ner_compress.py and ``python -m trainers.cache_transfer``."""
    flags = ["--transfer_file", *args.transfer_file] if args.transfer_file else []
    for flag in ("max_transfer_samples", "transfer_cache_dir"):
        if getattr(args, flag) is not None:
            flags += [f"--{flag}", str(getattr(args, flag))]
    return flags


def plan(args: argparse.Namespace) -> list[tuple[Row, list[str]]]:
    """Each row to run with its command, the teacher first."""
    rows = [row for row in ROWS if row.name in args.rows]
    return [(row, row_command(row, args)) for row in rows]

