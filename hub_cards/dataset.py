"""Which dataset a run used, as the card's model-index names it.

CoNLL-2003 is recognised however it was loaded: from the Hub (``lhoestq/conll2003`` or another copy), or from local
files, by its content (each split's sentence count and first sentence), so that the model-index names the
``conll2003`` dataset and the Hub lists the model beside the others on it. ``--dataset_hub_id`` names any other
dataset that local files are a copy of.

```python
>>> detect_dataset_hub_id({"test": read_conll("../shared/data/conll2003/test.txt")})
'conll2003'
```
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from runtime.formats import DOCSTART, read_ner_file
from trainers.demo_data import DEMO_DIR
from trainers.results import RunResults

CONLL2003 = "conll2003"
# The English CoNLL-2003 splits: sentences (without -DOCSTART-) and the first one, as the Hub dataset has them.
CONLL2003_SPLITS = {
    "train": (14041, "EU rejects German call to boycott British lamb ."),
    "validation": (3250, "CRICKET - LEICESTERSHIRE TAKE OVER AT TOP AFTER INNINGS VICTORY ."),
    "test": (3453, "SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT ."),
}
SPLIT_FILES = ("train", "validation", "test")  # --train_file, --validation_file, --test_file


@dataclass
class DatasetInfo:
    """Where the training and evaluation sentences came from, as the model-index needs it."""

    name: str  # human-readable, e.g. "CoNLL-2003"
    type: str  # the dataset identifier in model-index: a Hub id
    kind: str  # "conll", "demo" or "custom"
    hub_id: str | None = None  # only for data loaded from the Hub: the card's `datasets`
    config: str | None = None
    sources: dict[str, str] = field(default_factory=dict)  # split -> file path or "hub_id[split]"


def detect_dataset_hub_id(splits: dict[str, list[dict]]) -> str | None:
    """``conll2003`` when every split given is the CoNLL-2003 split of that name (full), else None."""
    given = {name: records for name, records in splits.items() if records}
    if not given or set(given) - set(CONLL2003_SPLITS):
        return None
    for name, records in given.items():
        count, first = CONLL2003_SPLITS[name]
        if len(records) != count or " ".join(records[0]["tokens"]) != first:
            return None
    return CONLL2003


def local_files(results: RunResults) -> dict[str, str]:
    data = results.args("data")
    return {split: data[f"{split}_file"] for split in SPLIT_FILES if data.get(f"{split}_file")}


def dataset_hub_id(results: RunResults) -> str | None:
    """The dataset the run recorded (``--dataset_hub_id``, or detected); for a file written before detection, the
    Hub name or the files' content, or, with the files gone, their paths (the only rule before)."""
    data = results.args("data")
    recorded = results.dataset_hub_id or data.get("dataset_hub_id")
    if recorded:
        return recorded
    files = local_files(results)
    if not files:  # local files win over --dataset_name, as in trainers.ner_data.load_ner_splits
        return CONLL2003 if _names_conll2003(data.get("dataset_name")) else None
    if all(os.path.isfile(path) for path in files.values()):
        return CONLL2003 if _files_are_conll2003(files) else None
    return CONLL2003 if all("conll" in path.lower() for path in files.values()) else None


def describe_dataset(results: RunResults | dict) -> DatasetInfo:
    if isinstance(results, dict):
        results = RunResults.from_dict(results)
    data = results.args("data")
    files = local_files(results)
    hub_id = dataset_hub_id(results)
    loaded = None if files else data.get("dataset_name") or "unknown"  # the Hub dataset actually loaded
    config = None if files else data.get("dataset_config_name")
    sources = files or {split: f"{loaded}[{split}]" for split in SPLIT_FILES}
    if hub_id == CONLL2003:
        return DatasetInfo("CoNLL-2003", CONLL2003, "conll", loaded, config or CONLL2003, sources)
    if files and not hub_id and all(_is_demo_file(path) for path in files.values()):
        return DatasetInfo("the synthetic demo sample of bert-ner-compress", "demo", "demo", sources=sources)
    if files and not hub_id:
        return DatasetInfo("local NER files", "local", "custom", sources=sources)
    return DatasetInfo(hub_id or loaded, hub_id or loaded, "custom", loaded, config, sources)


def _names_conll2003(hub_id: str | None) -> bool:
    return CONLL2003 in (hub_id or "").lower().replace("-", "")  # lhoestq/conll2003, eriktks/conll2003, conll2003


def _files_are_conll2003(files: dict[str, str]) -> bool:
    """The content check of ``detect_dataset_hub_id`` on files; a glance at the first word spares reading a large
    file that is something else."""
    for split, path in files.items():
        if split not in CONLL2003_SPLITS or _first_word(path) != CONLL2003_SPLITS[split][1].split()[0]:
            return False
    try:
        return detect_dataset_hub_id({split: read_ner_file(path) for split, path in files.items()}) == CONLL2003
    except (OSError, ValueError):  # NerDataError is a ValueError
        return False


def _first_word(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in itertools.islice(f, 10):
                word = line.split()[:1]
                if word and word[0] != DOCSTART:
                    return word[0]
    except OSError:
        pass
    return None


def _is_demo_file(path: str) -> bool:
    return os.path.dirname(os.path.realpath(path)) == os.path.realpath(DEMO_DIR) or (
        os.path.join("trainers", "demo_data") in path
    )
