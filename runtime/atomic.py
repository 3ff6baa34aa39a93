"""Write-then-rename: a reader (or a crash) sees the old file or folder, or the whole new one, never half of one.

```python
>>> with atomic_path("cache/targets.safetensors") as partial:   # any writer that takes a path
...     save_file(tensors, partial)
>>> write_json_atomic("outputs/teacher/results.json", results)
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
    handle, partial = tempfile.mkstemp(prefix=f".tmp-{os.path.basename(path)}-", suffix=".tmp", dir=directory)
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
    """stdout when ``path`` is empty or None (flushed at the end), else ``atomic_text_file(path)``."""
    if path:
        with atomic_text_file(path) as f:
            yield f
        return
    try:
        yield sys.stdout
    finally:
        sys.stdout.flush()


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
