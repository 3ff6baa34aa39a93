#!/usr/bin/env bash
# Issues 14 and 15 on a borrowed GPU, as ONE device command that ends by itself before DEADLINE seconds (default 520;
# give the device call timeout_s 600). The device budget is 15 minutes in all, machine start included, so there is
# room for one such call. Run it as `bash benchmarks/gpu_transfer.sh` (no pipe: its own log is tee'd to $OUT/log.txt,
# and $OUT/runs.tgz is refreshed every 30 s, so a run cut short still brings back every finished row).
#
# What it runs, in this order:
#   1. the teacher (all-MiniLM-L6-v2 fine-tuned TEACHER_EPOCHS on CoNLL-2003), alone;
#   2. teacher_pruned: the teacher with its vocabulary pruned to the training split's pieces (the students' vocabulary),
#      and reuters_vocab/teacher_pruned, pruned to train + Reuters pieces; both evaluated (the pruning costs);
#   3. at once, three groups, every row with the same --max_train_seconds cap (computed from what is left):
#      - the no-transfer rows (the baselines of issue 14 and the sharing rows of issue 15);
#      - the transfer rows (same labelled epochs, a transfer batch on top), once both teachers' predictions on the
#        Reuters text are cached;
#      - the 2,000-sentence sharing sweep (benchmarks/sweep_sharing.py), stopped at the deadline;
#   4. the tables (RESULTS.md, sweep.csv/png) and run_ner_predict --device cuda on one saved row.
# Setup and the .gpu/ layout: gpu_setup.sh. Sizes: EPOCHS (4), TEACHER_EPOCHS (4), PARALLEL (16), SWEEP_PARALLEL (4),
# SWEEP_EPOCHS (6), DEADLINE (520), ROWS, SWEEP_POINTS. SMOKE=1: a CPU dry run with $DATA and $COMMON set by hand.
set -uo pipefail
start=$(date +%s)
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/transfer}
mkdir -p "$OUT" "$WORK/logs"
exec > >(tee -a "$OUT/log.txt") 2>&1
elapsed() { echo "== $1 at $(( $(date +%s) - start )) s"; }
left() { echo $(( ${DEADLINE:-520} - ($(date +%s) - start) )); }
if [ -z "${SMOKE:-}" ]; then source benchmarks/gpu_setup.sh; fi
python3 -c "import run_ner_compress, benchmarks.compare, trainers.transfer" || { echo "imports fail"; exit 1; }
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

# 2. The pruned teacher (train + Reuters pieces), evaluated; the sweep starts beside it.
python3 benchmarks/sweep_sharing.py --output_dir "$WORK/sweep" \
    --teacher_dir "$WORK/teacher" $DATA --parallel "${SWEEP_PARALLEL:-4}" --epochs "${SWEEP_EPOCHS:-6}" \
    --extra "${SWEEP_EXTRA:---tf32 True --disable_tqdm True}" \
    --points "${SWEEP_POINTS:-sweep_e64_g1_r0,sweep_e64_g2_r0,sweep_e64_g3_r0,sweep_e128_g1_r0,sweep_e128_g2_r0,sweep_e64_g1_r8_zero,sweep_e64_g1_r8_svd,sweep_e64_g1_r32_zero,sweep_e64_g1_r32_svd,sweep_e64_g2_r8_zero,sweep_lr_e64_r16,sweep_lr_e64_r48,sweep_lr_e128_r48,sweep_e128_g3_r0,sweep_e64_g2_r8_svd,sweep_lr_e64_r32}" \
    > "$WORK/logs/sweep.log" 2>&1 &
