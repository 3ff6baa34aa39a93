"""Model cards and Hub pushes for the models that ``run_ner_compress.py`` trains.

```python
>>> from hub_cards import write_model_card, push_model_folder
>>> write_model_card("outputs/shared_ffn", results)        # README.md from the results.json dict
>>> push_model_folder("outputs/shared_ffn", "me/bert-ner-shared")
```

``python -m hub_cards OUTPUT_DIR`` rewrites the card of a finished run from its results.json.
"""

from .card import build_model_card, describe_dataset, read_results, redact_command, write_model_card
from .push import PUSH_IGNORE_PATTERNS, check_pushable, files_to_push, push_model_folder, push_problem

__all__ = [
    "PUSH_IGNORE_PATTERNS",
    "build_model_card",
    "check_pushable",
    "describe_dataset",
    "files_to_push",
    "push_model_folder",
    "push_problem",
    "read_results",
    "redact_command",
    "write_model_card",
]
