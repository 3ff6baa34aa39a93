"""An ONNX Runtime session over an exported NER model, with numpy in and out: no torch, no transformers.

This is the part of ``OnnxTokenClassifier`` that a runtime without the training stack needs (onnxruntime,
tokenizers, numpy: the distribution in ``serve/``). ``OnnxTokenClassifier`` wraps it for transformers' pipeline.

```python
>>> session = OnnxNerSession("outputs/teacher/onnx/model_int8.onnx")
>>> session.id2label[1], session.logits(input_ids, attention_mask, token_type_ids).shape  # (B, T, num_labels)
```
"""

from __future__ import annotations

import json
import os

import numpy as np

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")  # the order export_onnx traces them in
# ONNX Runtime's graph rewrites that make these models slower on CPU. SkipLayerNormFusion turns each residual Add and
# LayerNormalization into one SkipLayerNormalization, whose CPU kernel took 5x as long as the two ops it replaces
# (ONNX Runtime 1.32, AVX-512 Xeon, one thread: 1.75 ms against 0.34 ms on a (32, 30, 384) batch): 16% of the 5x
# int8 model's time on CoNLL-2003 test, against 5% unfused. Names ONNX Runtime does not know are ignored.
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(f"running an ONNX model needs onnxruntime ({err}): pip install onnxruntime") from None
    return onnxruntime


class OnnxNerSession:
    """Load ``onnx_path`` once; ``logits`` runs it on int arrays of shape (B, T).

    The label map comes from the file's ``id2label`` metadata (written by ``export_onnx``), else from ``id2label``.
    On the CPU provider alone, the rewrites in ``CPU_DISABLED_OPTIMIZERS`` are left out (the same arithmetic, faster).
    """

    def __init__(self, onnx_path: str, id2label: dict[int, str] | None = None, providers=None, session_options=None):
        onnxruntime = import_onnxruntime()
        if not os.path.isfile(onnx_path):
            raise FileNotFoundError(f"{onnx_path}: no such ONNX file")
        self.path = onnx_path
        providers = providers or ["CPUExecutionProvider"]
        disabled = CPU_DISABLED_OPTIMIZERS if list(providers) == ["CPUExecutionProvider"] else ()
        self.session = onnxruntime.InferenceSession(onnx_path, session_options, providers=providers,
                                                    disabled_optimizers=list(disabled))
        metadata = self.session.get_modelmeta().custom_metadata_map
        if id2label is None:
            if "id2label" not in metadata:
                raise ValueError(f"{onnx_path}: no id2label in the ONNX metadata; pass the model's config")
            id2label = {int(k): v for k, v in json.loads(metadata["id2label"]).items()}
        self.id2label = id2label
        self.metadata = metadata
        self.input_names = [i.name for i in self.session.get_inputs()]

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None = None,
               run_options=None) -> np.ndarray:
        if token_type_ids is None:  # tokenizers without segment ids
            token_type_ids = np.zeros_like(input_ids)
        feed = dict(zip(INPUT_NAMES, (input_ids, attention_mask, token_type_ids)))
        feed = {name: np.asarray(array, dtype=np.int64) for name, array in feed.items() if name in self.input_names}
        return self.session.run(["logits"], feed, run_options)[0]  # (B, T, num_labels)

    def accepts_token_id(self, token_id: int) -> bool:
        """Whether the embedding table has a row ``token_id``: ONNX Runtime's Gather rejects an index past its end."""
        ids = np.array([[token_id]], dtype=np.int64)
        quiet = import_onnxruntime().RunOptions()
        quiet.log_severity_level = 4  # the expected failure would otherwise print an error log line
        try:
            self.logits(ids, np.ones_like(ids), run_options=quiet)
        except Exception:  # onnxruntime raises its own pybind types (InvalidArgument, Fail) for a bad index
            return False
        return True
