"""Compressed BERT models for NER, registered with the Auto classes on import.

```python
>>> import modeling  # registers compressed_bert, factorized_bert, shared_bert, low_rank_bert
>>> model = AutoModelForTokenClassification.from_pretrained("path/to/compressed")
>>> student = modeling.compress(bert, "shared_ffn", embedding_size=64)  # a model type of modeling.recipes
```
"""

from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

from .configuration_compressed_bert import (
    DEFAULT_LOW_RANK_TARGETS,
    SHARE_MODES,
    CompressedBertConfig,
    SettingError,
    FactorizedBertConfig,
    LowRankBertConfig,
    SharedBertConfig,
)
from .factorized_embeddings import FactorizedBertEmbeddings, factorize_embedding_matrix
from .indexed_embedding import IndexedEmbedding, index_word_embeddings
from .low_rank import LowRankLinear, find_target_linears, rank_for_energy, replace_with_low_rank, resolve_ranks
from .modeling_compressed_bert import (
    _FAMILIES,
    CompressedBertForTokenClassification,
    CompressedBertModel,
    FactorizedBertForTokenClassification,
    FactorizedBertModel,
    LowRankBertForTokenClassification,
    LowRankBertModel,
    SharedBertForTokenClassification,
    SharedBertModel,
)
from .loading import load_bert, model_labels, token_classification_labels
from .parameters import count_unique_parameters
from .pretrained import minilm_path
from .recipes import MODEL_TYPES, NAMED_RECIPES, RECIPES, CompressionSettings, compress, settings_for
from . import planner
from .shared_layers import SharedBertEncoder
from .student import build_student

for _config_class, (_base_class, _head_class) in _FAMILIES.items():
    AutoConfig.register(_config_class.model_type, _config_class, exist_ok=True)
    AutoModel.register(_config_class, _base_class, exist_ok=True)
    AutoModelForTokenClassification.register(_config_class, _head_class, exist_ok=True)
