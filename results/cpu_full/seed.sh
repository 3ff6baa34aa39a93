#!/bin/bash
# A second seed (43) of best10_shared_pos_hlr_tr, from the same teacher and the same cached Reuters predictions,
# started when best10_shared_pos_hlr_7ep had finished (two threads; the cap keeps it inside the session).
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2
cd /work/main
D=/work/shared/data/conll2003
mkdir -p /work/cpu_run/full_seed43 && ln -sfn /work/cpu_run/full/teacher /work/cpu_run/full_seed43/teacher
while [ ! -f /work/cpu_run/full/best10_shared_pos_hlr_7ep/results.json ]; do sleep 10; done
date
python benchmarks/compare.py --output_dir /work/cpu_run/full_seed43 --seed 43 \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt --epochs 4 --learning_rate 2e-4 \
    --rows best10_shared_pos_hlr_tr \
    --transfer_file /work/shared/data/reuters21578/sentences.txt.gz --max_transfer_samples 60000 \
    --extra "--disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1 --max_train_seconds 3900"
echo "exit $?"
date
