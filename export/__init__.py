"""Deployment variants of a trained NER model: vocabulary pruning, ONNX export, int8 quantization and an ONNX
Runtime pipeline.

onnx and onnxruntime are optional (``pip install -e '.[onnx]'``); they are imported when first needed.

```python
>>> from export import OnnxNerPipeline, export_onnx, quantize_onnx_int8
>>> export_onnx("outputs/teacher", "outputs/teacher/onnx/model.onnx")
>>> quantize_onnx_int8("outputs/teacher/onnx/model.onnx", "outputs/teacher/onnx/model_int8.onnx")
>>> OnnxNerPipeline("outputs/teacher/onnx/model_int8.onnx", "outputs/teacher")("Mara Velden lives in Carrow .")
```
"""

# Imported on first use: ``import export`` loads neither torch nor onnx until a function is used. (The torch-free
# prediction runtime is the ``runtime`` package.)
_LAZY = {
    "OnnxNerPipeline": "onnx_pipeline",
    "OnnxTokenClassifier": "onnx_pipeline",
    "corpus_vocabulary": "vocab_pruning",
    "export_onnx": "onnx_export",
    "load_token_classifier": "onnx_export",
    "prune_to_folder": "vocab_pruning",
    "prune_vocabulary": "vocab_pruning",
    "quantize_dynamic_torch": "quantization",
    "quantize_onnx_int8": "quantization",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'export' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
