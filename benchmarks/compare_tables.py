"""The comparison's tables: one row per ``<output_dir>/<row>/results.json``, written as RESULTS.md (with the rows
chosen on validation F1, and the deployment variants when some row made any), results.csv and variants.csv."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from benchmarks.compare_plot import plot
from benchmarks.compare_rows import ROW_NAMES
from export.evaluate_variants import weights_size_bytes
from trainers.results import RunResults

logger = logging.getLogger("compare")

COLUMNS = (
    ("method", "method"),
    ("unique_params_m", "unique params (M)"),
    ("compression_ratio", "compression"),
    ("validation_f1", "validation F1"),
    ("test_f1", "test F1"),
    ("f1_retention", "F1 retention"),
    ("test_runtime_s", "test runtime (s)"),
    ("test_samples_per_second", "throughput (samples/s)"),
    ("settings", "settings"),
)


def results_files(output_dir: str | Path) -> dict[str, Path]:
    """Each row folder's results.json, in table order, then any other folder's by name."""
    found = {path.parent.name: path for path in Path(output_dir).glob("*/results.json")}
    names = [name for name in ROW_NAMES if name in found] + sorted(set(found) - set(ROW_NAMES))
    return {name: found[name] for name in names}


def collect_rows(output_dir: str | Path) -> list[dict]:
    """One dict per row folder with a results.json (table order, then any other folder), ready for the tables."""
    found = results_files(output_dir)
    names = list(found)
    results = {name: RunResults.load(found[name]).to_dict() for name in names}  # any version, in today's layout
    teacher = results.get("teacher", {})
    teacher_params, teacher_f1 = teacher.get("num_parameters"), teacher.get("test_f1")
    if teacher:
        teacher_time = found["teacher"].stat().st_mtime
        stale = [name for name in names if name != "teacher" and found[name].stat().st_mtime < teacher_time]
        if stale:
            logger.warning("%s finished before the current teacher: they come from an older one", stale)
    rows = []
    for name in names:
        r = results[name]
        params = r.get("num_parameters")
        ratio = teacher_params / params if teacher_params and params else r.get("compression_ratio")
        retention = r["test_f1"] / teacher_f1 if teacher_f1 and r.get("test_f1") is not None else None
        rows.append({
            "method": name,
            "unique_params_m": params / 1e6 if params else None,
            "compression_ratio": ratio,
            "validation_f1": r.get("validation_f1"),
            "test_f1": r.get("test_f1"),
            "f1_retention": retention,
            "test_runtime_s": r.get("test_runtime_s"),
            "test_samples_per_second": r.get("test_samples_per_second"),
            "settings": describe_settings(r),
            "num_parameters": params,
            "distilled": bool(r.get("distilled")),
        })
    return rows


VARIANT_LABELS = {
    "fp32": "PyTorch fp32",
    "vocab_pruned": "pruned vocabulary, PyTorch fp32",
    "onnx": "ONNX fp32",
    "onnx_int8": "ONNX int8",
    "torch_int8": "PyTorch int8",
}
VARIANT_COLUMNS = (
    ("method", "method"),
    ("variant", "variant"),
    ("size_mb", "size on disk (MB)"),
    ("disk_ratio", "smaller than the fp32 teacher"),
    ("test_f1", "test F1"),
    ("f1_change", "F1 change (points)"),
    ("samples_per_second", "CPU samples/s"),
    ("speed_ratio", "speed vs own fp32"),
)


def collect_variants(output_dir: str | Path) -> list[dict]:
    """One dict per deployment variant (``--prune_vocab``, ``--export_onnx``, ``--quantize``) of every row that
    made some, in table order. The F1 change and the speed ratio are against the row's own PyTorch fp32 model,
    measured in the same run; the size ratio is against the teacher's fp32 weights on disk."""

    output_dir = Path(output_dir)
    found = {name: RunResults.load(path).to_dict() for name, path in results_files(output_dir).items()}
    teacher_bytes = (found.get("teacher") or {}).get("fp32_size_bytes")
    if teacher_bytes is None and (output_dir / "teacher").is_dir():
        teacher_bytes = weights_size_bytes(str(output_dir / "teacher")) or None
    rows = []
    for name, results in found.items():
        variants = results.get("variants") or {}
        own = variants.get("fp32", {})
        pruned = "vocab_pruned" in variants
        ordered = sorted(variants, key=lambda key: list(VARIANT_LABELS).index(key) if key in VARIANT_LABELS else 99)
        for key in ordered:  # the order they are made in (results.json sorts its keys)
            entry, label = variants[key], VARIANT_LABELS.get(key, key)
            if pruned and key in ("onnx", "onnx_int8", "torch_int8"):
                label += " (pruned vocabulary)"
            f1, speed = entry.get("test_f1"), entry.get("test_samples_per_second")
            own_f1, own_speed = own.get("test_f1"), own.get("test_samples_per_second")
            rows.append({
                "method": name,
                "variant": label,
                "size_mb": entry["size_bytes"] / 1e6,
                "disk_ratio": teacher_bytes / entry["size_bytes"] if teacher_bytes else None,
                "test_f1": f1,
                "f1_change": 100 * (f1 - own_f1) if f1 is not None and own_f1 is not None else None,
                "samples_per_second": speed,
                "speed_ratio": speed / own_speed if speed and own_speed else None,
                "eval_batching": entry.get("eval_batching"),  # absent from files written before it was recorded
            })
    return rows


