#!/bin/bash
# The docs' serve example and screenshot from a trained model ($1: a folder or .onnx file), from the checkout $2.
source /work/venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
cd "$2"
M="$1"; O=/work/cpu_run/serve_demo; mkdir -p $O
run_ner_predict --model "$M" --serve --port 8765 --batch_window_ms 0 2> $O/server.log &
pid=$!
for i in $(seq 60); do curl -s localhost:8765/health > /dev/null && break; sleep 1; done
{
echo "\$ run_ner_predict --model $M --serve --port 8765 --batch_window_ms 0"
echo "\$ curl -s localhost:8765/predict -H 'Content-Type: application/json' -d '{\"text\": \"Angela Merkel met Emmanuel Macron in Paris on Tuesday .\"}'"
curl -s localhost:8765/predict -H 'Content-Type: application/json' -d '{"text": "Angela Merkel met Emmanuel Macron in Paris on Tuesday ."}'; echo
echo "\$ curl -s localhost:8765/predict -H 'Content-Type: application/json' -d '{\"text\": 3}'"
curl -s localhost:8765/predict -H 'Content-Type: application/json' -d '{"text": 3}'; echo
} > $O/curl.txt
kill $pid; wait $pid 2>/dev/null
python benchmarks/serve_screenshot.py --model "$M" --output $O/serve_page.png > $O/screenshot.txt 2>&1
cat $O/curl.txt $O/server.log $O/screenshot.txt
