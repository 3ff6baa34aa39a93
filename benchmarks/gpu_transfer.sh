#!/usr/bin/env bash
# Issues 14 and 15 on a borrowed GPU, as ONE device command that ends by itself before DEADLINE seconds (default 520;
# give the device call timeout_s 600). The device budget is 15 minutes in all, machine start included, so there is
# room for one such call. Run it as `bash benchmarks/gpu_transfer.sh` (no pipe: its own log is tee'd to $OUT/log.txt,
# and $OUT/runs.tgz is refreshed every 30 s, so a run cut short still brings back every finished row).
#
# What it runs, in this order:
#   1. the teacher (all-MiniLM-L6-v2 fine-tuned TEACHER_EPOCHS on CoNLL-2003), alone;
#   2. at once: when a chosen row starts from it, teacher_pruned (the teacher with the training split's pieces only:
#      the students' vocabulary; its F1 is the pruning cost), the predictions on the Reuters text of the teacher (and
#      of teacher_pruned), cached for every transfer row, and with REUTERS_PRUNE=1 the cost of pruning to train +
#      Reuters pieces (reuters_vocab/);
#   3. every row at once (ROWS: the transfer rows beside their no-transfer baselines, same labelled epochs), each
#      with the same --max_train_seconds cap, computed from what is left; with SWEEP_POINTS, the 2,000-sentence
#      sharing sweep beside them, stopped at the deadline;
#   4. the tables and run_ner_predict --device cuda on one saved row.
# Run 2 (results/gpu_h100/README.md) ran the sweep and the sharing rows. Run 3's default rows: the two rows run 2
# chose (best_shared_relaxed at 5x, best10_shared_g at 10x), the shared row (best_full_vocab) and run 1's chosen 5x
# row (best_low_rank), each with and without the transfer set, and the 10x row at --transfer_ratio 2: run 3,
# results/gpu_h100/run3 (DEADLINE=545; caches ready at 199 s, the nine rows done by 582 s, none at the cap).
# The default rows now are the next run's, all 10x students built from the full teacher with their own table pruned
# (--prune_student_vocab, nearest), so no pruned teacher is made: best10_shared_nv at run 3's lr 2e-4 and at the lr
# the CPU chose (1e-3, results/history/cpu_transfer/lr_10x.md), and best10_shared_pos_hlr (positions factorized at 16, rank
# 120), each with and without the transfer set at ratio 2.
# There, caching the Reuters predictions took 123 s while 13 rows shared the CPU: here it runs before the rows.
# Setup and the .gpu/ layout: gpu_setup.sh. Sizes: EPOCHS (4), TEACHER_EPOCHS (4), PARALLEL (16), DEADLINE (520),
# ROWS, SWEEP_POINTS (none), SWEEP_PARALLEL (4), SWEEP_EPOCHS (6). SMOKE=1: a CPU dry run with $DATA and $COMMON set
# by hand.
set -uo pipefail
start=$(date +%s)
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/transfer}
mkdir -p "$OUT" "$WORK/logs"
exec > >(tee -a "$OUT/log.txt") 2>&1
elapsed() { echo "== $1 at $(( $(date +%s) - start )) s"; }
left() { echo $(( ${DEADLINE:-520} - ($(date +%s) - start) )); }
if [ -z "${SMOKE:-}" ]; then source benchmarks/gpu_setup.sh; fi
python3 -c "import run_ner_compress, benchmarks.compare, trainers.cache_transfer" || { echo "imports fail"; exit 1; }
elapsed "setup done"

snapshot() {  # what has finished so far, into $OUT (at most 8 files come back from the device)
    (cd "$WORK" && tar czf "$OUT/runs.tgz.part" $(ls -d */results.json */README.md logs RESULTS.md results.csv \
        sweep/*/results.json sweep/logs reuters_vocab/*/results.json 2>/dev/null) 2>/dev/null && mv "$OUT/runs.tgz.part" "$OUT/runs.tgz")
}
(while sleep 30; do snapshot; done) > /dev/null 2>&1 &
snapshots=$!
trap 'kill $snapshots ${watchdog:-} 2>/dev/null' EXIT  # no helper outlives the script, holding its output open

R=${TRANSFER_FILE:-$PWD/.gpu/reuters.txt.gz}
DATA="$DATA ${LIMITS:-}"  # e.g. LIMITS="--max_train_samples 64" for a smoke run
TR="--transfer_file $R ${TRANSFER_SAMPLES:+--max_transfer_samples $TRANSFER_SAMPLES}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # 20-odd processes share 16 cores
export HF_HOME=$WORK/hf  # the transfer cache goes under it, shared by every run below

# 1. The teacher.
python3 benchmarks/compare.py --output_dir "$WORK" --model_name_or_path "${BASE_MODEL:-/tmp/minilm}" $DATA \
    --rows teacher --teacher_epochs "${TEACHER_EPOCHS:-4}" --teacher_learning_rate 1e-4 --extra "$COMMON"
