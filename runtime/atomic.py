"""Write-then-rename: a reader (or a crash) sees the old file or folder, or the whole new one, never half of one.

```python
>>> with atomic_path("cache/targets.safetensors") as partial:   # any writer that takes a path
...     save_file(tensors, partial)
>>> write_json_atomic("outputs/teacher/results.json", results)
>>> check_writable("predictions.jsonl", "--output")            # before any work: the folder takes a file
>>> with text_output("predictions.jsonl") as out:             # stdout for None; a file once the block succeeds
...     out.write(line)
>>> with staged_dir("outputs/teacher/onnx") as staging:          # a whole folder
...     export_onnx(model_dir, os.path.join(staging, "model.onnx"))
```
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A hidden temporary file beside ``path``; when the block succeeds it becomes ``path`` (mode 0644).

    Same folder, so ``os.replace`` is one rename on one file system. ``mkstemp`` makes the file owner-only, but
    what we write (results, cards, models, predictions) is meant to be shared. If the block raises, the temporary
    file is removed and ``path`` is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, partial = tempfile.mkstemp(prefix=f".tmp-{os.path.basename(path)}-", suffix=".tmp", dir=directory)
    except OSError as err:  # its message would name the hidden temporary file, not the user's
        raise type(err)(f"{path}: cannot write a file in {directory} ({err.strerror})") from None
    os.close(handle)
    try:
        yield partial
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


@contextmanager
def atomic_text_file(path: str) -> Iterator[TextIO]:
    """``path`` opened for UTF-8 text with ``\\n`` line endings, through ``atomic_path``."""
    with atomic_path(path) as partial, open(partial, "w", encoding="utf-8", newline="\n") as f:
        yield f


@contextmanager
def text_output(path: str | None) -> Iterator[TextIO]:
    """stdout when ``path`` is empty or None (flushed at the end), else ``atomic_text_file(path)``; a path that exists
    and is not a regular file (``/dev/null``, a FIFO, a terminal) is written in place, never replaced by a file."""
    if path and os.path.exists(path) and not os.path.isfile(path):
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            yield f
        return
    if path:
        with atomic_text_file(path) as f:
            yield f
        return
    try:
        yield sys.stdout
    finally:
        sys.stdout.flush()


def check_writable(path: str, flag: str = "") -> None:
    """``path`` can be written as ``text_output`` writes it, checked before any work: a node that is not a regular
    file opens for writing in place; anything else needs an existing folder that takes a new file."""
    prefix = f"{flag} " if flag else ""
    if os.path.isdir(path):
        raise ValueError(f"{prefix}{path}: is a folder; give a file name")
    if os.path.exists(path) and not os.path.isfile(path):
        if not os.access(path, os.W_OK):
            raise PermissionError(f"{prefix}{path}: not writable")
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{prefix}{path}: the folder {folder} does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise type(err)(f"{prefix}{path}: cannot write a file in {folder} ({err.strerror})") from None


def write_text_atomic(path: str, text: str) -> None:
    with atomic_text_file(path) as f:
        f.write(text)


def write_json_atomic(path: str, payload: dict) -> None:
    """``payload`` as indented JSON with sorted keys (values JSON cannot hold are written as ``str``)."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


@contextmanager
def staged_dir(final: str) -> Iterator[str]:
    """A hidden scratch folder that replaces the folder ``final`` only when the block succeeds."""
    staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(os.path.abspath(final)))
    try:
        yield staging
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
