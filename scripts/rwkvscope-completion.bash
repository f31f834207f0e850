# bash completion for rwkvscope (installed by make install as
# share/bash-completion/completions/rwkvscope). The sub-commands come from `rwkvscope --help`
# and each sub-command's long options from its own --help, read once per shell, so the
# completion follows the binary it completes. Anything else completes as a file name.

declare -gA _rwkvscope_options

# Sub-commands that take a sub-command of their own.
_rwkvscope_nested() {
    case $1 in
        analyze) echo "decay attention lens" ;;
        dataset) echo "make" ;;
        state) echo "save" ;;
        steer) echo "build sweep" ;;
        probe) echo "horizon" ;;
    esac
}

# The long options of `rwkvscope $*`: every --name on a help line that starts with an option.
_rwkvscope_options_of() {
    local key="$*"
    if [[ -z ${_rwkvscope_options[$key]} ]]; then
        _rwkvscope_options[$key]="$("${_rwkvscope_bin:-rwkvscope}" "$@" --help 2>/dev/null |
            grep -E '^ +-' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u | tr '\n' ' ')"
    fi
    echo "${_rwkvscope_options[$key]}"
}

_rwkvscope() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    _rwkvscope_bin=${COMP_WORDS[0]}
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        local cmds
        cmds=$("$_rwkvscope_bin" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z0-9-]*\)  *[a-z].*/\1/p')
        COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
        return
    fi
    local cmd=${COMP_WORDS[1]} nested
    nested=$(_rwkvscope_nested "$cmd")
    if ((COMP_CWORD == 2)) && [[ -n $nested && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$nested" -- "$cur"))
        return
    fi
    [[ $cur == -* ]] || return # a value or an argument: files (complete -o default)
    local key=("$cmd")
    if [[ -n $nested && " $nested " == *" ${COMP_WORDS[2]} "* ]]; then
        key+=("${COMP_WORDS[2]}")
    fi
    COMPREPLY=($(compgen -W "$(_rwkvscope_options_of "${key[@]}") --help --version" -- "$cur"))
}

complete -o default -F _rwkvscope rwkvscope
