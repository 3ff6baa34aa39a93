"""Run an exported NER model with ONNX Runtime and get entity spans, as the token-classification pipeline does.

``OnnxNerPipeline`` is transformers' ``TokenClassificationPipeline`` with an ONNX Runtime session in place of the
PyTorch model: tokenization, subword handling and the B-/I- grouping of ``aggregation_strategy="simple"`` are
transformers' own code, so the spans match the PyTorch pipeline's.

```python
>>> ner = OnnxNerPipeline("outputs/shared_ffn/onnx/model_int8.onnx", "outputs/shared_ffn")
>>> ner("Mara Velden joined Norvane Bank in Port Aldane .")
[{'entity_group': 'PER', 'word': 'mara velden', 'start': 0, 'end': 11, 'score': 0.98}, ...]
```
"""

from __future__ import annotations

import os

import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedConfig, TokenClassificationPipeline

from runtime.backends import INPUT_NAMES, OnnxNerSession

from .onnx_export import require_onnx


class OnnxTokenClassifier:
    """What the pipeline needs of a model: ``config`` (the label map), ``device`` and a call returning logits.

    The session itself (loading, label metadata, the numpy call) is ``OnnxNerSession``, which needs no torch.
    """

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, onnx_path: str, config: PreTrainedConfig | None = None, providers=None,
                 session_options=None):
        require_onnx()
        id2label = {int(k): v for k, v in config.id2label.items()} if config is not None else None
        self.onnx = OnnxNerSession(onnx_path, id2label, providers, session_options)
        self.session = self.onnx.session
        if config is None:
            id2label = self.onnx.id2label
            config = PreTrainedConfig(id2label=id2label, label2id={v: k for k, v in id2label.items()})
        self.config = config
        self.input_names = self.onnx.input_names

    def __call__(self, **inputs) -> dict:
        arrays = {name: inputs[name].cpu().numpy() for name in INPUT_NAMES if name in inputs}
        logits = self.onnx.logits(arrays["input_ids"], arrays["attention_mask"], arrays.get("token_type_ids"))
        return {"logits": torch.from_numpy(logits)}  # (B, T, num_labels)

    def run_numpy(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        return self.onnx.logits(input_ids, attention_mask, token_type_ids)  # (B, T, num_labels)


class OnnxNerPipeline(TokenClassificationPipeline):
    """``pipeline("token-classification")`` over an ONNX file and the saved tokenizer (and config) folder.

    The label map comes from the ONNX metadata written by ``export_onnx``, else from ``tokenizer_dir``'s
    config.json. ``aggregation_strategy`` defaults to ``"simple"``.
    """

    def __init__(self, onnx_path: str, tokenizer_dir: str, aggregation_strategy: str = "simple", providers=None,
                 **kwargs):
        config = None
        if os.path.isfile(os.path.join(tokenizer_dir, "config.json")):
            config = AutoConfig.from_pretrained(tokenizer_dir)
        classifier = OnnxTokenClassifier(onnx_path, config, providers)
        if config is None:
            config = classifier.config
        super().__init__(
            model=classifier,
            tokenizer=AutoTokenizer.from_pretrained(tokenizer_dir),
            task="token-classification",
            device=-1,
            aggregation_strategy=aggregation_strategy,
            **kwargs,
        )

    def check_model_type(self, supported_models) -> None:
        """The ONNX session stands in for a model class that the pipeline registry cannot know."""
