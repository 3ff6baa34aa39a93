"""Model cards and Hub pushes for the models that ``run_ner_compress.py`` trains.

```python
>>> from hub_cards import write_model_card, push_model_folder
>>> write_model_card("outputs/shared_ffn", results)        # README.md from a RunResults (trainers.results)
>>> push_model_folder("outputs/shared_ffn", "me/bert-ner-shared")
```

``python -m hub_cards OUTPUT_DIR`` rewrites the card of a finished run from its results.json. The card's text is
the Jinja template ``templates/model_card.md``.
"""

from trainers.results import redact_command

from .card import build_model_card, read_results, write_model_card
from .dataset import CONLL2003, DatasetInfo, describe_dataset, detect_dataset_hub_id
from .push import PUSH_IGNORE_PATTERNS, check_pushable, files_to_push, push_model_folder, push_problem

__all__ = [
    "CONLL2003",
    "DatasetInfo",
    "PUSH_IGNORE_PATTERNS",
    "build_model_card",
    "check_pushable",
    "describe_dataset",
    "detect_dataset_hub_id",
    "files_to_push",
    "push_model_folder",
    "push_problem",
    "read_results",
    "redact_command",
    "write_model_card",
]