elapsed "teacher done"
[ -f "$WORK/teacher/results.json" ] || { echo "no teacher"; snapshot; exit 1; }

# 2. The Reuters predictions of the teacher and, when a chosen row starts from it, the students' pruned teacher
# (train pieces only: with the Reuters pieces too the 5x and 10x rows would fall below 5x and 10x) and its
# predictions, before any row starts.
ROWS=${ROWS:-best10_shared_nv,best10_shared_nv_tr2,best10_shared_nv_hlr,best10_shared_nv_hlr_tr2,best10_shared_pos_hlr,best10_shared_pos_hlr_tr2}
needs_pruned=$(python3 -c "import sys; from benchmarks.compare_rows import PRUNED, ROWS
print(int(any(row.source == PRUNED and row.name in sys.argv[1].split(',') for row in ROWS)))" "$ROWS")
python3 -m trainers.cache_transfer --teacher "$WORK/teacher" $TR --max_seq_length 256 > "$WORK/logs/cache_teacher.log" 2>&1 &
cache=$!
others=()
if [ -n "${REUTERS_PRUNE:-}" ]; then
    mkdir -p "$WORK/reuters_vocab" && ln -sfn "$WORK/teacher" "$WORK/reuters_vocab/teacher"
    python3 benchmarks/compare.py --output_dir "$WORK/reuters_vocab" $DATA $TR --rows teacher_pruned --extra "$COMMON" \
        > "$WORK/logs/reuters_vocab.log" 2>&1 &
    others+=($!)
fi
if [ "$needs_pruned" = 1 ]; then
    python3 benchmarks/compare.py --output_dir "$WORK" $DATA --rows teacher_pruned --extra "$COMMON" | grep "^| teacher"
    python3 -m trainers.cache_transfer --teacher "$WORK/teacher_vocab" $TR --max_seq_length 256 > "$WORK/logs/cache_teacher_vocab.log" 2>&1
fi
wait $cache
tail -qn 1 "$WORK"/logs/cache_*.log
elapsed "transfer caches (and the pruned teacher, when a row needs it) ready"

# 3. Every row at once, one training cap: what is left, less evaluation and saving (MARGIN_S).
cap=$(( $(left) - ${MARGIN_S:-75} ))
[ "$cap" -ge 30 ] || cap=30
echo "row training cap: $cap s"
if [ -n "${SWEEP_POINTS:-}" ]; then
    python3 benchmarks/sweep_sharing.py --output_dir "$WORK/sweep" --teacher_dir "$WORK/teacher" $DATA \
        --parallel "${SWEEP_PARALLEL:-4}" --epochs "${SWEEP_EPOCHS:-6}" \
        --extra "${SWEEP_EXTRA:---tf32 True --disable_tqdm True}" --points "$SWEEP_POINTS" > "$WORK/logs/sweep.log" 2>&1 &
    others+=($!)
    # At the deadline the sweep stops, its points in training too (timeout alone would leave them running).
    (sleep $(( $(left) - 20 )); pkill -f sweep_sharing.py; pkill -f "$WORK/sweep/") > /dev/null 2>&1 &
    watchdog=$!
fi
python3 benchmarks/compare.py --output_dir "$WORK" $DATA $TR --epochs "${EPOCHS:-4}" --learning_rate 2e-4 \
    --parallel "${PARALLEL:-16}" --extra "$COMMON --max_train_seconds $cap" \
    --rows "$ROWS" \
    > "$WORK/logs/compare.log" 2>&1
elapsed "rows done"
[ ${#others[@]} -eq 0 ] || wait "${others[@]}"  # (a bare wait would wait for the snapshots too) the sweep (stopped at the deadline) and the Reuters pruning, when asked for
grep -h "done in\|failed" "$WORK"/logs/compare.log "$WORK"/logs/reuters_vocab.log 2>/dev/null
python3 benchmarks/compare.py --output_dir "$WORK" --table_only | grep -v "^ *$"
cp "$WORK"/RESULTS.md "$WORK"/results.png "$OUT"/ 2>/dev/null
snapshot

# 4. The sweep's table, and the prediction command on the GPU.
if [ -n "${SWEEP_POINTS:-}" ]; then
    python3 benchmarks/sweep_sharing.py --output_dir "$WORK/sweep" --table_only 2>&1 | tail -20
    cp "$WORK"/sweep/sweep.png "$OUT"/ 2>/dev/null
fi
for row in best_low_rank best_full_vocab best10_shared_g best10_shared_nv best10_shared_nv_hlr; do
    [ -f "$WORK/$row/results.json" ] || continue
    timeout 45 python3 run_ner_predict.py --model "$WORK/$row" --input "${TEST_FILE:-/tmp/data/test.txt}" \
        --format conll --output "$WORK/$row/predict_test.conll" --device "${PREDICT_DEVICE:-cuda}" 2>&1 | tail -3
    python3 -c "import json,sys; print('$row results.json test_f1', json.load(open('$WORK/$row/results.json'))['test_f1'])"
    break
done
snapshot
elapsed "all done"
