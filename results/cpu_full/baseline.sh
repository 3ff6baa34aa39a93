#!/bin/bash
# best10_shared_nv at run 3's lr 2e-4, same teacher and schedule as the two lr 1e-3 rows (started later: it was
# first started beside them at 00:07 and stopped at 00:14 to let them finish within their budget).
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
cd /work/main
D=/work/shared/data/conll2003
date
python benchmarks/compare.py --output_dir /work/cpu_run/full \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --rows best10_shared_nv --epochs 4 --learning_rate 2e-4 --parallel 1 \
    --extra "--disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1 --max_train_seconds 3000"
echo "exit $?"
date