sweep=$!
# At the deadline the sweep stops, its points in training too (timeout alone would leave them running).
(sleep $(( $(left) - 20 )); pkill -f sweep_sharing.py; pkill -f "$WORK/sweep/") > /dev/null 2>&1 &
watchdog=$!
# The students' pruned vocabulary keeps the training split's pieces (16,000 on CoNLL-2003), as in results/RESULTS.md:
# with the Reuters pieces too (22,088) the 5x and 10x rows would fall below 5x and 10x. What pruning costs with the
# Reuters pieces kept is measured beside it, on the same teacher, in reuters_vocab/.
python3 benchmarks/compare.py --output_dir "$WORK" $DATA --rows teacher_pruned --extra "$COMMON"
mkdir -p "$WORK/reuters_vocab" && ln -sfn "$WORK/teacher" "$WORK/reuters_vocab/teacher"
python3 benchmarks/compare.py --output_dir "$WORK/reuters_vocab" $DATA $TR --rows teacher_pruned --extra "$COMMON" \
    > "$WORK/logs/reuters_vocab.log" 2>&1 &
reuters=$!
elapsed "pruned teacher done"

# 3. Every row gets the same training cap: what is left, less the transfer cache (CACHE_S) and evaluation (MARGIN_S).
cap=$(( $(left) - ${CACHE_S:-45} - ${MARGIN_S:-75} ))
[ "$cap" -ge 30 ] || cap=30
echo "row training cap: $cap s"
caches=()
for source in teacher teacher_vocab; do
    python3 -m trainers.transfer --teacher "$WORK/$source" $TR --max_seq_length 256 > "$WORK/logs/cache_$source.log" 2>&1 &
    caches+=($!)
done
EPOCHS_FLAGS="--epochs ${EPOCHS:-4} --learning_rate 2e-4 --parallel ${PARALLEL:-16}"
python3 benchmarks/compare.py --output_dir "$WORK" $DATA $EPOCHS_FLAGS \
    --rows "${ROWS:-best_low_rank,best10_low_rank,shared_e64_kd,best_full_vocab,shared_attn_kd,shared_ffn_kd,best10_shared_g,best_shared_relaxed}" \
    --extra "$COMMON --max_train_seconds $cap" > "$WORK/logs/compare_base.log" 2>&1 &
base=$!
wait "${caches[@]}"
tail -n 1 "$WORK"/logs/cache_*.log
elapsed "transfer caches ready"
python3 benchmarks/compare.py --output_dir "$WORK" $DATA $TR $EPOCHS_FLAGS \
    --rows "${TR_ROWS:-best_low_rank_tr,best10_low_rank_tr,shared_e64_kd_tr,best_shared_tr,best10_shared_g_tr}" \
    --extra "$COMMON --max_train_seconds $cap" > "$WORK/logs/compare_tr.log" 2>&1
elapsed "transfer rows done"
wait $base $reuters
elapsed "baseline rows done"
grep -h "done in\|failed" "$WORK"/logs/compare_*.log "$WORK"/logs/reuters_vocab.log
grep -A4 "^| method" "$WORK/reuters_vocab/RESULTS.md"
python3 benchmarks/compare.py --output_dir "$WORK" --table_only | grep -v "^ *$"
cp "$WORK"/RESULTS.md "$WORK"/results.png "$OUT"/ 2>/dev/null
snapshot

# 4. The sweep (cut at the deadline), and the prediction command on the GPU.
wait $sweep
elapsed "sweep done or stopped"
python3 benchmarks/sweep_sharing.py --output_dir "$WORK/sweep" --table_only 2>&1 | tail -20
cp "$WORK"/sweep/sweep.png "$OUT"/ 2>/dev/null
for row in best_low_rank shared_e64_kd_tr; do
    [ -f "$WORK/$row/results.json" ] || continue
    timeout 45 python3 run_ner_predict.py --model "$WORK/$row" --input "${TEST_FILE:-/tmp/data/test.txt}" \
        --format conll --output "$WORK/$row/predict_test.conll" --device "${PREDICT_DEVICE:-cuda}" 2>&1 | tail -3
    python3 -c "import json,sys; print('$row results.json test_f1', json.load(open('$WORK/$row/results.json'))['test_f1'])"
    break
done
snapshot
elapsed "all done"
