#!/usr/bin/env python
"""Predict named entities in a file with a model made by run_ner_compress.py: a saved folder, a Hub id or an ONNX file.

    run_ner_predict --model outputs/shared_ffn --input news.txt --output news.jsonl       # raw text -> JSON lines
    run_ner_predict --model outputs/shared_ffn/onnx/model_int8.onnx --input test.txt      # CoNLL -> CoNLL + P/R/F1
    cat news.txt | run_ner_predict --model outputs/shared_ffn/onnx/model_int8.onnx --input -

An .onnx model runs with ONNX Runtime, numpy and tokenizers only: neither torch nor transformers is imported
(``pip install ./serve`` installs this command without them). The input formats, the aggregation and the windows
for long lines are described in ``export/predict.py``.
"""

from __future__ import annotations

from export.predict import parse_predict_args, predict_file
from run_ner_cli import run_cli


def main(argv: list[str] | None = None):
    return predict_file(parse_predict_args(argv))


def cli() -> None:
    """Console entry point: known input errors become one line on stderr and exit status 2."""
    run_cli(main, "run_ner_predict")


if __name__ == "__main__":
    cli()
