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

# ---- 6. Activation patching on passkey (as the v4 demo's last step), on the matrix state ----
# A second RWKV-7 of the same shape trained on passkey retrieval (a 3-digit key hidden at a
# random depth in the built-in haystack, PK_LEN bytes an example, 16 a batch); then `patch --pairs` over
# PK_PAIRS prompt pairs: the clean prompt hides a random key at depth PK_DEPTH, the corrupt
# one changes the key's first digit, and the metric is logit(clean digit) - logit(corrupt
# digit) after "...The pass key is ". Swept: the residual stream, each layer's whole matrix
# state (state_wkv) and each head's matrix alone (state_wkv:*), every position.
# Writes $OUT/passkey.safetensors, passkey_loss.csv, patch_pairs.tsv, patch.csv (mean
# recovery per cell with its 95% t interval), v7_patch_*.png (+ .csv, .gp), patch_summary.txt
# (`make readme-figures` copies the two state pictures). About 3 more minutes on 2 quiet cores.
#   env: PK_STEPS (default 1500), PK_LEN (96), PK_PAIRS (16), PK_DEPTH (0.5)
PK_STEPS=${PK_STEPS:-1500}
PK_LEN=${PK_LEN:-96}
PK_PAIRS=${PK_PAIRS:-16}
PK_DEPTH=${PK_DEPTH:-0.5}
PK="$OUT/passkey.safetensors"
"$BIN" train --arch 7 --head-size 16 --task passkey --task-len "$PK_LEN" --key-len 3 --depth random \
    --layers 2 --embd 64 --ctx $((2 * PK_LEN)) --batch 16 --steps "$PK_STEPS" --lr 3e-3 --min-lr 3e-4 --warmup 30 \
    --seed "$SEED" --threads "$THREADS" -o "$PK" --log "$OUT/passkey_loss.csv" --force > "$OUT/passkey_train.txt"
tail -n 1 "$OUT/passkey_train.txt"

# The prompts in the training layout (datasets/task.c): filler[0:p] NEEDLE filler[p:F]
# QUESTION ANSWER_HEAD, cut before the answer; the key's first digit sits at p + 16.
fill="The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
F=$((PK_LEN - 75)) # the needle, the question and the answer with a 3-digit key take 75 bytes
hay=$fill
while [ ${#hay} -lt "$F" ]; do hay=$hay$fill; done
p=$(awk -v d="$PK_DEPTH" -v F="$F" 'BEGIN { printf "%d", d * F + 0.5 }')
KEYPOS=$((p + 16))
RANDOM=$SEED
correct=0
for i in $(seq 1 "$PK_PAIRS"); do
    key=$((RANDOM % 10))$((RANDOM % 10))$((RANDOM % 10))
    d=${key:0:1} x=$(( (${key:0:1} + 1 + RANDOM % 9) % 10 ))
    post=". Remember it. ${hay:$p:$((F - p))}What is the pass key? The pass key is "
    clean="${hay:0:$p}The pass key is $key$post"
    printf '%s\t%s\tlogit-diff:%d,%d\n' "$clean" "${hay:0:$p}The pass key is $x${key:1:2}$post" $((48 + d)) $((48 + x))
    top=$("$BIN" run "$PK" --bytes "$clean" --top-k 1 --threads "$THREADS" | awk '{ print $3 }')
    if [ "$top" = $((48 + d)) ]; then correct=$((correct + 1)); fi
done > "$OUT/patch_pairs.tsv"
"$BIN" patch "$PK" --pairs "$OUT/patch_pairs.tsv" --taps 'resid_in,state_wkv,state_wkv:*' --threads "$THREADS" \
    --force -o "$OUT/patch.csv" --plot "$OUT/v7_patch" 2> "$OUT/patch.log"

# Per unit and layer: the mean recovery at the key digit, over the positions after it but the
# last, and at the last position (where the answer is read out).
awk -F, -v k="$KEYPOS" -v T=$((PK_LEN - 3)) '
NR == 1 { next }
{ u = $1 " layer " $2; units[u] = 1
  if ($3 == k) at[u] = $5
  else if ($3 > k && $3 < T - 1) { s[u] += $5; n[u]++ }
  else if ($3 == T - 1) last[u] = $5 }
END {
    printf "| unit | key digit (%d) | positions %d..%d (mean) | last (%d) |\n|---|---|---|---|\n", k, k + 1, T - 2, T - 1
    for (u in units) printf "| %s | %.3f | %.3f | %.3f |\n", u, at[u], s[u] / n[u], last[u]
}' "$OUT/patch.csv" | { read -r h1; read -r h2; echo "$h1"; echo "$h2"; sort; } > "$OUT/patch_table.md"
{
    echo "passkey model: RWKV-7 2 x 64 (4 heads of 16), $PK_STEPS steps on passkey ($PK_LEN bytes, 3-digit keys);"
    echo "  $(tail -n 1 "$OUT/passkey_train.txt")"
    echo "retrieval on the $PK_PAIRS clean prompts (depth $PK_DEPTH): $correct of $PK_PAIRS first digits are the top token"
    echo "patching ($OUT/patch.csv, mean recovery over the pairs): the corrupt prompt changes position $KEYPOS"
    cat "$OUT/patch_table.md"
} | tee "$OUT/patch_summary.txt"
