"""Deployment variants of a trained NER model: ONNX export, int8 quantization and an ONNX Runtime pipeline.

onnx and onnxruntime are optional (``pip install -e '.[onnx]'``); they are imported when first needed.

```python
>>> from export import OnnxNerPipeline, export_onnx, quantize_onnx_int8
>>> export_onnx("outputs/teacher", "outputs/teacher/onnx/model.onnx")
>>> quantize_onnx_int8("outputs/teacher/onnx/model.onnx", "outputs/teacher/onnx/model_int8.onnx")
>>> OnnxNerPipeline("outputs/teacher/onnx/model_int8.onnx", "outputs/teacher")("Mara Velden lives in Carrow .")
```
"""

from .onnx_export import export_onnx, load_token_classifier
from .onnx_pipeline import OnnxNerPipeline, OnnxTokenClassifier
from .quantization import quantize_dynamic_torch, quantize_onnx_int8

__all__ = [
    "OnnxNerPipeline",
    "OnnxTokenClassifier",
    "export_onnx",
    "load_token_classifier",
    "quantize_dynamic_torch",
    "quantize_onnx_int8",
]
