#!/usr/bin/env python
"""Fine-tune a BERT teacher for NER, or compress it and fine-tune (optionally distil) the compressed model.

    accelerate launch run_ner_compress.py --model_type shared_ffn          # Hub defaults: bert-base-cased, CoNLL-2003
    python run_ner_compress.py --quickstart --model_type shared_ffn         # no Hub: bundled MiniLM and demo sample
    python run_ner_compress.py --recipe 10x ...   /   --target_ratio 8 ...  # a measured recipe / a planned budget
    python run_ner_compress.py config.json                                  # every flag from a .json or .yaml file

Model types (one table, ``modeling/recipes.py``): finetune (alias teacher), factorized, shared_attn, shared_ffn,
low_rank, student. Compression flags combine (``--model_type shared_ffn --embedding_size 64`` is one model with
both). ``--model_type shared_ffn`` alone is the 5x recipe. Every compressed type distils: from
``--teacher_name_or_path``, else from ``--model_name_or_path`` when it holds a fine-tuned NER head, else from a
teacher fine-tuned first into ``<output_dir>/teacher`` (``--no_distill`` turns this off). The output directory gets the model (safetensors),
tokenizer, ``results.json`` and a model card; the model files and ``results.json`` appear only once the run has
finished.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import nullcontext

from transformers import set_seed

from cli.arguments import RunArguments
from cli.budget import plan_compression
from cli.checks import check_run
from cli.run_folder import OutputFolderLock
from cli.steps import (build_model, build_trainer, choose_phases, clear_finished_marks, default_teacher, load_data,
                       load_tokenizer, prepare_teacher, prune_student_vocabulary, save_outputs, setup_logging,
                       teacher_fine_tuning, train)
from hub_cards import push_model_folder, push_problem
from modeling import count_unique_parameters
from runtime.console import run_cli
from trainers.ner_data import tokenize_and_align
from trainers.results import RunResults

logger = logging.getLogger("run_ner_compress")


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line (or ``argv``), check it, run, push; returns what was written to results.json."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = RunArguments.from_argv(argv)
    check_run(args)  # before any model or data is loaded
    push_to_hub = args.training.push_to_hub
    if push_to_hub:
        problem = push_problem(args.training.hub_token)
        if problem:
            logger.warning("--push_to_hub: %s; the model will be saved locally, then the push will fail", problem)
        # The Trainer would create the repo before training and push at every save, with its own card: instead,
        # push the finished folder once, after everything is saved locally.
        args.training.push_to_hub = False
    main_process = args.training.process_index == 0
    with OutputFolderLock(args.training.output_dir) if main_process else nullcontext():
        results = run(args)
    if push_to_hub and main_process:
        push_model_folder(args.training.output_dir, args.training.hub_model_id, args.training.hub_token,
                          private=args.training.hub_private_repo, revision=args.training.hub_revision)
    return results


def run(args: RunArguments) -> dict:
    """One run, top to bottom: data, teacher, model, trainer, train, evaluate, predict, then save, variants, card."""
    training, output_dir = args.training, args.training.output_dir
    setup_logging(training)
    set_seed(training.seed)

    # Data and labels; which phases run; the plan of a budget
    data = load_data(args)
    choose_phases(training, data.splits)
    if args.model.target_ratio is not None or args.model.target_params is not None:
        plan_compression(args, data, load_tokenizer(args.model, None))
    # Teacher: given, the source's own head, or fine-tuned first (a run of its own)
    teacher_path = default_teacher(args)
    teacher_run = teacher_fine_tuning(args, teacher_path)
    if teacher_run is not None:
        run(teacher_run)
    teacher = prepare_teacher(args, teacher_path, data.label_list)
    # Model
    tokenizer = load_tokenizer(args.model, teacher_path)
    model, source_parameters = build_model(args.model, args.compression, data.label_list, teacher, args.recipe_set)
    if args.compression.prune_student_vocab:  # before the count: the pruned model is the one trained and saved
        model = prune_student_vocabulary(model, tokenizer, data.full_train, args.post)
    num_parameters = count_unique_parameters(model)
    logger.info("model: %s, %.2fM unique parameters (source %.2fM)", type(model).__name__, num_parameters / 1e6,
                source_parameters / 1e6)
    label2id = data.label2id
    # Plain lists of features: the Trainer takes any indexable dataset, and local files then need no `datasets`.
    features = {name: tokenize_and_align(records, tokenizer, label2id, args.data.max_seq_length,
                                         args.data.label_all_tokens, data.sources[name])
                for name, records in data.splits.items()}
    # Trainer
    trainer, transfer = build_trainer(args, model, teacher, teacher_path, tokenizer, features)
    os.makedirs(output_dir, exist_ok=True)
    if trainer.is_world_process_zero():
        clear_finished_marks(output_dir)
    # Train
    train_runtime = train(trainer, training) if training.do_train else None
    groups = {"model": args.model, "compression": args.compression, "data": args.data, "training": training}
    recipe = {"name": args.model.recipe, "set": dict(args.recipe_set),
              "plan": args.plan.to_dict() if args.plan else None}
    results = RunResults.from_run(
        model, trainer, {**groups, **({"transfer": args.transfer} if transfer else {})},
        " ".join(["run_ner_compress.py"] + args.argv), num_parameters=num_parameters,
        source_num_parameters=source_parameters, teacher_path=teacher_path,
        teacher_num_parameters=count_unique_parameters(teacher) if teacher is not None else None,
        transfer_info=transfer.info if transfer else None, train_runtime=train_runtime,
        dataset_hub_id=data.dataset_hub_id)
    if args.model.recipe or args.plan:
        results.arguments["recipe"] = recipe
    # Evaluate, predict
    if training.do_eval:
        results.add_scores("validation", trainer.evaluate(features["validation"], metric_key_prefix="validation"),
                           samples=len(features["validation"]))
    if training.do_predict:
        prediction = trainer.predict(features["test"], metric_key_prefix="test")
        results.add_scores("test", prediction.metrics, samples=len(features["test"]))
    if trainer.is_world_process_zero():
        save_outputs(args, trainer, tokenizer, data, results)
    return results.to_dict()


def cli() -> None:
    """Console entry point: known input errors become one line on stderr and exit status 2."""
    run_cli(main, "run_ner_compress")



if __name__ == "__main__":
    cli()
