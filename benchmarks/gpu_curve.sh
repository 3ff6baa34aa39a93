#!/usr/bin/env bash
# Issue 27's curve (2x to 30x, planned by --target_ratio, beside --recipe 5x and --recipe 10x), the seed spreads at
# 10x and 20x (3 seeds each with results/cpu_full's two 10x seeds), and issue 24's --target_ratio 8 row (curve_8x),
# all on ONE teacher, in one borrowed-GPU window: benchmarks/gpu_transfer.sh with these rows (its setup, deadline,
# snapshots and .gpu/ layout: gpu_setup.sh). The transfer pool is the 60,000 Reuters sentences of the CPU's 10x rows,
# so the 10x rows compare with theirs. Every row is trained under the same --max_train_seconds cap, computed from
# what is left of DEADLINE; a row stopped by it says so in its results.json (stopped_at_time_budget).
#
#   bash benchmarks/gpu_curve.sh                 # on the device, timeout_s 600
#   python benchmarks/headline.py --output_dir /tmp/transfer --table_only ...   # then, on its folders
set -uo pipefail
export ROWS=${ROWS:-best_shared_tr,best10_shared_pos_hlr_tr,best10_shared_pos_hlr_tr_s44,curve_2x,curve_8x,curve_15x,curve_20x,curve_20x_s43,curve_20x_s44,curve_30x}
export TRANSFER_SAMPLES=${TRANSFER_SAMPLES:-60000}
exec bash "$(dirname "$0")/gpu_transfer.sh"