def describe_settings(results: dict) -> str:
    """The method and schedule of one run, in words short enough for a table cell."""
    parts = [results.get("model_class", "?")]
    compression = dict(results.get("compression") or {})
    compression.pop("methods", None)
    parts += [f"{key}={value}" for key, value in compression.items() if value is not None]
    if results.get("distilled"):
        parts.append(f"KD T={results.get('temperature')} α={results.get('alpha')}")
        if results.get("hidden_loss_weight"):
            parts.append(f"hidden MSE ×{results['hidden_loss_weight']}")
    training = (results.get("arguments") or {}).get("training") or {}
    if training:
        epochs = f"{training.get('num_train_epochs'):g} ep"
        if results.get("stopped_at_time_budget"):
            epochs = f"{results.get('epochs_trained'):g} of {epochs} (time budget)"
        parts.append(f"{epochs}, lr {training.get('learning_rate'):g}, bs {training.get('per_device_train_batch_size')}")
    if results.get("transfer_files"):
        parts.append(f"transfer {results.get('transfer_sentences')} sent. (ratio {results.get('transfer_ratio'):g}, "
                     f"KL ×{results.get('transfer_kl_weight'):g}, ≥{results.get('transfer_min_entities', 0)} ent.)")
    if results.get("labelled_sentences_seen") is not None:
        parts.append(f"seen {results['labelled_sentences_seen']} labelled + "
                     f"{results.get('transfer_sentences_seen') or 0} transfer")
    if results.get("train_runtime_s") is not None:
        parts.append(f"train {results['train_runtime_s']:.0f} s")
    return ", ".join(parts)


def _cell(key: str, value) -> str:
    if value is None:
        return "n/a"
    if key == "unique_params_m":
        return f"{value:.2f}" if value >= 1 else f"{value:.3g}"
    if key == "compression_ratio":
        return f"{value:.2f}×"
    if key == "f1_retention":
        return f"{value:.1%}"
    if key in ("validation_f1", "test_f1"):
        return f"{value:.4f}"
    if key in ("test_runtime_s", "test_samples_per_second", "samples_per_second", "size_mb"):
        return f"{value:.1f}" if value >= 10 else f"{value:.3g}"
    if key in ("disk_ratio", "speed_ratio"):
        return f"{value:.2f}×"
    if key == "f1_change":
        return f"{value:+.2f}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: list[dict], columns: tuple, text_keys: tuple[str, ...]) -> list[str]:
    """The lines of one Markdown table; the ``text_keys`` columns are left-aligned, the numbers right-aligned."""
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "|".join("---" if key in text_keys else "---:" for key, _ in columns) + "|"]
    return lines + ["| " + " | ".join(_cell(key, row[key]) for key, _ in columns) + " |" for row in rows]


