#!/bin/sh
# Writes the man pages from the binary's --help (help2man): rwkvscope.1 and one
# rwkvscope-<command>.1 per sub-command (analyze's as rwkvscope-analyze-<name>.1).
# usage: scripts/man.sh BIN OUTDIR
set -eu
BIN=$1
OUT=$2
command -v help2man >/dev/null 2>&1 || {
    echo "man.sh: help2man is missing: apt-get install help2man (or make deps)" >&2
    exit 1
}
mkdir -p "$OUT"
cmds=$("$BIN" --help | sed -n 's/^  \([a-z][a-z0-9-]*\)  *[a-z].*/\1/p')
[ -n "$cmds" ] || { echo "man.sh: $BIN --help lists no commands" >&2; exit 1; }
pages=""
for c in $cmds; do
    if [ "$c" = analyze ]; then
        for s in decay attention lens; do pages="$pages analyze:$s"; done
    else
        pages="$pages $c"
    fi
done
see=$(for p in $pages; do printf '.BR rwkvscope-%s (1)\n' "$(echo "$p" | tr : -)"; done)

# One page: help2man runs "BIN ARGS --help" and "BIN ARGS --version"; NAME says the command.
page() { # page NAME DESCRIPTION ARGS...
    name=$1 desc=$2
    shift 2
    inc=$(mktemp)
    printf '[SEE ALSO]\n.BR rwkvscope (1)\n' > "$inc"
    help2man --no-info --include "$inc" --name "$desc" --help-option "$* --help" \
        --version-option "$* --version" "$BIN" |
        sed -e "s/^\.TH RWKVSCOPE /.TH $(echo "$name" | tr a-z- A-Z-) /" \
            -e "/^\.SH NAME/{n;s/^rwkvscope /$name /;}" > "$OUT/$name.1"
    rm -f "$inc"
}

inc=$(mktemp)
printf '[SEE ALSO]\n%s\n' "$see" > "$inc"
help2man --no-info --include "$inc" --name "run, dump, compare, probe and train RWKV models" "$BIN" > "$OUT/rwkvscope.1"
rm -f "$inc"
for p in $pages; do
    args=$(echo "$p" | tr : ' ')
    desc=$("$BIN" --help | sed -n "s/^  $(echo "$p" | cut -d: -f1)  *//p")
    [ "${p#analyze:}" != "$p" ] && desc=$("$BIN" analyze --help | sed -n "s/^  ${p#analyze:}  *//p")
    page "rwkvscope-$(echo "$p" | tr : -)" "$desc" $args
done
echo "man pages: $(ls "$OUT" | wc -l) in $OUT"
