#!/usr/bin/env bash
# Issues 13-15 on a borrowed GPU, meant for one ~9-minute command (the device budget is 15 minutes in all).
# Not yet seen to finish: its one full try on an H100 (2026-11-26) was killed at the 600 s limit with nothing printed
# (grep then buffered its output; it now flushes each line). Give it a device call of its own, run it with
# `2>&1 | tee $OUT/run_log.txt`, and cut ROWS / SWEEP_POINTS first if a try runs long.
#   - the transfer-set rows (Reuters text labelled by the teacher) beside their no-transfer baselines, trained side by
#     side with the same labelled epochs, steps and time cap;
#   - the sharing rows re-measured with the layer:1 start, the >= 9.5x sharing recipe and relaxed sharing;
#   - the sharing sweep (benchmarks/sweep_sharing.py, the 2,000-sentence protocol);
#   - two more seeds of the 5x transfer row (benchmarks/seed_spread.py reads them);
#   - the pruning cost with the Reuters text (the teacher_pruned row keeps train + Reuters pieces).
# Setup and the .gpu/ layout: gpu_setup.sh. Sizes: EPOCHS (6), ROW_SECONDS (270), SWEEP_EPOCHS (6), PARALLEL (16).
set -uo pipefail
WORK=${WORK:-/tmp/transfer}
mkdir -p "$WORK/logs"
if [ -z "${SMOKE:-}" ]; then source benchmarks/gpu_setup.sh; fi  # SMOKE=1: a CPU dry run with $DATA etc. set by hand
R=${TRANSFER_FILE:-$PWD/.gpu/reuters.txt.gz}
DATA="$DATA ${LIMITS:-}"  # e.g. LIMITS="--max_train_samples 64" for a smoke run
TR="--transfer_file $R ${TRANSFER_SAMPLES:+--max_transfer_samples $TRANSFER_SAMPLES}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # 30-odd processes share 16 cores
export HF_HOME=$WORK/hf  # the transfer cache goes under it, shared by every run below
start=$(date +%s)
elapsed() { echo "$1 at $(( $(date +%s) - start )) s"; }
python3 benchmarks/compare.py --output_dir "$WORK" --model_name_or_path /tmp/minilm $DATA --rows teacher \
    --teacher_epochs "${TEACHER_EPOCHS:-4}" --teacher_learning_rate 1e-4 --extra "$COMMON" 2>&1 | grep --line-buffered -v "^ *$"
elapsed "teacher done"
# The sweep needs only the teacher: it starts now, beside the rest.
python3 benchmarks/sweep_sharing.py --output_dir "$WORK/sweep" --teacher_dir "$WORK/teacher" $DATA \
    --parallel "${PARALLEL:-16}" --epochs "${SWEEP_EPOCHS:-6}" --extra "${SWEEP_EXTRA:---tf32 True --disable_tqdm True}" \
    --points "${SWEEP_POINTS:-sweep_e64_g1_r0,sweep_e64_g2_r0,sweep_e64_g3_r0,sweep_e128_g1_r0,sweep_e128_g2_r0,sweep_e128_g3_r0,sweep_e64_g1_r8_svd,sweep_e64_g1_r8_zero,sweep_e64_g1_r32_svd,sweep_e64_g1_r32_zero,sweep_e64_g2_r8_svd,sweep_e64_g2_r8_zero,sweep_lr_e64_r16,sweep_lr_e64_r32,sweep_lr_e64_r48,sweep_lr_e128_r48}" \
    > "$WORK/logs/sweep.log" 2>&1 &
sweep=$!
# The pruned teacher (train + Reuters pieces) and the teacher predictions on the transfer set, once for all runs.
python3 benchmarks/compare.py --output_dir "$WORK" $DATA $TR --rows teacher_pruned \
    --extra "$COMMON" 2>&1 | grep --line-buffered -v "^ *$"
python3 -m trainers.transfer --teacher "$WORK/teacher" $TR --max_seq_length 256 2>&1 | tail -2
python3 -m trainers.transfer --teacher "$WORK/teacher_vocab" $TR --max_seq_length 256 2>&1 | tail -2
elapsed "pruned teacher and transfer cache ready"
# Two more seeds of the 5x transfer row, each in its own comparison folder that shares the teachers.
for seed in 43 44; do
    mkdir -p "$WORK/spread/seed$seed"
    ln -sfn "$WORK/teacher" "$WORK/spread/seed$seed/teacher"
    ln -sfn "$WORK/teacher_vocab" "$WORK/spread/seed$seed/teacher_vocab"
    python3 benchmarks/compare.py --output_dir "$WORK/spread/seed$seed" $DATA $TR \
        --rows best_low_rank_tr --seed $seed --epochs "${EPOCHS:-6}" --learning_rate 2e-4 \
        --extra "$COMMON --max_train_seconds ${ROW_SECONDS:-270}" > "$WORK/logs/seed$seed.log" 2>&1 &
done
python3 benchmarks/compare.py --output_dir "$WORK" $DATA $TR --parallel "${PARALLEL:-16}" \
    --rows "${ROWS:-best_low_rank,best_low_rank_tr,best10_low_rank,best10_low_rank_tr,best_full_vocab,best_shared_tr,shared_attn,shared_ffn,shared_attn_kd,shared_ffn_kd,best,best10_shared_g,best10_shared_g_tr,best_shared_relaxed}" \
    --epochs "${EPOCHS:-6}" --learning_rate 2e-4 --extra "$COMMON --max_train_seconds ${ROW_SECONDS:-270}" \
    2>&1 | grep --line-buffered -v "^ *$"
elapsed "rows done"
cp "$WORK"/RESULTS.md "$OUT"/ 2>/dev/null  # the main table comes back even if what follows runs out of time
wait
elapsed "sweep and seeds done"
mkdir -p "$WORK/spread/seed42" && ln -sfn "$WORK/teacher" "$WORK/spread/seed42/teacher" && \
    ln -sfn "$WORK/best_low_rank_tr" "$WORK/spread/seed42/best_low_rank_tr"
python3 benchmarks/seed_spread.py --output_dir "$WORK/spread" --row best_low_rank_tr $DATA $TR 2>&1 | tail -8
python3 benchmarks/sweep_sharing.py --output_dir "$WORK/sweep" --table_only 2>&1 | tail -30
# At most 8 files come back from the device: the tables and figures, and everything else in one archive.
cp "$WORK"/RESULTS.md "$WORK"/results.png "$WORK"/sweep/sweep.png "$WORK"/spread/SEED_SPREAD.md "$OUT"/ 2>/dev/null
tar czf "$OUT/runs.tgz" -C "$WORK" $(cd "$WORK" && ls -d results.csv */results.json */README.md logs sweep/sweep.csv \
    sweep/*/results.json sweep/logs spread/seed_spread.json spread/seed4[34]/best_low_rank_tr/results.json 2>/dev/null)
elapsed "all done"
