#!/usr/bin/env bash
# Issue 14, CPU: the transfer set's knobs chosen on validation, where the labelled data runs out: the first 2,000
# labelled sentences for 4 epochs (250 steps of 32), 1-epoch MiniLM teacher, shared_ffn E=64, KD a0.5 T2, lr 2e-4,
# seed 42; transfer pool: the first 40,000 Reuters sentences (its teacher predictions already cached).
set -u
cd /work/main
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2 HF_HOME=/work/cpu_run/hf
D=/work/shared/data/conll2003
T=/work/cpu_run/teacher
O=/work/cpu_run/knobs
R=/work/shared/data/reuters21578/sentences.txt.gz
COMMON="--model_type shared_ffn --embedding_size 64 --model_name_or_path $T --teacher_name_or_path $T --temperature 2
 --alpha 0.5 --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt --max_train_samples 2000
 --num_train_epochs 4 --learning_rate 2e-4 --eval_strategy no --save_strategy no --seed 42 --disable_tqdm True
 --logging_steps 50 --report_to none"
TR="--transfer_file $R --max_transfer_samples 40000"
run() { name=$1; shift; [ -f $O/$name/results.json ] || python run_ner_compress.py $COMMON "$@" --output_dir $O/$name > $O/$name.log 2>&1; }
run base --per_device_train_batch_size 32
run r1 $TR --transfer_ratio 1 --per_device_train_batch_size 64
run r1_ent1 $TR --transfer_ratio 1 --transfer_min_entities 1 --per_device_train_batch_size 64
run r1_w2 $TR --transfer_ratio 1 --transfer_kl_weight 2 --per_device_train_batch_size 64
run r2 $TR --transfer_ratio 2 --per_device_train_batch_size 96
echo done > $O/DONE
