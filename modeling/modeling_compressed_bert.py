"""Compressed BERT models for token classification: factorized embeddings, shared layers, low-rank layers.

One composition, ``CompressedBertModel``, applies whichever methods its config names; each method's building
block lives in its own module (``factorized_embeddings``, ``shared_layers``, ``low_rank``). The three registered
presets (``FactorizedBert*``, ``SharedBert*``, ``LowRankBert*``) are the same code under their own config class,
limited to their own method; ``modeling.recipes`` picks the class for a model type and its settings.

Build one from a fine-tuned or pretrained BERT:

```python
>>> student = SharedBertForTokenClassification.from_bert(teacher, share_mode="attention_ffn", num_shared_groups=2)
>>> mixed = CompressedBertForTokenClassification.from_bert(teacher, share_mode="attention_ffn", embedding_size=128)
>>> student.save_pretrained("out")  # loads back with AutoModelForTokenClassification, or trust_remote_code
```

This file is copied next to saved checkpoints for ``trust_remote_code``: it imports nothing from this project
except its sibling modules, by relative imports.
"""

from __future__ import annotations

import logging

from torch import nn
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput, TokenClassifierOutput
from transformers.models.bert.modeling_bert import BertEmbeddings, BertPreTrainedModel

from .configuration_compressed_bert import (
    DEFAULT_LOW_RANK_TARGETS,
    SHARE_DELTA_INITS,
    CompressedBertConfig,
    FactorizedBertConfig,
    LowRankBertConfig,
    SharedBertConfig,
    check_preset,
    source_settings,
)
from .factorized_embeddings import FactorizedBertEmbeddings, factorize_position_embeddings, load_embeddings_from_bert
from .indexed_embedding import index_word_embeddings
from .low_rank import replace_with_low_rank, resolve_ranks
from .shared_layers import (
    DEFAULT_SHARE_DELTA_INIT,
    DEFAULT_SHARE_INIT,
    SharedBertEncoder,
    load_shared_from_layers,
    parse_share_init,
)

logger = logging.getLogger(__name__)


class CompressedBertPreTrainedModel(BertPreTrainedModel):
    config_class = CompressedBertConfig
    _can_record_outputs = {}  # hidden states are collected by SharedBertEncoder itself
    # The loss is a plain mean: let the Trainer divide it by the gradient-accumulation steps itself.
    accepts_loss_kwargs = False

    def save_pretrained(self, save_directory, *args, **kwargs):
        # save_pretrained records only this class in auto_map; add the whole family so that AutoConfig,
        # AutoModel and AutoModelForTokenClassification all load the folder with trust_remote_code.
        base_class, head_class = _FAMILIES[self.config_class]
        self.config.auto_map = {
            "AutoConfig": f"configuration_compressed_bert.{self.config_class.__name__}",
            "AutoModel": f"modeling_compressed_bert.{base_class.__name__}",
            "AutoModelForTokenClassification": f"modeling_compressed_bert.{head_class.__name__}",
        }
        return super().save_pretrained(save_directory, *args, **kwargs)


class CompressedBertModel(CompressedBertPreTrainedModel):
    """The encoder without a head: embeddings (word and position tables maybe factorized, the word table maybe pruned
    and indexed), shared or plain layers, maybe low-rank."""

    _auto_class = "AutoModel"

    def __init__(self, config: CompressedBertConfig):
        super().__init__(config)
        self.embeddings = FactorizedBertEmbeddings(config) if config.embedding_size else BertEmbeddings(config)
        if config.embedding_rows is not None:  # K rows for the V token ids (vocabulary pruned, tokenizer kept)
            index_word_embeddings(self.embeddings, config.embedding_rows)
        if config.position_embedding_size:  # P×E position table + E×H projection
            factorize_position_embeddings(self.embeddings, config.position_embedding_size)
        self.encoder = SharedBertEncoder(config)
        if config.low_rank_ranks:
            replace_with_low_rank(self, config.low_rank_ranks, from_weights=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        output_hidden_states=None,
        return_dict=None,
        **kwargs,
    ):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        embedding_output = self.embeddings(
            input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids, inputs_embeds=inputs_embeds
        )  # (B, T, H)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=embedding_output, attention_mask=attention_mask)
        output_hidden_states = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        kwargs.pop("output_attentions", None)
        sequence_output, hidden_states = self.encoder(
            embedding_output, mask, output_hidden_states=bool(output_hidden_states), **kwargs
        )
        output = BaseModelOutput(last_hidden_state=sequence_output, hidden_states=hidden_states)
        return output if return_dict is not False else output.to_tuple()


