#!/bin/bash
# usage: run.sh NAME LR [extra flags...]   -- the 10x nv recipe, 800 steps, CPU teacher
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
cd /work/main
NAME=$1; LR=$2; shift 2
T=/work/cpu_run/teacher; D=/work/shared/data/conll2003
python run_ner_compress.py --model_name_or_path $T --teacher_name_or_path $T --prune_student_vocab \
    --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt --output_dir /work/cpu_run/lr/$NAME \
    --model_type shared_ffn --num_shared_groups 2 --rank 96 --embedding_size 32 --hidden_loss_weight 1.0 \
    --learning_rate $LR --temperature 2 --alpha 0.5 --max_steps 800 --per_device_train_batch_size 32 \
    --eval_strategy no --save_strategy no --seed 42 --disable_tqdm True --logging_steps 100 --report_to none "$@" \
    > /work/cpu_run/lr/$NAME.log 2>&1
echo "exit $?" >> /work/cpu_run/lr/$NAME.log
