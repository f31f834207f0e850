#!/usr/bin/env bash
# patching_passkey.sh: activation patching on a passkey-retrieval model. Two prompts differ
# only in the key's digits; every (tap, layer, position) cell is patched from the clean prompt
# into the corrupt one, and the recovery of logit(clean digit) - logit(corrupt digit) at the
# answer position is drawn as a layer x position heatmap per tap. A model that retrieves the
# key by reading it into its state should show recovery at the key positions (in the early
# layers) and at the last positions (late layers), and nothing over the haystack.
#
# usage: scripts/patching_passkey.sh [MODEL]
#   MODEL   a trained passkey model (default: train one into $OUT/passkey.safetensors with
#           `rwkvscope train --task passkey`, which needs the training and dataset commands)
# env: RWKVSCOPE_BIN (default build/rwkvscope), OUT (default results/patching_passkey),
#      LEN (prompt tokens, default 256), TAPS (default resid_in,att_out,state_num,state_den),
#      DEPTH (needle depth, default 0.5), SEED (default 1), KEYLEN (key digits, default 4),
#      FILLER (haystack text for `dataset make --filler`; default: its built-in sentences),
#      STEPS (training steps, default 3000)
# For the demo model (scripts/train_demo_model.sh): KEYLEN=4 FILLER=tests/fixtures/tinyshakespeare.txt
set -euo pipefail
BIN=${RWKVSCOPE_BIN:-build/rwkvscope}
OUT=${OUT:-results/patching_passkey}
LEN=${LEN:-256}
TAPS=${TAPS:-resid_in,att_out,state_num,state_den}
DEPTH=${DEPTH:-0.5}
SEED=${SEED:-1}
STEPS=${STEPS:-3000}
KEYLEN=${KEYLEN:-4}
FILLER=${FILLER:-}
MODEL=${1:-$OUT/passkey.safetensors}
mkdir -p "$OUT"

if [ ! -f "$MODEL" ]; then
    echo "== training a passkey model into $MODEL ($STEPS steps)" >&2
    "$BIN" train --task passkey --task-len "$LEN" --key-len "$KEYLEN" --depth random \
        ${FILLER:+--filler "$FILLER"} --layers 4 --embd 128 --ctx $((2 * LEN)) --batch 8 \
        --steps "$STEPS" --lr 2e-3 --min-lr 2e-4 --warmup 50 --seed "$SEED" -o "$MODEL" --force >&2
fi

# Two examples that differ only in the key: the same haystack and depth, another seed.
# With `dataset make` the prompts are its passkey examples cut before the answer; without
# it they are built here in the documented layout (docs/dataset-format.md).
prompt_tokens() { # seed -> "ids|answer_first_token|needle_pos|key_len"
    local seed=$1 f="$OUT/example_$1.jsonl"
    if "$BIN" dataset make passkey --n 1 --len "$LEN" --depth "$DEPTH" --key-len "$KEYLEN" \
        ${FILLER:+--filler "$FILLER"} --seed "$seed" -o "$f" --force >/dev/null 2>&1; then
        python3 - "$f" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
ex = json.loads(lines[1])
start, n = ex["answers"][0]
print(",".join(map(str, ex["tokens"][:start])) + "|%d|%d|%d" % (ex["tokens"][start], ex["needle_pos"], n))
PY
    else
        python3 - "$seed" "$LEN" "$DEPTH" "$KEYLEN" <<'PY'
import random, sys
seed, L, depth, keylen = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
key = "".join(random.Random(seed).choice("0123456789") for _ in range(keylen))
needle, q, a = "The pass key is %s. Remember it. " % key, "What is the pass key? ", "The pass key is "
fill = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
F = L - len(needle) - len(q) - len(a)
hay = (fill * (F // len(fill) + 1))[:F]
p = round(depth * F)
text = hay[:p] + needle + hay[p:] + q + a
print(",".join(str(b) for b in text.encode()) + "|%d|%d|%d" % (ord(key[0]), p, len(key)))
PY
    fi
}

IFS='|' read -r CLEAN A NEEDLE KEYLEN <<<"$(prompt_tokens "$SEED")"
for s in $(seq $((SEED + 1)) $((SEED + 50))); do
    IFS='|' read -r CORRUPT B _ _ <<<"$(prompt_tokens "$s")"
    [ "$A" != "$B" ] && break
done
echo "== clean answer token $A, corrupt answer token $B; needle at $NEEDLE" >&2

"$BIN" patch "$MODEL" --clean-tokens "$CLEAN" --corrupt-tokens "$CORRUPT" --taps "$TAPS" \
    --metric "logit-diff:$A,$B" --force -o "$OUT/patch.csv"

# One heatmap per tap (gnuplot from the CSV), and a summary of where the recovery is.
if command -v gnuplot >/dev/null; then
    for tap in ${TAPS//,/ }; do
        awk -F, -v tap="$tap" 'NR > 1 && $1 == tap { print $2, $3, $7 }' "$OUT/patch.csv" > "$OUT/$tap.dat"
        gnuplot <<GP
set terminal pngcairo size 1000,400 noenhanced
set output "$OUT/$tap.png"
set title "recovery when patching $tap (clean -> corrupt); needle at $NEEDLE"
set xlabel "position"; set ylabel "layer"
set cbrange [-1:1]; set cblabel "recovery (saturated beyond [-1, 1])"; set palette defined (-1 "blue", 0 "white", 1 "red")
plot "$OUT/$tap.dat" using 2:1:3 with image notitle
GP
    done
fi

# Where the recovery is: share of the summed |recovery| at the key digits, at the query /
# answer prompt (the last 38 tokens), and over the haystack, per tap. A tap whose every cell
# stays below NOISE (|recovery| < 0.1) gets no shares: a share of noise means nothing.
awk -F, -v noise=0.1 -v lo="$NEEDLE" -v keylen="$KEYLEN" -v T="$(tr ',' '\n' <<<"$CLEAN" | wc -l)" '
NR == 1 { next }
{
    r = $7 < 0 ? -$7 : $7
    # The key digits sit after "The pass key is " (16 bytes) in the needle.
    where = ($3 >= lo + 16 && $3 < lo + 16 + keylen) ? "key" : ($3 >= T - 38 ? "query" : "haystack")
    sum[$1, where] += r; tot[$1] += r; taps[$1] = 1
    if (r > best[$1]) { best[$1] = r; bestcell[$1] = "layer " $2 " position " $3 }
}
END {
    printf "| tap | key digits | query/answer | haystack | strongest cell |\n|---|---|---|---|---|\n"
    for (t in taps)
        if (best[t] < noise)
            printf "| %s | - | - | - | every cell below %.1f (noise; max %.3f) |\n", t, noise, best[t]
        else
            printf "| %s | %.2f | %.2f | %.2f | %s (%.2f) |\n", t, sum[t, "key"] / tot[t], sum[t, "query"] / tot[t],
                   sum[t, "haystack"] / tot[t], bestcell[t], best[t]
}' "$OUT/patch.csv" > "$OUT/summary.md"
{
    echo "# Activation patching on a passkey model"
    echo
    echo "model: $MODEL; prompt length $(tr ',' '\n' <<<"$CLEAN" | wc -l) tokens; needle at $NEEDLE;"
    echo "metric: logit($A) - logit($B) at the last position; recovery 1 = clean behaviour restored."
    echo
    echo "Share of the summed |recovery| by region:"
    echo
    cat "$OUT/summary.md"
    echo
    echo "Heatmaps: $OUT/<tap>.png (layer x position)."
} > "$OUT/README.md"
cat "$OUT/README.md"
