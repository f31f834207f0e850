#!/usr/bin/env bash
# decay_spectra.sh [MODEL...]: per-layer decay / half-life / time_first spectra of each model.
# Default models: the official-init random model and the tiny trained byte model of
# tests/fixtures (plus results/passkey_sweep/model.safetensors if passkey_sweep.sh ran).
# Writes results/decay_spectra/<model>/decay.csv and its PNGs, and a summary.txt.
source "$(dirname "$0")/lib_experiment.sh"
experiment_init decay_spectra
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
    models=(tests/fixtures/rand-L3-C64-V300.pth tests/fixtures/tiny-rwkv-4v0-660K-FP32.bin)
    [ -f results/passkey_sweep/model.safetensors ] && models+=(results/passkey_sweep/model.safetensors)
fi
: > "$OUT/summary.txt"
for m in "${models[@]}"; do
    name=$(basename "$m"); name=${name%.*}
    mkdir -p "$OUT/$name"
    log "decay spectra of $m"
    { echo "== $m"; "$BIN" analyze decay "$m" -o "$OUT/$name/decay.csv" --force; } >> "$OUT/summary.txt"
done
cat "$OUT/summary.txt"
log "wrote $OUT"
