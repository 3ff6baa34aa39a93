"""Text input: open a file, stdin or a ``.gz`` as bytes, decode it line by line, and check a whole file is UTF-8.

Python's own decode error gives a position inside a read buffer and no file name; these name the file and line.

```python
>>> check_text_file("train.txt", "--train_file")          # exists, not empty, UTF-8, no NUL byte
>>> for line_no, line in read_lines("news.txt.gz"):       # (1, 'Mara Velden joined ...'), ...
...     pass
```
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import struct
import sys
import unicodedata
from collections.abc import Iterator


def is_blank(line: str) -> bool:
    """Nothing but whitespace and invisible format characters (Unicode category Cf: a byte-order mark, a zero-width
    space or joiner, a direction mark): such a line separates sentences, as an empty one does."""
    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in line)


def open_binary(path: str):
    """``path`` as a binary stream: ``-`` is stdin, a ``.gz`` is decompressed."""
    if path == "-":
        check_stdin()
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_lines(path: str, encoding: str | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending), decoded line by line so that a bad byte names its line.

    Without ``encoding``: UTF-8, a byte-order mark at the start dropped, a NUL byte an error (a binary file).
    """
    name = "<stdin>" if path == "-" else path
    stream = open_binary(path)
    try:
        for line_no, raw in enumerate(stream, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf") and encoding is None:
                raw = raw[3:]  # a UTF-8 byte-order mark
            try:
                text = raw.decode(encoding or "utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{name}:{line_no}: not {encoding or 'UTF-8'} text (byte {raw[err.start]:#04x} at "
                                 f"byte {err.start + 1} of the line); a binary file? give --encoding if the text "
                                 "uses another encoding") from None
            if encoding is None and "\x00" in text:
                raise ValueError(f"{name}:{line_no}: a NUL byte: this looks like a binary file, not text "
                                 "(give --encoding to read it anyway)")
            yield line_no, text.rstrip("\n").removesuffix("\r")
    except (OSError, EOFError) as err:  # a truncated or invalid .gz
        raise ValueError(f"{name}: cannot read it ({err})") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def check_utf8(path: str, what: str = "") -> None:
    """Raise naming ``path:line`` (and the byte offset in the file) at the first byte that is not UTF-8 (``.gz``
    files are read decompressed; a NUL byte means binary).

    For files read whole before any work (training data, pruning texts); ``read_lines`` checks as it streams.
    """
    prefix = f"{what} " if what else ""
    try:
        with open_binary(path) as f:
            data = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{prefix}{path}: cannot read it ({err})") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        hint = " (UTF-16?)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ValueError(
            f"{prefix}{path}:{line}: not UTF-8 text{hint}: byte 0x{data[err.start]:02x} at offset {err.start} "
            "of the file; save it as UTF-8"
        ) from None
    nul = data.find(b"\x00")
    if nul >= 0:  # valid UTF-8, but no text file holds it
        line = data.count(b"\n", 0, nul) + 1
        raise ValueError(f"{prefix}{path}:{line}: a NUL byte at offset {nul}: binary, not text")


def check_text_file(path: str, flag: str = "") -> None:
    """A plain-text input (given by ``flag``, named in the message): it exists, is a file, is not empty, and is
    UTF-8."""
    prefix = f"{flag} " if flag else ""
    if os.path.isdir(path):
        raise ValueError(f"{prefix}{path}: is a folder, not a text file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{prefix}{path}: no such file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{prefix}{path}: the file is empty")
    check_utf8(path, flag)


def check_stdin(flag: str = "--input -") -> None:
    """Standard input is open (a shell's ``<&-`` closes it: Python then has no ``sys.stdin``)."""
    if sys.stdin is None or sys.stdin.closed:
        raise ValueError(f"{flag}: standard input is closed; pipe text in, or give a file")


def check_stdout(flag: str = "--output") -> None:
    """Standard output is open (``>&-`` closes it), for a command that writes its results there."""
    if sys.stdout is None or sys.stdout.closed:
        raise ValueError(f"standard output is closed; give {flag} FILE")


def check_safetensors(path: str, flag: str = "") -> None:
    """A ``.safetensors`` file is whole: its header (an 8-byte length, then JSON) parses and every tensor's bytes lie
    inside the file. Only the header is read, with neither torch nor the safetensors library: a damaged or random
    file is one ValueError naming it, before any loading."""
    prefix = f"{flag} " if flag else ""
    size = os.path.getsize(path)
    problem = None
    with open(path, "rb") as f:
        head = f.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        if length is None or length > size - 8:
            problem = f"a header of {length} bytes in a file of {size}" if length is not None else "shorter than 8 bytes"
        else:
            try:
                header = json.loads(f.read(length))
            except (UnicodeDecodeError, json.JSONDecodeError):
                header, problem = None, "its header is not JSON"
    if problem is None:
        tensors = {k: v for k, v in header.items() if k != "__metadata__"} if isinstance(header, dict) else None
        data = size - 8 - length
        if tensors is None or not all(
                isinstance(v, dict) and isinstance(v.get("data_offsets"), list) and len(v["data_offsets"]) == 2
                and all(isinstance(o, int) for o in v["data_offsets"]) and 0 <= v["data_offsets"][0]
                <= v["data_offsets"][1] <= data for v in tensors.values()):
            problem = "its header does not describe tensors inside the file (cut off, or not safetensors)"
    if problem:
        raise ValueError(f"{prefix}{path}: not a readable safetensors file ({problem})")


def check_weight_files(folder: str, flag: str = "") -> None:
    """Every ``*.safetensors`` file in a model folder passes ``check_safetensors``."""
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), "*.safetensors"))):
        check_safetensors(path, flag)
