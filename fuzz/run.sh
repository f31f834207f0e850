#!/bin/sh
# Runs each libFuzzer target given (fuzz/fuzz_<target>.c, built in build-fuzz/fuzz/) for
# FUZZ_SECONDS on a corpus seeded from tests/fixtures, after replaying its regression inputs
# (tests/fixtures/fuzz/<target>/). HDF5 seeds are written here by the CLI ($RWKVSCOPE_BIN,
# the normal build). Prints one line per target (executions, corpus size, result) and keeps
# them in build-fuzz/fuzz-summary.txt; a crash, leak, timeout or OOM is saved under
# build-fuzz/artifacts/<target>/ and makes the run fail.
set -u
B=build-fuzz
SEC=${FUZZ_SECONDS:-30}
FX=tests/fixtures
SD=$FX/fuzz/seeds
GEN=$B/seeds
BIN=${RWKVSCOPE_BIN:-build/rwkvscope}
MODEL=$FX/rand-L2-C32-V50.safetensors
BIG=$FX/rand-L3-C64-V300.pth # vocab >= 256: text prompts (bytes) for --input and steer

# HDF5 seeds from the CLI: state files, dumps, a steering vector, a training checkpoint.
gen_seeds() {
    rm -rf "$GEN"; mkdir -p "$GEN/state" "$GEN/dump" "$GEN/vector" "$GEN/checkpoint" "$GEN/intervene_file"
    q() { "$@" >/dev/null 2>"$GEN/last.err" || { echo "fuzz: seed generation failed: $*" >&2; cat "$GEN/last.err" >&2; exit 1; }; }
    q "$BIN" state save "$MODEL" --tokens 1,2,3,4 -o "$GEN/state/a.h5"
    q "$BIN" state save "$MODEL" --tokens 49 -o "$GEN/state/b.h5"
    q "$BIN" dump "$MODEL" --tokens 1,2,3,4,5,6,7,8 --taps '*' --mode seq -o "$GEN/dump/all.h5"
    q "$BIN" dump "$MODEL" --tokens 1,2,3,4,5,6,7,8 --taps 'blocks.*.state_*,logits' --positions 2-5 -o "$GEN/dump/some.h5"
    printf '{"tokens":[1,2,3,4,5,6,7,8]}\n{"tokens":[4,5,6,7,8,9,10,11]}\n' > "$GEN/two.jsonl"
    q "$BIN" dump "$BIG" --input "$GEN/two.jsonl" --taps 'blocks.*.att_out,blocks.*.ffn_k,blocks.*.resid_in,blocks.1.state_num,logits' --mode seq -o "$GEN/dump/two.h5"
    printf '1 2 3\n4 5 6 7\n' > "$GEN/pos.txt"; printf '9 8\n7 7 7\n' > "$GEN/neg.txt"
    q "$BIN" steer build "$BIG" --pos "$GEN/pos.txt" --neg "$GEN/neg.txt" --tap blocks.0.resid_in -o "$GEN/vector/v.h5"
    head -c 20000 $FX/tinyshakespeare.txt > "$GEN/train.txt"
    q "$BIN" train --data "$GEN/train.txt" --layers 1 --embd 8 --ffn 16 --ctx 8 --batch 2 --steps 2 --eval-batches 1 \
        -o "$GEN/checkpoint/m.safetensors"
    find "$GEN/checkpoint" -type f ! -name "*.optim.h5" -delete
    cp "$GEN/vector/v.h5" "$GEN/dump/two.h5" "$GEN/intervene_file/"
}

# The seed directories of a target.
seeds() {
    case $1 in
    pth) echo "$FX/rand-L2-C32-V50.pth $FX/rand-L2-C32-V50-bf16.pth $FX/rand-L2-C32-V50-p4shared.pth" ;;
    pickle) echo "$SD/pickle" ;;
    safetensors) echo "$FX/rand-L2-C32-V50.safetensors $FX/rand-L2-C32-V50-fp16.safetensors $FX/rand-L2-C32-V50-bf16.safetensors" ;;
    rwkvcpp) echo "$FX/rand-L2-C32-V50-FP32.bin $FX/rand-L2-C32-V50-FP16.bin $FX/rand6-a.bin $FX/tiny-rwkv-5v2-730K-FP32.bin" ;;
    neox_vocab) echo "$SD/neox-small.json" ;;
    world_vocab) echo "$SD/world-small.txt" ;;
    neox_encode | world_encode) echo "$SD/text" ;;
    intervene_spec) echo "$SD/spec" ;;
    jsonl) echo "$SD/jsonl" ;;
    state | dump | checkpoint | intervene_file) echo "$GEN/$1" ;;
    *) echo "fuzz: no seeds for target $1" >&2; exit 1 ;;
    esac
}

# A small ASan quarantine keeps the process small, so the forked trial reads of the HDF5
# readers (rwkv_h5_guarded) stay cheap: about 3x the executions of the default 256 MB.
export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:quarantine_size_mb=16:malloc_context_size=8
export LSAN_OPTIONS=suppressions=fuzz/lsan.supp
# Reports of the forked trial reads (rwkv_h5_guarded) do not stop libFuzzer: the parent turns
# the child's death into an error. A report whose first frame in libhdf5 or in our sources
# (libc and sanitizer frames skipped) is libhdf5's is libhdf5's, which the trial is there
# for; one in our sources, and any UBSan report, is ours and a finding.
own_child_reports() {
    awk '/ERROR: AddressSanitizer|ERROR: LeakSanitizer/ { look = 1; next }
         /runtime error:/ { n++ }
         look && /^ *#[0-9]+ / {
             if ($0 ~ /libhdf5/) { look = 0; next }
             if ($0 ~ /\/(core|probes|cli|analyses|datasets|fuzz)\/([A-Za-z0-9_]+\/)*[A-Za-z0-9_]+\.c:/) { n++; look = 0 } }
         END { print n + 0 }' "$1"
}

gen_seeds
: > $B/fuzz-summary.txt
fail=""
for t in "$@"; do
    exe=$B/fuzz/fuzz_$t
    corpus=$B/corpus/$t
    art=$B/artifacts/$t
    mkdir -p "$corpus" "$art"
    for s in $(seeds "$t"); do if [ -d "$s" ]; then cp "$s"/* "$corpus"/; else cp "$s" "$corpus"/; fi; done
    log=$B/fuzz-$t.log
    reg=$FX/fuzz/$t
    if [ -d "$reg" ] && ! "$exe" -timeout=5 -rss_limit_mb=2048 "$reg"/* >"$log.regress" 2>&1; then
        echo "$t: a regression input of $reg fails (see $log.regress)" | tee -a $B/fuzz-summary.txt
        fail="$fail $t"; continue
    fi
    "$exe" -max_total_time="$SEC" -timeout=5 -rss_limit_mb=2048 -max_len=200000 -print_final_stats=1 \
        -artifact_prefix="$art/" "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    ncorp=$(ls "$corpus" | wc -l)
    own=$(own_child_reports "$log")
    res=ok; [ $rc -ne 0 ] && { res="FAILED (rc $rc, see $log, input in $art)"; fail="$fail $t"; }
    [ "$own" -ne 0 ] && { res="FAILED ($own sanitizer reports in our code inside trial reads, see $log)"; fail="$fail $t"; }
    echo "$t: ${execs:-?} executions in ${SEC} s, $cov, corpus $ncorp files: $res" | tee -a $B/fuzz-summary.txt
done
[ -z "$fail" ] || { echo "fuzz: failing targets:$fail"; exit 1; }
