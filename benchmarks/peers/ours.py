"""Our rows, made in the project's environment with the project's own functions, each into a folder that
``run_ner_predict`` reads.

- vocabulary pruning: ``export.vocab_pruning.prune_to_folder`` (``corpus_vocabulary`` + ``prune_vocabulary``) on
  the training split's words and optional raw-text files, ``unseen="nearest"`` or ``"resplit"``; not trained;
- a named recipe's size: ``modeling.recipes.compress`` of the teacher with the recipe's settings, counted;
- distillation's student: ``modeling.student.build_student`` of the teacher, saved, the start of both distillers;
- int8: ``export.export_onnx`` then ``export.quantize_onnx_int8`` (dynamic, per-channel weights), the tokenizer and
  config.json written beside the file, as ``run_ner_compress.py --export_onnx --quantize int8`` lays them out.

```python
>>> prune_ours("outputs/teacher", "work/nearest_train", train_sentences, [], "nearest")   # -> word rows kept
>>> int8_ours("outputs/teacher", "work/int8")                                            # -> .../model_int8.onnx
>>> recipe_parameters("outputs/teacher", "5x")                                           # -> 3954441 on MiniLM
>>> student_init("outputs/teacher", "work/student3", 3)                                  # -> the folder
```
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence


def prune_ours(teacher_dir: str, out_dir: str, sentences: Sequence[Sequence[str]], text_files: Sequence[str],
               unseen: str) -> int:
    """The teacher pruned to the corpus's pieces, saved to ``out_dir``; returns the word-table rows kept."""
    from transformers import AutoTokenizer

    from export import load_token_classifier, prune_to_folder

    model = load_token_classifier(teacher_dir)
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    model, _ = prune_to_folder(model, tokenizer, out_dir, sentences, list(text_files), unseen=unseen)
    return model.get_input_embeddings().weight.shape[0]


def int8_ours(teacher_dir: str, out_dir: str) -> str:
    """``out_dir/model_int8.onnx`` (and the fp32 ``model.onnx`` it was made from), tokenizer and config beside."""
    from transformers import AutoTokenizer

    from export import export_onnx, quantize_onnx_int8
    from runtime.atomic import staged_dir

    with staged_dir(out_dir) as staging:
        fp32 = export_onnx(teacher_dir, os.path.join(staging, "model.onnx"))
        quantize_onnx_int8(fp32, os.path.join(staging, "model_int8.onnx"))
        AutoTokenizer.from_pretrained(teacher_dir).save_pretrained(staging)
        shutil.copy(os.path.join(teacher_dir, "config.json"), staging)
    return os.path.join(out_dir, "model_int8.onnx")


def recipe_parameters(teacher_dir: str, name: str) -> int:
    """Unique parameters of ``--recipe NAME`` built from the teacher (its word table unpruned, as the recipe is)."""
    from export import load_token_classifier
    from modeling import count_unique_parameters
    from modeling.recipes import NAMED_RECIPES, compress

    recipe = NAMED_RECIPES[name]
    return count_unique_parameters(compress(load_token_classifier(teacher_dir), recipe.model_type,
                                            **recipe.compression))


def student_init(teacher_dir: str, out_dir: str, num_layers: int) -> str:
    """The recipes' student (``modeling.student.build_student``: the teacher's embeddings, head and evenly spaced
    layers) saved as a plain BERT folder with the teacher's tokenizer: the one start both distillers train from."""
    from transformers import AutoTokenizer

    from export import load_token_classifier
    from modeling.student import build_student
    from runtime.atomic import staged_dir

    with staged_dir(out_dir) as staging:
        build_student(load_token_classifier(teacher_dir), num_layers).save_pretrained(staging)
        AutoTokenizer.from_pretrained(teacher_dir).save_pretrained(staging)
    return out_dir
