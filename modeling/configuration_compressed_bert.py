"""Configurations of the compressed BERT models.

One flat config, ``CompressedBertConfig``, describes any combination of the three methods. The three registered
presets hold their own method only (``preset_method``), so that a checkpoint's ``model_type`` says what it is; a
setting of another method is refused (``check_preset``). Only the fields that BERT lacks are documented here.

This file is copied next to saved checkpoints for ``trust_remote_code``: it imports nothing from this project.
"""

from __future__ import annotations

from transformers import BertConfig

SHARE_MODES = ("attention", "attention_ffn")
DEFAULT_EMBEDDING_SIZE = 128  # ALBERT's E, the factorized preset's default
SHARE_DELTA_INITS = ("svd", "zero")  # relaxed sharing's starts for the per-layer corrections
# BERT's names for the six dense layers of an encoder layer, matched as name suffixes (peft's target_modules).
DEFAULT_LOW_RANK_TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
# Keys of a source model's config that describe its file, not its shape: a config built from it must not inherit them.
SOURCE_CONFIG_SKIP_KEYS = ("model_type", "architectures", "auto_map", "transformers_version", "_name_or_path", "dtype")
# Each method's settings, with the value that leaves the method off: the config fields, and from_bert's
# rank / rank_energy (which become low_rank_ranks). A preset may hold only its own method's settings.
METHOD_SETTINGS = {
    "factorized_embeddings": {"embedding_size": None, "position_embedding_size": None},
    "shared_layers": {"share_mode": None, "share_init": None, "num_shared_groups": 1, "share_delta_rank": 0,
                      "share_delta_init": None},
    "low_rank": {"low_rank_ranks": None, "rank": None, "rank_energy": None},
}


def source_settings(config) -> dict:
    """A source config's settings, to build another config of the same shape from."""
    return {k: v for k, v in config.to_dict().items() if k not in SOURCE_CONFIG_SKIP_KEYS}


class CompressedBertConfig(BertConfig):
    r"""
    embedding_size (`int`, *optional*):
        ALBERT's E: the word embedding is stored as a V×E table followed by an E×H projection
        (`embedding_hidden_mapping_in`). `None` keeps BERT's V×H table. Must be below `hidden_size`.
    position_embedding_size (`int`, *optional*):
        The same for the position table: P×E (`position_embeddings.table`) followed by an E×H projection
        (`position_embeddings.projection`). `None` keeps BERT's P×H table. Below `hidden_size`, at most
        `max_position_embeddings`.
    share_mode (`str`, *optional*):
        `"attention"`: one self-attention block serves every layer; `"attention_ffn"`: one whole transformer
        layer is applied `num_hidden_layers` times. `None` shares nothing.
    share_init (`str`):
        How the shared weights were initialized from the source model (`"mean"` or `"layer:K"`, K counted within
        each group's run of layers); a record only.
    num_shared_groups (`int`):
        ALBERT's layer groups: G shared modules, group g serving the contiguous run of layers
        `g*N/G ... (g+1)*N/G - 1` (layer i uses group `i * G // N`). Must divide `num_hidden_layers`; 1 is one
        shared module, N with `"attention_ffn"` is plain BERT.
    share_delta_rank (`int`):
        Relaxed sharing (Bae et al., 2024): with R > 0 every shared dense weight W serves layer i as
        `W x + B_i (A_i x) + b_i`, with rank-R A_i, B_i, and per-layer biases and LayerNorms. 0 is plain sharing.
    share_delta_init (`str`, *optional*):
        How the corrections started (`"svd"` of W_source_i - W_shared, or `"zero"`: B_i = 0); a record only.
    low_rank_ranks (`dict[str, int]`, *optional*):
        Encoder dense layers stored as low-rank pairs, by module name under the base model, with their rank.
        Filled in when a model is built from a source BERT (fixed rank or spectral-energy rule).
    embedding_rows (`int`, *optional*):
        Vocabulary pruning that keeps the tokenizer (`export.vocab_pruning`, `unseen="nearest"`): the word table
        (V×H, or V×E when factorized) has only this many rows, and a stored index (`token_index`, one int32 per
        token id) names each id's row. `vocab_size` stays the tokenizer's size. `None` is one row per id.

    Example:
    ```python
    >>> config = CompressedBertConfig(embedding_size=128, share_mode="attention_ffn")
    >>> model = CompressedBertForTokenClassification(config)
    ```
    """

    model_type = "compressed_bert"
    _auto_class = "AutoConfig"
    preset_method = None  # any mix of methods; a preset names the one method it holds (a key of METHOD_SETTINGS)

    embedding_size: int | None = None
    position_embedding_size: int | None = None
    share_mode: str | None = None
    share_init: str | None = None
    num_shared_groups: int = 1
    share_delta_rank: int = 0
    share_delta_init: str | None = None
    low_rank_ranks: dict | None = None
    embedding_rows: int | None = None  # any preset may hold it: pruning applies to every model type

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        check_compression_settings(self)
        check_preset(type(self), vars(self))

    @property
    def compression_methods(self) -> list[str]:
        """The methods this config applies, in a fixed order."""
        methods = []
        if self.embedding_size is not None:
            methods.append("factorized_embeddings")
        if self.position_embedding_size is not None:
            methods.append("factorized_positions")
        if self.share_mode is not None:
            methods.append(f"shared_{self.share_mode}")
        if self.num_shared_groups > 1:
            methods.append("layer_groups")
        if self.share_delta_rank:
            methods.append("relaxed_sharing")
        if self.low_rank_ranks:
            methods.append("low_rank")
        return methods


