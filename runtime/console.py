"""The console entry points' error handling, shared by run_ner_compress and run_ner_predict.

A known input error (a bad flag, file or value; a missing optional extra) ends as one line on stderr and exit
status 2, as argparse does, instead of a traceback. No torch here: run_ner_predict must start without it.

```python
>>> run_cli(main, "run_ner_predict")   # run_ner_predict: error: news.txt:3: not UTF-8 text (...)
>>> parser = one_line_errors(argparse.ArgumentParser(prog="run_ner_predict"))   # argparse's errors: one line too
```
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

INPUT_ERRORS = (ValueError, OSError, ImportError)


def run_cli(main: Callable[[], object], prog: str) -> None:
    """Call ``main()``; an input error prints ``prog: error: <message on one line>`` and exits 2, Ctrl-C exits 130.

    ``NER_COMPRESS_DEBUG=1`` re-raises instead, with the traceback.
    """
    try:
        main()
    except INPUT_ERRORS as err:
        if os.environ.get("NER_COMPRESS_DEBUG"):
            raise
        print(f"{prog}: error: {' '.join(str(err).splitlines())}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` with its usage block left out of errors: a bad flag is the one line ``prog: error: ...`` (exit 2),
    as every other input error is; ``--help`` still shows the usage."""
    parser.print_usage = lambda file=None: None
    return parser
