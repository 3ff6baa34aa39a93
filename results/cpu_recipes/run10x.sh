#!/bin/bash
# --recipe 10x as a user types it, from the CPU teacher (teacher.sh), with the Reuters transfer set (60,000 sentences).
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
cd /work/runs/frozen
D=/work/shared/data/conll2003
date
python run_ner_compress.py --recipe 10x --model_name_or_path /work/cpu_run/full/teacher \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --transfer_file /work/shared/data/reuters21578/sentences.txt.gz --max_transfer_samples 60000 \
    --per_device_eval_batch_size 64 --disable_tqdm True --logging_steps 100 --max_train_seconds 3900 \
    --output_dir /work/cpu_run/recipes/recipe_10x
echo "exit $?"
date
