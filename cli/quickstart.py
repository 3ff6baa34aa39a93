"""What a quickstart run prints at its end: the figures side by side, and how to use the model on one's own text.

``run_ner_compress.py --quickstart`` calls ``print_quickstart_summary`` once the model and results.json are saved.

```python
>>> print_quickstart_summary("quickstart_out/shared_ffn", results)
```
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile

from runtime.predict import PredictArguments, predict_file
from trainers.results import read_teacher_results

from export.evaluate_variants import weights_size_bytes

# Synthetic, like the demo sample: one sentence with names the training split has, one with names it lacks
DEMO_LINES = ["Mara Velden joined Norvane Bank in Port Aldane last Monday .",
              "Officials in Kelmarsh said Odile Marchetti had left Pellucid Systems ."]


def weights_mb(folder: str) -> float | None:
    """Size on disk of the model weights in ``folder`` (tokenizer and card excluded), in MB."""
    if not folder or not os.path.isdir(folder):
        return None
    return weights_size_bytes(folder) / 1e6 or None


def _read_results(folder: str | None) -> dict:
    """A finished run's results.json as a dict; empty when there is none (a teacher from the Hub, say)."""
    results = read_teacher_results(folder) if folder else None
    return results.to_dict() if results else {}


def _figure(value, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else "-"


def summary_table(output_dir: str, results: dict) -> str:
    """Teacher and compressed model side by side (the teacher alone when ``results`` has none)."""
    teacher_dir = results.get("teacher_path")
    columns = [("teacher", teacher_dir, _read_results(teacher_dir))] if teacher_dir else []
    columns.append((results.get("model_type", "model"), output_dir, results))
    rows = [("", [name for name, _, _ in columns]),
            ("folder", [folder for _, folder, _ in columns]),
            ("weights on disk (MB)", [_figure(weights_mb(folder), ".1f") for _, folder, _ in columns]),
            ("parameters (M)", [_figure(r.get("num_parameters", 0) / 1e6, ".2f") for _, _, r in columns]),
            ("validation F1", [_figure(r.get("validation_f1"), ".4f") for _, _, r in columns]),
            ("test F1", [_figure(r.get("test_f1"), ".4f") for _, _, r in columns])]
    if teacher_dir:
        retention = results.get("f1_retention")
        teacher_size, size = weights_mb(teacher_dir), weights_mb(output_dir)
        rows += [("F1 retention", ["-", _figure(retention * 100 if retention else None, ".1f") + " %"]),
                 ("smaller by", ["-", _figure(teacher_size / size if teacher_size and size else None, ".1f") + "x"])]
    width = max(len(label) for label, _ in rows) + 2
    cell = max(len(str(v)) for _, values in rows for v in values) + 2
    return "\n".join(label.ljust(width) + "".join(str(v).ljust(cell) for v in values) for label, values in rows)


def print_quickstart_summary(output_dir: str, results: dict, out=None) -> None:
    out = out or sys.stdout
    print("\n=== quickstart results (demo sample: synthetic sentences, not CoNLL-2003) ===", file=out)
    print(summary_table(output_dir, results), file=out)
    command = f"run_ner_predict --model {shlex.quote(output_dir)} --input your_text.txt --output entities.jsonl"
    print("\nRun the model on your own text (one sentence or document per line; python run_ner_predict.py from a "
          "checkout):\n  " + command, file=out)
    with tempfile.TemporaryDirectory() as scratch:
        source, target = os.path.join(scratch, "demo.txt"), os.path.join(scratch, "entities.jsonl")
        with open(source, "w", encoding="utf-8") as f:
            f.write("\n".join(DEMO_LINES) + "\n")
        print("\nIts output on two demo lines (the second one's names are not in the training split):", file=out)
        with open(os.devnull, "w") as quiet:
            predict_file(PredictArguments(model=output_dir, input=source, output=target), log=quiet)
        with open(target, encoding="utf-8") as f:
            for line in f:
                print("  " + line.rstrip("\n"), file=out)
    out.flush()
