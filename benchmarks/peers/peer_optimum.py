"""optimum's dynamic int8 of a saved teacher, and its pipeline's throughput, inside the optimum environment.

Imports nothing of the project. Follows optimum's documented use: ``ORTModelForTokenClassification
.from_pretrained(teacher, export=True)``, then ``ORTQuantizer.from_pretrained(model).quantize(save_dir,
AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=...))`` (this machine's CPU has AVX-512 VNNI),
once per-tensor and once per-channel: the harness picks one on validation F1. Each folder holds
``model_quantized.onnx``, config.json and the tokenizer, which ``run_ner_predict`` reads as it is (no adapter).

Throughput through optimum's own pipeline (``optimum.pipelines.pipeline("token-classification", accelerator=
"ort")``), on the test sentences as raw text (words joined by spaces), ``batch_size`` 32, default session options:
the int8 files, any ``--other_onnx NAME=PATH`` (another tool's .onnx with its config and tokenizer beside it,
loaded as optimum loads its own), and the teacher through transformers' PyTorch pipeline in the same environment
for the ratio.

    python peer_optimum.py --teacher T --output_dir D --test_file test.txt --result r.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time


def conll_sentences(path: str) -> list[str]:
    sentences, words = [], []
    for line in open(path, encoding="utf-8"):
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if words:
                sentences.append(" ".join(words))
            words = []
        else:
            words.append(columns[0])
    if words:
        sentences.append(" ".join(words))
    return sentences


def pipeline_speed(tagger, sentences: list[str], batch_size: int) -> float:
    tagger(sentences[:batch_size], batch_size=batch_size)  # untimed: first-call setup
    started = time.perf_counter()
    tagger(sentences, batch_size=batch_size)
    return len(sentences) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--test_file", required=True)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--other_onnx", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--result", required=True)
    args = parser.parse_args()

    import onnxruntime
    import optimum.version
    import torch
    import transformers
    from optimum.onnxruntime import ORTModelForTokenClassification, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig
    from optimum.pipelines import pipeline
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if os.path.isdir(args.output_dir):
        shutil.rmtree(args.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    started = time.perf_counter()
    fp32_dir = os.path.join(args.output_dir, "fp32")
    model = ORTModelForTokenClassification.from_pretrained(args.teacher, export=True)
    model.save_pretrained(fp32_dir)
    tokenizer.save_pretrained(fp32_dir)
    quantized = {}
    for name, per_channel in (("per-tensor", False), ("per-channel", True)):
        save_dir = os.path.join(args.output_dir, name)
        quantizer = ORTQuantizer.from_pretrained(fp32_dir)
        quantizer.quantize(save_dir=save_dir,
                           quantization_config=AutoQuantizationConfig.avx512_vnni(is_static=False,
                                                                                  per_channel=per_channel))
        quantized[name] = os.path.abspath(os.path.join(save_dir, "model_quantized.onnx"))
    quantize_seconds = time.perf_counter() - started

    sentences = conll_sentences(args.test_file)
    speeds = {}
    others = dict(item.split("=", 1) for item in args.other_onnx)
    for name, path in [*((f"int8 {k}", v) for k, v in quantized.items()), *others.items()]:
        ort_model = ORTModelForTokenClassification.from_pretrained(os.path.dirname(path),
                                                                   file_name=os.path.basename(path))
        tagger = pipeline("token-classification", model=ort_model, tokenizer=tokenizer, accelerator="ort")
        speeds[name] = round(pipeline_speed(tagger, sentences, args.batch_size), 1)
    teacher = AutoModelForTokenClassification.from_pretrained(args.teacher).eval()
    tagger = transformers.pipeline("token-classification", model=teacher, tokenizer=tokenizer, device="cpu")
    speeds["teacher PyTorch"] = round(pipeline_speed(tagger, sentences, args.batch_size), 1)
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump({"quantized": quantized, "quantize_seconds": round(quantize_seconds, 1),
                   "pipeline_sentences_per_second": speeds, "pipeline_sentences": len(sentences),
                   "versions": {"optimum": optimum.version.__version__, "onnxruntime": onnxruntime.__version__,
                                "transformers": transformers.__version__, "torch": torch.__version__}}, f)


if __name__ == "__main__":
    main()
