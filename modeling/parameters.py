"""Counting the parameters of a model whose layers share weights.

```python
>>> count_unique_parameters(model)  # a tensor shared by 6 layers counts once
```
"""

from __future__ import annotations

from torch import nn


def count_unique_parameters(model: nn.Module) -> int:
    """Parameters counted once each, however many names or layers share them.

    ``parameters()`` already yields a shared ``Parameter`` once; the storage address also catches distinct
    ``Parameter`` objects over the same memory. Meta tensors have no address (all report 0), so they are told
    apart by identity: counting a model built under ``torch.device("meta")`` costs no memory.
    """
    unique = {id(p) if p.is_meta else (p.device, p.data_ptr()): p.numel() for p in model.parameters()}
    return sum(unique.values())
