"""What a recipe or a budget sets: ``--recipe NAME``, ``--target_ratio``/``--target_params`` and the recipe of a bare
model type, each setting unless its flag was given (``modeling.recipes`` is the one table; ``modeling.planner``
plans a budget's sizes for the source's shape).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace

from transformers import AutoConfig

from export.vocab_pruning import corpus_vocabulary
from modeling import planner, recipes

from .arguments import RunArguments

logger = logging.getLogger("run_ner_compress")

# Flags that fix the model's size: --target_ratio / --target_params plan them, so neither is taken with them.
SIZE_FLAGS = ("embedding_size", "position_embedding_size", "num_shared_groups", "rank", "rank_energy",
              "share_delta_rank", "target_modules", "prune_student_vocab", "student_num_layers", "student_hidden_size")


def apply_recipe(args: RunArguments) -> None:
    """--recipe NAME, --target_ratio/--target_params, and the recipe of a bare model type: refuse what conflicts,
    then set each of the recipe's flags that was not given (a plan's sizes are set by ``plan_compression``, once
    the training split's pieces are counted)."""
    model, given = args.model, args.given
    model.model_type = recipes.canonical_model_type(model.model_type)
    budget = [flag for flag in ("target_ratio", "target_params") if getattr(model, flag) is not None]
    if budget and model.recipe:
        raise ValueError(f"--recipe {model.recipe} with --{budget[0]}: a recipe has its own size; give one of them")
    if budget:
        fixed = [flag for flag in SIZE_FLAGS if flag in given]
        if fixed:
            raise ValueError(f"--{budget[0]} plans --{fixed[0]}: give one or the other")
        if "model_type" in given and model.model_type != "shared_ffn":
            raise ValueError(f"--{budget[0]} plans a shared_ffn model (shared layers); drop --model_type "
                             f"{model.model_type}")
        model.model_type = "shared_ffn"
    name = model.recipe or (None if budget else recipes.BARE_RECIPE.get(model.model_type))
    if name:
        recipe = recipes.NAMED_RECIPES[name]
        if "model_type" in given and model.model_type != recipe.model_type:
            raise ValueError(f"--recipe {name} is a {recipe.model_type} model; drop --model_type {model.model_type}")
        model.model_type, model.recipe = recipe.model_type, name
        for flag, value in recipe.compression.items():
            set_unless_given(args, args.compression, flag, value)
        set_training(args, recipe.training)
    elif model.model_type == "finetune":
        set_training(args, recipes.FINETUNE_TRAINING)
    if name or budget or model.model_type == "finetune":
        select_on_validation(args)


def set_unless_given(args: RunArguments, group, flag: str, value) -> None:
    if flag not in args.given:
        setattr(group, flag, value)
        args.recipe_set[flag] = value


def set_training(args: RunArguments, training: recipes.TrainingRecipe) -> None:
    """A recipe's training settings, each unless given (a fine-tuning run takes only its schedule)."""
    distils = args.model.model_type != "finetune"
    if distils:
        set_unless_given(args, args.transfer, "transfer_ratio", training.transfer_ratio)
        for flag in ("hidden_loss_weight", "temperature", "alpha"):
            set_unless_given(args, args.training, flag, getattr(training, flag))
    set_unless_given(args, args.training, "learning_rate", training.learning_rate)
    set_unless_given(args, args.training, "num_train_epochs", training.num_train_epochs)
    ratio = args.transfer.transfer_ratio if distils and args.transfer.requested else 0
    set_unless_given(args, args.training, "per_device_train_batch_size",
                     round(training.labelled_batch_size * (1 + ratio)))


def select_on_validation(args: RunArguments) -> None:
    """The recipes' selection: evaluate and save each epoch and keep the best on validation F1. All or nothing: a
    run that sets any of these flags (or eval_steps, save_steps) chooses its own schedule; and only where there is
    validation data to choose on."""
    data = args.data
    has_validation = data.validation_file or data.quickstart or not (data.train_file or data.test_file)
    own = set(recipes.SELECTION_FLAGS) | {"eval_steps", "save_steps"}
    if not has_validation or own & args.given:
        return
    changes = dict(recipes.SELECTION_FLAGS)
    training = args.training
    kept = training.output_dir_given, training.phases_given
    args.training = replace(training, **changes)  # TrainingArguments checks and derives (greater_is_better) again
    args.training.output_dir_given, args.training.phases_given = kept
    args.recipe_set.update(changes)


def plan_compression(args: RunArguments, data, tokenizer) -> None:
    """--target_ratio / --target_params: plan the sizes for the source's shape (the rows --prune_student_vocab would
    keep counted on the training split), set them and the plan's training settings, and log the table."""
    model_args = args.model
    flag = "target_ratio" if model_args.target_ratio is not None else "target_params"
    config = AutoConfig.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    rows = None
    if data.full_train:
        rows = len(corpus_vocabulary(tokenizer, [record["tokens"] for record in data.full_train],
                                     args.post.prune_extra_texts or (), keep_top=args.post.prune_keep_top))
    try:
        chosen = planner.plan(config, target_ratio=model_args.target_ratio, target_params=model_args.target_params,
                              embedding_rows=rows, num_labels=len(data.label_list))
    except planner.BudgetError as err:
        raise ValueError(f"--{flag} {getattr(model_args, flag)}: {err}") from None
    for name, value in chosen.compression_settings().items():
        set_unless_given(args, args.compression, name, value)
    set_unless_given(args, args.compression, "prune_student_vocab", chosen.prune_student_vocab)
    set_training(args, chosen.training)
    args.plan = chosen
    logger.info("%s", chosen.table(f"--{flag} {getattr(model_args, flag)}: the plan for {model_args.model_name_or_path}"))
    # each training setting of the plan by its flag (the labelled batch is --per_device_train_batch_size's part)
    names = ["per_device_train_batch_size" if name == "labelled_batch_size" else name
             for name in asdict(chosen.training)]
    overridden = [f"--{name} {getattr(args.transfer if name == 'transfer_ratio' else args.training, name)}"
                  for name in names if name in args.given]
    if overridden:  # explicit flags win over the plan's training settings: say which, beside the table
        logger.info("--%s: given flags replace the plan's %s", flag, ", ".join(overridden))

