#!/usr/bin/env bash
# state_probe.sh: what does each layer's state remember? Dumps a model's states on text,
# probes token@-d (memory horizon) and seen(X), and writes CSVs and plots to
# results/state_probe/.
#   usage: scripts/state_probe.sh [MODEL] [TEXT] [N_SEQ] [SEQ_LEN] [MAX_D]
#   env:   RWKVSCOPE_BIN (default build/rwkvscope), SEEN (the X of seen(X), default "'q' 'z' 'x'"),
#          OUT (default results/state_probe), SEED (default 1)
set -euo pipefail

MODEL=${1:-tests/fixtures/tiny-rwkv-4v0-660K-FP32.bin}
TEXT=${2:-tests/fixtures/tinyshakespeare.txt}
N_SEQ=${3:-200}
SEQ_LEN=${4:-256}
MAX_D=${5:-16}
BIN=${RWKVSCOPE_BIN:-build/rwkvscope}
OUT=${OUT:-results/state_probe}
SEED=${SEED:-1}
SEEN=${SEEN:-"'q' 'z' 'x'"}

[ -x "$BIN" ] || { echo "state_probe.sh: $BIN not found (run make)" >&2; exit 1; }
[ -r "$MODEL" ] || { echo "state_probe.sh: cannot read model $MODEL" >&2; exit 1; }
[ -r "$TEXT" ] || { echo "state_probe.sh: cannot read text $TEXT" >&2; exit 1; }
mkdir -p "$OUT"

# 1. N_SEQ prompts of SEQ_LEN bytes each (newlines become spaces), one per line.
prompts="$OUT/prompts.txt"
head -c $((N_SEQ * SEQ_LEN)) "$TEXT" | tr '\n\r' '  ' | fold -b -w "$SEQ_LEN" > "$prompts"
echo "state_probe: $(wc -l < "$prompts") prompts of $SEQ_LEN bytes from $TEXT" >&2

# 2. Dump every state tap of every layer, and the block-0 input (the baseline features).
dump="$OUT/dump.h5"
"$BIN" dump "$MODEL" --input "$prompts" --taps 'blocks.*.state_*,blocks.0.resid_in' \
    --positions all -o "$dump" --force

# 3. Memory horizon: token@-d for d = 1..MAX_D from each layer's normalised WKV state.
"$BIN" probe horizon "$dump" --max-d "$MAX_D" --seed "$SEED" --force -o "$OUT/horizon.csv" \
    --png "$OUT/horizon-plot.png"

# 4. The current token from every state vector, for reference.
"$BIN" probe "$dump" --taps 'blocks.*.state_att_xprev,blocks.*.state_num/state_den,blocks.*.concat(state_*)' \
    --label token@0 --seed "$SEED" --max-iter 100 --force -o "$OUT/token0.csv"

# 5. seen(X): has token X occurred yet? (a label with one class is skipped with a message)
for x in $SEEN; do
    name=$(printf '%s' "$x" | tr -cd '[:alnum:]')
    "$BIN" probe "$dump" --taps 'blocks.*.concat(state_*)' \
        --label "seen($x)" --seed "$SEED" --max-iter 100 --force -o "$OUT/seen_$name.csv" ||
        echo "state_probe: seen($x) skipped" >&2
done

# 6. A plot of seen(X) accuracy per layer (whole state) beside its control (gnuplot, if installed).
if command -v gnuplot > /dev/null; then
    for f in "$OUT"/seen_*.csv; do
        [ "$(wc -l < "$f")" -ge 2 ] || continue # header only: the probe failed
        gnuplot <<GP || echo "state_probe: gnuplot failed on $f" >&2
set terminal pngcairo size 800,600
set output "${f%.csv}.png"
set datafile separator ","
set title "$(basename "$f" .csv): probe accuracy by layer (whole state)" noenhanced
set xtics 1
set xlabel "layer"; set ylabel "accuracy"; set yrange [0:1]
plot "$f" using 1:9 every ::1 with linespoints title "probe", \
     "$f" using 1:16 every ::1 with linespoints title "control", \
     "$f" using 1:15 every ::1 with lines dashtype 2 title "majority class"
GP
    done
fi
echo "state_probe: results in $OUT" >&2
