#!/bin/bash
# The 10x row best10_shared_pos_hlr against (a) the transfer set at ratio 1 on a 60,000-sentence Reuters pool,
# same 4 labelled epochs, and (b) 7 labelled epochs without transfer text, about the same wall time.
# Run from the 4-epoch CPU teacher of teacher.sh; two rows at once, one thread each.
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
cd /work/main
D=/work/shared/data/conll2003
COMMON=(--output_dir /work/cpu_run/full --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt
        --epochs 4 --learning_rate 2e-4)
EXTRA="--disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1"
date
python benchmarks/compare.py "${COMMON[@]}" --rows best10_shared_pos_hlr_7ep \
    --extra "$EXTRA --max_train_seconds 5700" > /work/cpu_run/full/long_run.log 2>&1 &
python benchmarks/compare.py "${COMMON[@]}" --rows best10_shared_pos_hlr_tr \
    --transfer_file /work/shared/data/reuters21578/sentences.txt.gz --max_transfer_samples 60000 \
    --extra "$EXTRA --max_train_seconds 5400" > /work/cpu_run/full/transfer_run.log 2>&1
echo "transfer exit $?"
wait
echo "long exit $?"
date