class SettingError(ValueError):
    """An impossible compression setting: ``setting`` (the config field, or ``from_bert``'s argument, which the
    training script's flags are named after), its ``value`` and the ``reason``."""

    def __init__(self, setting: str, value, reason: str):
        self.setting, self.value, self.reason = setting, value, reason
        super().__init__(f"{setting}={value!r} {reason}")


def check_compression_settings(config) -> None:
    """Raise a ValueError naming the value for settings no model can have."""
    if config.embedding_size is not None and not 0 < config.embedding_size < config.hidden_size:
        raise SettingError("embedding_size", config.embedding_size, "must be between 1 and hidden_size-1 "
                           f"(hidden_size={config.hidden_size}); at or above it nothing is saved")
    positions = getattr(config, "position_embedding_size", None)  # run_ner_compress checks a plain BertConfig too
    if positions is not None and not 0 < positions < min(config.hidden_size, config.max_position_embeddings + 1):
        raise SettingError("position_embedding_size", positions, "must be between 1 and hidden_size-1 (hidden_size="
                           f"{config.hidden_size}) and at most max_position_embeddings={config.max_position_embeddings}")
    if config.share_mode is not None and config.share_mode not in SHARE_MODES:
        raise SettingError("share_mode", config.share_mode, f"is not one of {SHARE_MODES} (or None)")
    n, groups, delta = config.num_hidden_layers, config.num_shared_groups, config.share_delta_rank
    if not isinstance(groups, int) or not 1 <= groups <= n or n % groups:
        raise SettingError("num_shared_groups", groups, f"must divide num_hidden_layers={n} (1 <= G <= {n})")
    if groups > 1 and config.share_mode is None:
        raise SettingError("num_shared_groups", groups, "needs a sharing type (share_mode 'attention' or 'attention_ffn')")
    # the widest rank a correction of every shared dense layer can have: min(in, out) over them
    limit = config.hidden_size
    if config.share_mode != "attention":  # the feed-forward layers are H×I and I×H
        limit = min(config.hidden_size, config.intermediate_size)
    if not isinstance(delta, int) or not 0 <= delta <= limit:
        raise SettingError("share_delta_rank", delta, f"must be an integer between 0 and min(in, out)={limit}")
    if delta and config.share_mode is None:
        raise SettingError("share_delta_rank", delta, "needs a sharing type (share_mode 'attention' or 'attention_ffn')")
    if config.share_delta_init not in (None,) + SHARE_DELTA_INITS:
        raise SettingError("share_delta_init", config.share_delta_init, f"is not one of {SHARE_DELTA_INITS}")
    rows = getattr(config, "embedding_rows", None)  # run_ner_compress checks a plain BertConfig given the other fields
    if rows is not None and (not isinstance(rows, int) or not 1 <= rows <= config.vocab_size):
        raise ValueError(f"embedding_rows={rows!r} must be an integer between 1 and vocab_size={config.vocab_size} "
                         "(or None: one row per token id)")
    for name, rank in (config.low_rank_ranks or {}).items():
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"low_rank_ranks[{name!r}]={rank!r} must be a positive integer")


def check_preset(config_class, settings: dict, owner: str | None = None) -> None:
    """Refuse, in a preset, a setting of another method: ``settings`` maps names of METHOD_SETTINGS to values."""
    own = config_class.preset_method
    if own is None:
        return
    for method, defaults in METHOD_SETTINGS.items():
        for name, off in defaults.items():
            value = settings.get(name, off)
            if method != own and value != off and value != {}:
                raise ValueError(
                    f"{owner or config_class.__name__}: {name}={value!r} belongs to {method}, but a "
                    f"{config_class.model_type!r} model holds {own} only, so that its model_type says what it is; "
                    "combine methods with CompressedBertForTokenClassification (model_type 'compressed_bert')"
                )


class FactorizedBertConfig(CompressedBertConfig):
    """Factorized word embeddings (ALBERT's E), by default E=128; no other method."""

    model_type = "factorized_bert"
    preset_method = "factorized_embeddings"
    embedding_size: int | None = DEFAULT_EMBEDDING_SIZE


class SharedBertConfig(CompressedBertConfig):
    """Cross-layer parameter sharing (with groups, relaxed sharing); by default one whole layer applied N times."""

    model_type = "shared_bert"
    preset_method = "shared_layers"
    share_mode: str | None = "attention_ffn"


class LowRankBertConfig(CompressedBertConfig):
    """Encoder dense layers as low-rank pairs; the ranks are set when converting a source model."""

    model_type = "low_rank_bert"
    preset_method = "low_rank"
