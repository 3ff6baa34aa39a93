"""Export any saved NER model of this project (plain BERT or a compressed class) to ONNX.

The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, shape (batch, sequence), both
axes dynamic) and returns ``logits`` (batch, sequence, num_labels). The label map travels in the file's metadata
(``id2label``), so an ONNX file and a tokenizer are all that ``OnnxNerPipeline`` needs.

```python
>>> export_onnx("outputs/shared_ffn", "outputs/shared_ffn/onnx/model.onnx")
```
"""

from __future__ import annotations

import json
import logging
import os
import warnings

import torch
from torch import nn
from transformers import AutoModelForTokenClassification

import modeling  # noqa: F401  (registers the compressed model types with the Auto classes)
from runtime.atomic import atomic_path
from runtime.backends import INPUT_NAMES

logger = logging.getLogger(__name__)

OUTPUT_NAMES = ("logits",)
DEFAULT_OPSET = 17  # the first opset with LayerNormalization as one op
EXPORT_ATTENTION = "eager"  # the attention implementation traced (see export_onnx)


def require_onnx():
    """Import onnx and onnxruntime, or say which extra installs them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ImportError(f"ONNX export needs onnx and onnxruntime ({err}): pip install -e '.[onnx]'") from None
    return onnx, onnxruntime


class _LogitsOnly(nn.Module):
    """Fixes the input order and returns a plain tensor: the tracer cannot export a ModelOutput."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                             return_dict=True)
        return outputs.logits  # (B, T, num_labels)


def load_token_classifier(model_dir: str, **kwargs):
    """Any saved model type of this project, in eval mode; ``kwargs`` go to ``from_pretrained``."""
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise FileNotFoundError(f"{model_dir}: no config.json, so not a saved model folder")
    return AutoModelForTokenClassification.from_pretrained(model_dir, **kwargs).eval()


def sample_inputs(vocab_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of two, the second row padded, so the traced mask code sees real padding."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab_size, (2, 8), generator=generator)  # (B, T)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0
    return input_ids, attention_mask, torch.zeros_like(input_ids)


def export_onnx(model_dir: str, onnx_path: str, opset: int = DEFAULT_OPSET) -> str:
    """Trace the model saved in ``model_dir`` into ``onnx_path`` (fp32, dynamic batch and sequence axes).

    Uses the TorchScript exporter (``dynamo=False``), which needs no extra package. A model it cannot trace
    raises one RuntimeError that names ``model_dir``; no file is left at ``onnx_path`` then.
    """
    onnx, _ = require_onnx()
    # Eager attention traces to MatMul, Add (the mask, built once), Softmax, MatMul. SDPA's ONNX form instead turns
    # the boolean mask into -inf in every layer and guards each softmax with IsNaN and Where: 8-11% slower on CPU.
    model = load_token_classifier(model_dir, attn_implementation=EXPORT_ATTENTION)
    os.makedirs(os.path.dirname(os.path.abspath(onnx_path)), exist_ok=True)
    with atomic_path(onnx_path) as partial:
        _trace(model, model_dir, partial, opset)
        graph = onnx.load(partial)
        add_metadata(graph, {"id2label": json.dumps({int(k): v for k, v in model.config.id2label.items()}),
                             "model_type": model.config.model_type, "model_class": type(model).__name__})
        onnx.save(graph, partial)
    logger.info("exported %s from %s to %s", type(model).__name__, model_dir, onnx_path)
    return onnx_path


def _trace(model: nn.Module, model_dir: str, path: str, opset: int) -> None:
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES + OUTPUT_NAMES}
    try:
        with warnings.catch_warnings():
            # The tracer's notes on Python-side shape checks in transformers' mask code: they hold for any shape.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            # Boolean-mask indexing in the mask code; its indices are never negative.
            warnings.filterwarnings("ignore", message="Exporting aten::index operator")
            torch.onnx.export(
                _LogitsOnly(model).eval(),
                sample_inputs(model.config.vocab_size),
                path,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=False,
                verbose=False,
            )
    except Exception as err:  # the exporter raises many types; the user needs the folder and the cause
        raise RuntimeError(
            f"{model_dir}: the ONNX exporter could not trace {type(model).__name__} "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        ) from err


def add_metadata(graph, entries: dict[str, str]) -> None:
    """Set string metadata on an ``onnx.ModelProto``, replacing keys already there."""
    kept = [p for p in graph.metadata_props if p.key not in entries]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    for key, value in entries.items():
        graph.metadata_props.add(key=key, value=value)
