#!/usr/bin/env python
"""Predict named entities in a file with a model made by run_ner_compress.py: a saved folder, a Hub id or an ONNX file.

    run_ner_predict --model outputs/shared_ffn --input news.txt --output news.jsonl       # raw text -> JSON lines
    run_ner_predict --model outputs/shared_ffn/onnx/model_int8.onnx --input test.txt      # CoNLL -> CoNLL + P/R/F1
    cat news.txt | run_ner_predict --model outputs/shared_ffn/onnx/model_int8.onnx --input -
    run_ner_predict --model outputs/shared_ffn/onnx/model_int8.onnx --serve --port 8000  # HTTP (runtime/serve.py)

An .onnx model runs with ONNX Runtime, numpy and tokenizers only: neither torch nor transformers is imported
(``pip install ./serve`` installs this command without them). The input formats, the aggregation and the windows
for long lines are described in ``runtime/formats.py`` and ``runtime/windows.py``.
"""

from __future__ import annotations

from runtime.console import run_cli
from runtime.predict import parse_predict_args, predict_file


def register_model_types() -> None:
    """The full package's compressed model types, registered with transformers' Auto classes by its ``modeling``,
    so that a folder it saved loads without ``--trust_remote_code``. Without the full package (``serve/`` alone) or
    without torch there is nothing to register, and loading the folder says what is missing."""
    try:
        import modeling  # noqa: F401
    except ImportError:
        pass


def main(argv: list[str] | None = None):
    args = parse_predict_args(argv)
    if not args.model.endswith(".onnx"):  # a folder or Hub id runs with PyTorch; an .onnx file never imports torch
        register_model_types()
    if args.serve:  # FastAPI and uvicorn (the http extra) are imported only here
        from runtime.serve import serve

        return serve(args)
    return predict_file(args)


def cli() -> None:
    """Console entry point: known input errors become one line on stderr and exit status 2."""
    run_cli(main, "run_ner_predict")


if __name__ == "__main__":
    cli()
