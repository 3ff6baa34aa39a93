#!/usr/bin/env bash
# Issue 14 on a borrowed GPU: the transfer-set rows beside their no-transfer baselines (same labelled epochs), the
# pruning cost with the Reuters text as extra corpus, and the cache's saving. Same .gpu/ layout as gpu_table.sh,
# plus .gpu/reuters.txt.gz (a copy of ../shared/data/reuters21578/sentences.txt.gz). Size it with the variables:
#   TEACHER_EPOCHS (4), EPOCHS (6), TRANSFER_SAMPLES (all), PARALLEL (8), ROW_SECONDS (none: rows run their epochs).
set -uo pipefail
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/transfer}
mkdir -p "$OUT" "$WORK" /tmp/data
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
for split in train valid test; do gunzip -c ".gpu/conll/$split.txt.gz" > "/tmp/data/$split.txt"; done
python3 - <<'PY' || exit 1
import shutil
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path(".gpu/minilm"), Path("/tmp/minilm")
dst.mkdir(exist_ok=True)
state = load_file(src / "model.fp16.safetensors")
save_file({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, dst / "model.safetensors")
for f in src.iterdir():
    if f.name != "model.fp16.safetensors":
        shutil.copy(f, dst / f.name)
PY
R=$PWD/.gpu/reuters.txt.gz
DATA="--train_file /tmp/data/train.txt --validation_file /tmp/data/valid.txt --test_file /tmp/data/test.txt"
COMMON="--tf32 True --disable_tqdm True --logging_steps 100 --load_best_model_at_end True --metric_for_best_model f1"
CAP=${ROW_SECONDS:+--max_train_seconds $ROW_SECONDS}
LIMIT=${TRANSFER_SAMPLES:+--max_transfer_samples $TRANSFER_SAMPLES}
export HF_HOME=$WORK/hf  # the transfer cache goes under it
start=$(date +%s)
python3 benchmarks/compare.py --output_dir "$WORK" --model_name_or_path /tmp/minilm $DATA --rows teacher \
    --teacher_epochs "${TEACHER_EPOCHS:-4}" --teacher_learning_rate 1e-4 --extra "$COMMON" 2>&1 | grep -v "^ *$"
echo "teacher took $(( $(date +%s) - start )) s"
# The pruned teacher (teacher_vocab) keeps the Reuters text's pieces; the cache is filled once per teacher.
python3 benchmarks/compare.py --output_dir "$WORK" --model_name_or_path /tmp/minilm $DATA --transfer_file "$R" $LIMIT \
    --rows teacher_pruned,best_low_rank,best_low_rank_tr,best10_low_rank,best10_low_rank_tr,best_full_vocab,best_shared_tr \
    --parallel "${PARALLEL:-8}" --epochs "${EPOCHS:-6}" --extra "$COMMON $CAP" 2>&1 | grep -v "^ *$"
echo "rows done at $(( $(date +%s) - start )) s"
timeout 120 python3 benchmarks/prune_curve.py --model_dir "$WORK/teacher" --train_file /tmp/data/train.txt \
    --validation_file /tmp/data/valid.txt --test_file /tmp/data/test.txt --keep_top 0 --extra_texts "$R" \
    --output "$OUT/prune_curve_reuters.md" || true
timeout 180 python3 benchmarks/transfer_cache.py --teacher "$WORK/teacher" --train_file /tmp/data/train.txt \
    --transfer_file "$R" --max_transfer_samples 20000 --max_train_samples 14041 --steps 100 --batch_size 32 \
    --output "$OUT/transfer_cache_gpu.md" || true
cp "$WORK"/RESULTS.md "$WORK"/results.csv "$WORK"/results.png "$OUT"/ 2>/dev/null
tar czf "$OUT/runs.tgz" -C "$WORK" $(cd "$WORK" && ls -d */results.json */README.md logs 2>/dev/null)
echo "all done at $(( $(date +%s) - start )) s"
