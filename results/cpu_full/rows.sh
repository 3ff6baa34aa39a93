#!/bin/bash
# The 10x rows at full scale on this CPU, from the 4-epoch teacher: lr 2e-4 (run 3's), lr 1e-3, and positions at 16 + rank 120.
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
cd /work/main
while [ ! -f /work/cpu_run/full/teacher/results.json ]; do sleep 10; done
D=/work/shared/data/conll2003
date
python benchmarks/compare.py --output_dir /work/cpu_run/full \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --rows best10_shared_nv,best10_shared_nv_hlr,best10_shared_pos_hlr --epochs 4 --learning_rate 2e-4 --parallel 3 \
    --extra "--disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1 --max_train_seconds 3700"
echo "exit $?"
date
