#!/usr/bin/env bash
# Horovod-style launch over ssh: the coordinator here, K workers on each host of a hostfile.
#
#   cluster/ssh-launch.sh --hostfile FILE [--port 5555] [--address ADDR] [--chorus PATH]
#                         [--ssh "ssh -i key"] -- COORDINATOR-ARGS…
#
# FILE has one `host slots=K` line per worker host (`#` starts a comment; slots defaults to 1).
# The coordinator binds tcp://0.0.0.0:PORT and expects the sum of the slots; each worker is
# `chorus worker --connect tcp://ADDR:PORT` started with ssh on its host (ADDR: this host's
# address as the workers reach it, by default the first of `hostname -I`). Every process is
# stopped when the coordinator ends, when this script exits, or on Ctrl-C. CHORUS (the binary)
# must be at the same path on every host (--chorus, default: the one next to this checkout).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hostfile="" port=5555 address="" chorus="$root/.build/release/chorus" ssh_command="ssh"
while [ $# -gt 0 ]; do
    case "$1" in
        --hostfile) hostfile=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --address) address=$2; shift 2 ;;
        --chorus) chorus=$2; shift 2 ;;
        --ssh) ssh_command=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "ssh-launch: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done
[ -n "$hostfile" ] || { echo "ssh-launch: --hostfile FILE is required" >&2; exit 2; }
[ -r "$hostfile" ] || { echo "ssh-launch: cannot read hostfile $hostfile" >&2; exit 2; }
[ -n "$address" ] || address=$(hostname -I 2>/dev/null | awk '{print $1}')
[ -n "$address" ] || { echo "ssh-launch: cannot tell this host's address; pass --address" >&2; exit 2; }

hosts=() slots=()
while read -r line; do
    line=${line%%#*}
    [ -n "${line// /}" ] || continue
    read -r host rest <<< "$line"
    count=1
    if [[ "$rest" =~ slots=([0-9]+) ]]; then count=${BASH_REMATCH[1]}
    elif [ -n "${rest// /}" ]; then echo "ssh-launch: $hostfile: cannot read \"$line\" (expected: host slots=K)" >&2; exit 2
    fi
    [ "$count" -ge 1 ] || { echo "ssh-launch: $hostfile: $host has slots=$count" >&2; exit 2; }
    hosts+=("$host") slots+=("$count")
done < "$hostfile"
[ ${#hosts[@]} -gt 0 ] || { echo "ssh-launch: $hostfile names no host" >&2; exit 2; }
total=0; for count in "${slots[@]}"; do total=$((total + count)); done

pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$chorus" coordinator --bind "tcp://0.0.0.0:$port" --expect "$total" "$@" &
coordinator=$!
pids+=("$coordinator")
endpoint="tcp://$address:$port"
for index in "${!hosts[@]}"; do
    for ((slot = 0; slot < slots[index]; slot++)); do
        # -n: no stdin; the remote worker ends with its coordinator (it says leave), and the
        # ssh client with it. BatchMode: a missing key fails at once instead of asking.
        $ssh_command -n -o BatchMode=yes "${hosts[index]}" "exec '$chorus' worker --connect '$endpoint' --coordinator-timeout-ms 15000" \
            2> >(sed "s/^/[${hosts[index]}] /" >&2) &
        pids+=("$!")
    done
done
echo "ssh-launch: coordinator on $endpoint, $total worker(s) on ${#hosts[@]} host(s)" >&2
status=0
wait "$coordinator" || status=$?
exit "$status"
