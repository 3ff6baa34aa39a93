"""Score and time one model the same way for every row: ``run_ner_predict`` on a CoNLL file, as a user runs it.

Every row of the peers table ends as something ``run_ner_predict --model`` reads (a saved folder, or an .onnx
file with its tokenizer beside it). ``predict_conll`` runs the command's own code (``run_ner_predict.main``'s path:
model types registered, ``predict_file`` on the parsed flags) in this process, writes the predictions to
/dev/null and returns the entity-level F1 against the gold tags (seqeval's default mode) and the sentences per
second the command prints: reading, tokenizing, the model and writing, not loading.

```python
>>> score = predict_conll("outputs/teacher/onnx/model_int8.onnx", "../shared/data/conll2003/test.txt")
>>> score.f1, score.sentences_per_second
```
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

@dataclass
class PredictScore:
    f1: float
    sentences_per_second: float
    sentences: int
    log: str  # what the command printed on stderr


def predict_conll(model: str, conll_file: str, batch_size: int = 32) -> PredictScore:
    """``run_ner_predict --model MODEL --input CONLL_FILE --output /dev/null --batch_size N``, in this process."""
    from runtime.predict import parse_predict_args, predict_file

    if not model.endswith(".onnx"):
        import modeling  # noqa: F401  (registers the compressed model types, as run_ner_predict does)
    log = io.StringIO()
    summary = predict_file(parse_predict_args(["--model", model, "--input", conll_file, "--output", os.devnull,
                                               "--batch_size", str(batch_size)]), log=log)
    if not summary.scores:
        raise ValueError(f"{conll_file}: run_ner_predict found no gold tags to score against ({log.getvalue()})")
    return PredictScore(round(summary.scores["f1"], 4), round(summary.sentences_per_second, 1), summary.sentences,
                        log.getvalue())


def size_on_disk(path: str) -> int:
    """Bytes of the weight files a user ships: one file (an .onnx and its external data), or those in a folder
    (safetensors, bin, pt, onnx): the project's own count, ``export.evaluate_variants.weights_size_bytes``."""
    from export.evaluate_variants import weights_size_bytes

    return weights_size_bytes(path)


def model_counts(folder: str) -> tuple[int, int]:
    """(unique parameters, word-table rows) of a saved model folder, counted on the loaded model."""
    from export import load_token_classifier
    from modeling import count_unique_parameters

    model = load_token_classifier(folder)
    return count_unique_parameters(model), model.get_input_embeddings().weight.shape[0]
