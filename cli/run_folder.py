"""The output folder of a run: one writer at a time, resumable checkpoints, and files others can read.

```python
>>> with OutputFolderLock("outputs/teacher"):       # a second run into the same folder stops with one line
...     checkpoint = last_complete_checkpoint("outputs/teacher")
>>> checkpoint_problem("outputs/teacher/checkpoint-3")   # None, or why a resume cannot start from it
>>> remove_checkpoints("outputs/teacher")               # once the run has finished
```
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import tempfile

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from runtime.textfiles import check_weight_files

LOCK_NAME = ".run.lock"
# Written last by Trainer._save_checkpoint: a checkpoint without it was cut off by a kill while saving.
TRAINER_STATE_NAME = "trainer_state.json"


class OutputFolderLock:
    """An exclusive ``flock`` on ``<output_dir>/.run.lock``, held for the whole run.

    The kernel drops a flock when its holder exits in any way (SIGKILL included), so a crash never leaves a stale
    lock; the file itself stays behind, empty of meaning.
    """

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.file = None

    def __enter__(self) -> OutputFolderLock:
        os.makedirs(self.output_dir, exist_ok=True)
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            self.file = None
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise OSError(
                    f"--output_dir {self.output_dir}: another run (pid {holder}) is writing into this folder; "
                    "wait for it or choose another --output_dir"
                ) from None
            raise
        os.chmod(self.path, 0o644)
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()  # closing releases the flock
            self.file = None


CHECKPOINT_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def checkpoint_problem(path: str) -> str | None:
    """Why a resume cannot start from ``path`` (None when it can): its trainer state is missing (cut off by a kill
    while saving: the Trainer writes it last) or is not a JSON object, or it holds no readable weights."""
    state = os.path.join(path, TRAINER_STATE_NAME)
    if not os.path.isfile(state):
        return f"not a complete checkpoint (no {TRAINER_STATE_NAME})"
    try:
        with open(state, encoding="utf-8") as f:
            if not isinstance(json.load(f), dict):
                raise ValueError
    except (OSError, UnicodeDecodeError, ValueError):
        return f"its {TRAINER_STATE_NAME} is not a readable JSON object"
    if not any(os.path.isfile(os.path.join(path, name)) for name in CHECKPOINT_WEIGHTS):
        return "no model weights in it (model.safetensors)"
    try:
        check_weight_files(path)
    except ValueError as err:
        return str(err)
    return None


def checkpoints(output_dir: str) -> list[str]:
    """The ``checkpoint-N`` folders of ``output_dir``, by step."""
    if not os.path.isdir(output_dir):
        return []
    steps = sorted((int(m.group(1)), name) for name in os.listdir(output_dir) if (m := CHECKPOINT.match(name))
                   and os.path.isdir(os.path.join(output_dir, name)))
    return [os.path.join(output_dir, name) for _, name in steps]


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The highest ``checkpoint-N`` a resume can start from; ones cut off while saving, or with a damaged state or
    weights, are passed over."""
    usable = [path for path in checkpoints(output_dir) if checkpoint_problem(path) is None]
    return usable[-1] if usable else None


def remove_checkpoints(output_dir: str) -> int:
    """Delete the ``checkpoint-N`` folders of a finished run (the model is saved beside them): a push would upload
    them, and they are several times the model's size. Returns how many were removed."""
    found = checkpoints(output_dir)
    for path in found:
        shutil.rmtree(path)
    return len(found)


def make_readable(path: str) -> None:
    """Files 0644 and folders 0755 below ``path``: safetensors and tempfile write owner-only (0600) files."""
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                os.chmod(full, 0o644)


def save_final_model(trainer, tokenizer, output_dir: str) -> None:
    """Save into a hidden folder, then move the files in: the folder never holds half a model. (Not
    ``runtime.atomic.staged_dir``: the output folder already holds checkpoints, which must stay.)"""
    staging = tempfile.mkdtemp(prefix=".saving-", dir=output_dir)
    try:
        trainer.save_model(staging)
        tokenizer.save_pretrained(staging)
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)

