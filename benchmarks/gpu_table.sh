#!/usr/bin/env bash
# The results table as measured on a borrowed GPU (H100/H200) inside a 15-minute device budget.
#
# Setup (the .gpu/ layout it needs) is in gpu_setup.sh.
# Every row is trained from scratch on the device; `--max_train_seconds` caps each compressed row's training so
# that the table always completes (results.json records epochs_trained and stopped_at_time_budget).
set -uo pipefail
WORK=${WORK:-/tmp/table}
mkdir -p "$WORK"
source benchmarks/gpu_setup.sh
start=$(date +%s)
# Phase 1: the teacher alone (every other row starts from it).
python3 benchmarks/compare.py --output_dir "$WORK" --model_name_or_path /tmp/minilm $DATA \
    --rows teacher --teacher_epochs "${TEACHER_EPOCHS:-4}" --teacher_learning_rate 1e-4 \
    --extra "$COMMON" 2>&1 | grep -v "^ *$"
echo "phase 1 took $(( $(date +%s) - start )) s"
# Phase 2: every other row at once; each one's training is capped so that all finish inside the budget.
python3 benchmarks/compare.py --output_dir "$WORK" --model_name_or_path /tmp/minilm $DATA \
    --parallel "${PARALLEL:-16}" --epochs "${EPOCHS:-6}" --learning_rate "${LR:-1e-4}" \
    --extra "$COMMON --max_train_seconds ${ROW_SECONDS:-270}" 2>&1 | grep -v "^ *$"
echo "phase 2 done at $(( $(date +%s) - start )) s"
cp "$WORK"/RESULTS.md "$WORK"/results.csv "$WORK"/results.png "$OUT"/ 2>/dev/null
tar czf "$OUT/runs.tgz" -C "$WORK" $(cd "$WORK" && ls -d */results.json */README.md logs 2>/dev/null)
timeout 60 python3 benchmarks/speed.py --device cuda --dtype bfloat16 --test_file /tmp/data/test.txt \
    --tokenizer /tmp/minilm --repeats 20 --output "$OUT/speed_gpu.md" || true
echo "all done at $(( $(date +%s) - start )) s"