def write_markdown(rows: list[dict], path: str | Path, variants: list[dict] = ()) -> None:
    lines = [
        "# Compression comparison",
        "",
        "Unique parameters count shared tensors once. Compression and F1 retention are against the `teacher` row "
        "(test F1 / teacher test F1). Runtime and throughput are the test-set prediction of each run, on the "
        "machine that trained it.",
        "",
        *markdown_table(rows, COLUMNS, ("method", "settings")),
    ]
    lines += ["", "Chosen on validation F1 (test F1 read once, after the choice):", ""]
    for threshold in (5, 10):
        chosen = best_on_validation(rows, threshold)
        lines.append(
            f"- at {threshold}× or more: **{chosen['method']}**, {_cell('compression_ratio', chosen['compression_ratio'])}"
            f", validation F1 {_cell('validation_f1', chosen['validation_f1'])}, test F1 "
            f"{_cell('test_f1', chosen['test_f1'])}, retention {_cell('f1_retention', chosen['f1_retention'])}"
            if chosen else f"- at {threshold}× or more: no row"
        )
    if variants:
        older = "model calls only, batches of 32"
        newer = "as run_ner_predict runs them by default: its batches of 32 windows, tokenizing and aggregation timed"
        recorded = {bool(v.get("eval_batching")) for v in variants}  # files written before it have none
        how = (newer if recorded == {True} else older if recorded == {False}
               else f"{newer}; rows whose results.json has no `eval_batching`: {older}")
        lines += [
            "",
            "## Deployment variants",
            "",
            "Made after training by `--prune_vocab`, `--export_onnx` and `--quantize int8`, and measured on the test "
            f"split in the same run as the row's own PyTorch fp32 model, on the CPU ({how}). The F1 change and "
            "speed are against that model; the size, weight files only, against the "
            "teacher's fp32 weights. For speed against the teacher in one run: "
            "`python benchmarks/speed.py --models_dir <this folder> --variants`.",
            "",
            *markdown_table(variants, VARIANT_COLUMNS, ("method", "variant")),
        ]
    Path(path).write_text("\n".join(lines) + "\n")


def best_on_validation(rows: list[dict], min_compression: float) -> dict | None:
    """The row with the highest validation F1 among those at least ``min_compression`` times smaller."""
    eligible = [row for row in rows if row["method"] != "teacher" and row["validation_f1"] is not None
                and (row["compression_ratio"] or 0) >= min_compression]
    return max(eligible, key=lambda row: row["validation_f1"], default=None)


def write_csv(rows: list[dict], path: str | Path, keys: list[str] | None = None) -> None:
    keys = keys or [key for key, _ in COLUMNS] + ["num_parameters", "distilled"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key) for key in keys})


def write_tables(output_dir: str | Path) -> list[dict]:
    """RESULTS.md, results.csv, results.png (and variants.csv) in ``output_dir``, from its row folders."""
    output_dir = Path(output_dir)
    rows = collect_rows(output_dir)
    if not rows:
        raise FileNotFoundError(f"{output_dir}: no <row>/results.json to tabulate")
    variants = collect_variants(output_dir)
    write_markdown(rows, output_dir / "RESULTS.md", variants)
    write_csv(rows, output_dir / "results.csv")
    if variants:
        write_csv(variants, output_dir / "variants.csv", [key for key, _ in VARIANT_COLUMNS])
    plot(rows, output_dir / "results.png")
    return rows

