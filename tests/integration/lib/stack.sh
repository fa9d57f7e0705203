# stack.sh -- what the tests of scripts/stack share (source after lib.sh)
#
#   STACK          scripts/stack; its state in RL_STACK_DIR=$T/stack (exported)
#   stack_pids     every process the stack runs now: its pid files' processes and their
#                  descendants (add them to PIDS so the EXIT trap stops what `down` missed)
# The EXIT trap runs `down` first, then lib.sh's cleanup stops any pid still running.

export RL_STACK_DIR=$T/stack
STACK=$ROOT/scripts/stack

stack_cleanup() {
    "$STACK" down >/dev/null 2>&1 || true
    lib_cleanup
}
trap stack_cleanup EXIT

stack_pids() {
    local f p
    descendants_of() { local c; for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$c"; descendants_of "$c"; done; }
    for f in "$RL_STACK_DIR"/*.pid; do
        [ -s "$f" ] || continue
        p=$(cat "$f")
        echo "$p"
        descendants_of "$p"
    done
}
