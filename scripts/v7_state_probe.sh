#!/usr/bin/env bash
# v7_state_probe.sh: train a small byte-level RWKV-7 model with `train --arch 7`, dump its
# matrix states (state_wkv, H x N x N per layer and position) on held-out text, and probe
# them: the memory horizon token@-d for d = 1..MAX_D, and the current token from the
# token-shift state for reference. Writes results/v7_state_probe/: model.safetensors,
# loss.csv, dump.h5, horizon.csv (+ horizon-plot.png: per layer), horizon_heads.csv (+ -plot.png:
# per layer and head), horizon_svd.csv (+ -plot.png: per head, its top-4 singular triplets),
# token0.csv, summary.txt. `make readme-figures` copies the pictures into docs/img.
# Budget: about 2-3 minutes on 2 cores with the defaults.
#   usage: scripts/v7_state_probe.sh [STEPS] [N_SEQ] [SEQ_LEN] [MAX_D]
#   env:   RWKVSCOPE_BIN (default build/rwkvscope), DATA (default tinyshakespeare),
#          OUT (default results/v7_state_probe), SEED (default 1), THREADS (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=${1:-400}
N_SEQ=${2:-100}
SEQ_LEN=${3:-128}
MAX_D=${4:-6}
BIN=${RWKVSCOPE_BIN:-build/rwkvscope}
DATA=${DATA:-tests/fixtures/tinyshakespeare.txt}
OUT=${OUT:-results/v7_state_probe}
SEED=${SEED:-1}
THREADS=${THREADS:-2}

[ -x "$BIN" ] || { echo "v7_state_probe.sh: $BIN not found (run make)" >&2; exit 1; }
[ -r "$DATA" ] || { echo "v7_state_probe.sh: cannot read $DATA" >&2; exit 1; }
mkdir -p "$OUT"

# 1. A 2-layer, C=64 RWKV-7 (4 heads of 16) on the first 90% of the text.
"$BIN" train --arch 7 --head-size 16 --data "$DATA" --layers 2 --embd 64 --ctx 128 --batch 8 \
    --steps "$STEPS" --lr 5e-3 --min-lr 5e-4 --warmup 20 --seed "$SEED" --threads "$THREADS" \
    -o "$OUT/model.safetensors" --log "$OUT/loss.csv" --force | tee "$OUT/train.txt"

# 2. Prompts from the held-out tail (the last 10% of the text), one per line.
prompts="$OUT/prompts.txt"
size=$(wc -c < "$DATA")
n=$((N_SEQ * SEQ_LEN))
head -c $((size - size / 10 + n)) "$DATA" | tail -c "$n" | tr '\n\r' '  ' | fold -b -w "$SEQ_LEN" > "$prompts"
echo "v7_state_probe: $(grep -c "" "$prompts") held-out prompts of $SEQ_LEN bytes" >&2

# 3. The matrix state and the token-shift state of every layer at every position.
"$BIN" dump "$OUT/model.safetensors" --input "$prompts" --threads "$THREADS" \
    --taps 'blocks.*.state_wkv,blocks.*.state_att_xprev,blocks.0.resid_in' --positions all \
    -o "$OUT/dump.h5" --force 2>&1 | grep -v '^  sequence' >&2

# 4. Memory horizon of the matrix state: token@-d from each layer's flattened H N^2 state.
# (small fits: 2 folds of at most 1500 rows; the features are H N^2 = 1024 wide)
fit="--folds 2 --max-train 1500 --boot 50 --max-iter 100 --seed $SEED"
"$BIN" probe horizon "$OUT/dump.h5" --taps 'blocks.*.state_wkv' --max-d "$MAX_D" $fit \
    -o "$OUT/horizon.csv" --png "$OUT/horizon-plot.png" --force

# 4b. The same per head: each head's own N x N state (256 features), flattened, and as its
# top-4 singular triplets (4 (2N + 1) = 132 features).
"$BIN" probe horizon "$OUT/dump.h5" --taps 'blocks.*.state_wkv' --head all --max-d "$MAX_D" $fit \
    -o "$OUT/horizon_heads.csv" --png "$OUT/horizon_heads-plot.png" --force
"$BIN" probe horizon "$OUT/dump.h5" --taps 'blocks.*.state_wkv' --head all --svd 4 --max-d "$MAX_D" $fit \
    -o "$OUT/horizon_svd.csv" --png "$OUT/horizon_svd-plot.png" --force

# 5. The current token from the token-shift state (it holds x_t exactly: near 1).
"$BIN" probe "$OUT/dump.h5" --taps 'blocks.*.state_att_xprev' --label token@0 $fit -o "$OUT/token0.csv" --force

val=$(tail -n 1 "$OUT/loss.csv" | cut -d, -f3)
{
    echo "model: RWKV-7, 2 layers, n_embd 64, 4 heads of 16, byte vocab; $STEPS steps; held-out loss $val nats/byte"
    echo "probes on $(grep -c "" "$prompts") held-out prompts of $SEQ_LEN bytes: $OUT/horizon.csv, $OUT/horizon_heads.csv," \
         "$OUT/horizon_svd.csv, $OUT/token0.csv"
} | tee "$OUT/summary.txt"