class CompressedBertForTokenClassification(CompressedBertPreTrainedModel):
    """``CompressedBertModel`` with BERT's token-classification head (``dropout``, ``classifier``)."""

    _auto_class = "AutoModelForTokenClassification"
    base_model_class = CompressedBertModel

    def __init__(self, config: CompressedBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = self.base_model_class(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
        **kwargs,
    ):
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1), ignore_index=-100)
        output = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return output if return_dict is not False else output.to_tuple()

    @classmethod
    def from_bert(
        cls,
        source: nn.Module,
        *,
        embedding_size: int | None = None,
        position_embedding_size: int | None = None,
        share_mode: str | None = None,
        share_init: str = DEFAULT_SHARE_INIT,
        rank: int | None = None,
        rank_energy: float | None = None,
        target_modules=DEFAULT_LOW_RANK_TARGETS,
        num_shared_groups: int = 1,
        share_delta_rank: int = 0,
        share_delta_init: str = DEFAULT_SHARE_DELTA_INIT,
    ) -> "CompressedBertForTokenClassification":
        """Build the compressed model from a ``BertModel`` or ``BertForTokenClassification``.

        Settings left at None take the preset's default (``SharedBert*`` shares attention+FFN, ``FactorizedBert*``
        uses E=128); a preset refuses the settings of another method (combine them with this class).
        ``position_embedding_size`` factorizes the position table as ``embedding_size`` does the word table.
        ``num_shared_groups`` and ``share_delta_rank`` (relaxed sharing, started by ``share_delta_init``) need a
        sharing type. Every source tensor is copied, decomposed or deliberately dropped; anything else is an error.
        """
        config = cls._config_from_bert(
            source, embedding_size=embedding_size, position_embedding_size=position_embedding_size,
            share_mode=share_mode, share_init=share_init, rank=rank,
            rank_energy=rank_energy, num_shared_groups=num_shared_groups, share_delta_rank=share_delta_rank,
            share_delta_init=share_delta_init)
        source_bert = getattr(source, "bert", source)
        model = cls(config)

        source_state = source.state_dict()
        prefix = "bert." if source_bert is not source else ""
        used = set()
        # Embeddings: copied, or (word and position tables) factorized by SVD.
        used |= {"embeddings." + k for k in load_embeddings_from_bert(model.bert.embeddings, source_bert.embeddings)}
        # Encoder layers: copied, averaged into a shared module, or one chosen layer (per group) shared.
        source_layers = list(source_bert.encoder.layer)
        used_layers, dropped_layers = load_shared_from_layers(
            model.bert.encoder, source_layers, share_init, share_delta_init)
        used |= {"encoder.layer." + k for k in used_layers}
        used = {prefix + k for k in used}
        # The classification head, when the source has one with the same labels.
        if hasattr(source, "classifier") and source.classifier.out_features == config.num_labels:
            model.classifier.load_state_dict(source.classifier.state_dict())
            used |= {"classifier.weight", "classifier.bias"}
        dropped = {k for k in source_state if ".pooler." in "." + k or k.startswith("classifier.")}
        # the shared part of the layers not chosen for sharing (per group) is deliberately left out
        dropped |= {f"{prefix}encoder.layer.{k}" for k in dropped_layers}
        unaccounted = set(source_state) - used - dropped
        if unaccounted:
            raise RuntimeError(f"source tensors neither used nor deliberately dropped: {sorted(unaccounted)}")
        # Layer factorization last, on the already-filled weights (shared ones included).
        if rank is not None or rank_energy is not None:
            ranks = resolve_ranks(model.bert, target_modules, rank=rank, energy=rank_energy)
            replace_with_low_rank(model.bert, ranks, from_weights=True)
            config.low_rank_ranks = ranks
        logger.info("built %s (%s) from %s", cls.__name__, ", ".join(config.compression_methods) or "no compression",
                    type(source).__name__)
        return model

    @classmethod
    def _config_from_bert(cls, source: nn.Module, *, embedding_size, position_embedding_size, share_mode, share_init,
                          rank, rank_energy,
                          num_shared_groups, share_delta_rank, share_delta_init) -> CompressedBertConfig:
        """The source's config plus the compression settings, checked before any weight is touched."""
        if getattr(getattr(source, "config", None), "model_type", None) != "bert":
            raise ValueError(
                f"the source model must be a BERT (model_type 'bert'), got {type(source).__name__} "
                f"with model_type={getattr(getattr(source, 'config', None), 'model_type', None)!r}"
            )
        check_preset(cls.config_class, dict(embedding_size=embedding_size, position_embedding_size=position_embedding_size,
                                            share_mode=share_mode, rank=rank,
                                            rank_energy=rank_energy, num_shared_groups=num_shared_groups,
                                            share_delta_rank=share_delta_rank), owner=f"{cls.__name__}.from_bert")
        if cls.config_class.preset_method == "low_rank" and rank is None and rank_energy is None:
            raise ValueError(f"{cls.__name__}.from_bert needs rank=... or rank_energy=...")
        settings = {}
        if embedding_size is not None:
            settings["embedding_size"] = embedding_size
        if position_embedding_size is not None:
            settings["position_embedding_size"] = position_embedding_size
        if share_mode is not None:
            settings["share_mode"] = share_mode
        settings.update(num_shared_groups=num_shared_groups, share_delta_rank=share_delta_rank)
        if share_delta_rank:
            if share_delta_init not in SHARE_DELTA_INITS:
                raise ValueError(f"share_delta_init={share_delta_init!r} is not one of {SHARE_DELTA_INITS}")
            settings["share_delta_init"] = share_delta_init
        config = cls.config_class(**source_settings(source.config), **settings)
        if config.share_mode is not None:
            parse_share_init(share_init, config.num_hidden_layers // config.num_shared_groups)  # K within a run
            config.share_init = share_init
        return config


class FactorizedBertModel(CompressedBertModel):
    config_class = FactorizedBertConfig


class FactorizedBertForTokenClassification(CompressedBertForTokenClassification):
    """Factorized word embeddings (V×E and E×H, SVD-initialized): ``from_bert(model, embedding_size=128)``."""

    config_class = FactorizedBertConfig
    base_model_class = FactorizedBertModel


class SharedBertModel(CompressedBertModel):
    config_class = SharedBertConfig


class SharedBertForTokenClassification(CompressedBertForTokenClassification):
    """Shared encoder layers: ``from_bert(model, share_mode="attention")`` or ``share_mode="attention_ffn"``."""

    config_class = SharedBertConfig
    base_model_class = SharedBertModel


class LowRankBertModel(CompressedBertModel):
    config_class = LowRankBertConfig


class LowRankBertForTokenClassification(CompressedBertForTokenClassification):
    """Low-rank encoder dense layers: ``from_bert(model, rank=64)`` or ``from_bert(model, rank_energy=0.9)``."""

    config_class = LowRankBertConfig
    base_model_class = LowRankBertModel


_FAMILIES = {
    CompressedBertConfig: (CompressedBertModel, CompressedBertForTokenClassification),
    FactorizedBertConfig: (FactorizedBertModel, FactorizedBertForTokenClassification),
    SharedBertConfig: (SharedBertModel, SharedBertForTokenClassification),
    LowRankBertConfig: (LowRankBertModel, LowRankBertForTokenClassification),
}
