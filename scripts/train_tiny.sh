#!/usr/bin/env bash
# train_tiny.sh: the training demo of issue 5. Trains a 4-layer, C=128 byte-level RWKV-4 on
# tinyshakespeare (90/10 split, ctx 128) and checks that the held-out loss reaches
# TARGET nats/byte (a unigram model gets about 3.3). Budget: <= 10 minutes on 2 cores.
# Writes results/train_tiny/: model.safetensors (+ model.optim.h5), loss.csv, loss-curve.png
# when plotting is available, sample.txt, summary.txt.
#   usage: scripts/train_tiny.sh [extra rwkvscope train options, e.g. --threads 2]
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${RWKVSCOPE_BIN:-build/rwkvscope}
DATA=${DATA:-tests/fixtures/tinyshakespeare.txt}
OUT=results/train_tiny
TARGET=2.0     # nats/byte on the held-out 10%
STEPS=${STEPS:-800}

[ -x "$BIN" ] || make -j2 >/dev/null
[ -f "$DATA" ] || DATA=../shared/datasets/tinyshakespeare.txt
mkdir -p "$OUT"

start=$(date +%s)
"$BIN" train --data "$DATA" --layers 4 --embd 128 --ctx 128 --batch 8 --steps "$STEPS" \
    --lr 4e-3 --min-lr 4e-4 --warmup 50 --eval-every 100 --eval-batches 32 --seed 1 \
    -o "$OUT/model.safetensors" --log "$OUT/loss.csv" --force --plot "$@" | tee "$OUT/train.txt"
secs=$(( $(date +%s) - start ))

# The held-out loss of the last evaluation (the last line of the log).
val=$(tail -n 1 "$OUT/loss.csv" | cut -d, -f3)
tps=$(tail -n 1 "$OUT/loss.csv" | cut -d, -f6)
"$BIN" generate "$OUT/model.safetensors" --bytes "ROMEO:" -n 300 --temperature 0.8 --seed 1 \
    > "$OUT/sample.txt" 2>/dev/null || true

pass=$(awk -v v="$val" -v t="$TARGET" 'BEGIN { print (v <= t) ? "PASS" : "FAIL" }')
{
    echo "model: 4 layers, n_embd 128, n_ffn 512, byte vocab; ctx 128, batch 8, $STEPS steps"
    echo "data: $DATA (90% train / 10% held out)"
    echo "held-out loss: $val nats/byte (target <= $TARGET; unigram ~3.3): $pass"
    echo "wall time: ${secs}s (budget 600s); training throughput: $tps tokens/s"
} | tee "$OUT/summary.txt"
[ "$pass" = PASS ]
