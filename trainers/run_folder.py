"""The output folder of a run: one writer at a time, resumable checkpoints, and files others can read.

```python
>>> with OutputFolderLock("outputs/teacher"):       # a second run into the same folder stops with one line
...     checkpoint = last_complete_checkpoint("outputs/teacher")
```
"""

from __future__ import annotations

import errno
import fcntl
import os
import re

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

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


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The highest ``checkpoint-N`` that holds its trainer state; ones cut off while saving are passed over."""
    if not os.path.isdir(output_dir):
        return None
    pattern = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
    steps = sorted(
        (int(m.group(1)), name)
        for name in os.listdir(output_dir)
        if (m := pattern.match(name)) and os.path.isfile(os.path.join(output_dir, name, TRAINER_STATE_NAME))
    )
    return os.path.join(output_dir, steps[-1][1]) if steps else None


def make_readable(path: str) -> None:
    """Files 0644 and folders 0755 below ``path``: safetensors and tempfile write owner-only (0600) files."""
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                os.chmod(full, 0o644)
