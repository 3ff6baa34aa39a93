#!/bin/bash
# A new user's path, timed: clone, the README's install lines, the quickstart, the first run_ner_predict.
# Usage: bash benchmarks/clone_to_prediction.sh [REPO (default: this checkout)]; the scratch clone is removed.
set -euo pipefail
t0=$(date +%s)
src=$(cd "${1:-$(dirname "$0")/..}" && pwd)
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT  # the venv holds torch: about 2 GB
git clone -q "$src" $d/repo; cd $d/repo
t1=$(date +%s)
python3 -m venv .venv && source .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ./serve -e ".[dev]"
t2=$(date +%s)
HF_HUB_OFFLINE=1 python run_ner_compress.py --quickstart --model_type shared_ffn > quickstart.log 2>&1
t3=$(date +%s)
printf 'Mara Velden joined Norvane Bank in Port Aldane last Monday .\nShares in Helix Motors rose after Kofi Mensa spoke in Carrow .\n' > my_news.txt
HF_HUB_OFFLINE=1 run_ner_predict --model quickstart_out/shared_ffn --input my_news.txt --output quickstart_out/entities.jsonl
t4=$(date +%s)
head -c 400 quickstart_out/entities.jsonl; echo
echo "clone $((t1-t0)) s, install $((t2-t1)) s, quickstart $((t3-t2)) s, first prediction $((t4-t3)) s, total $((t4-t0)) s"
