#!/usr/bin/env bash
# Test hosts on one machine: N network namespaces ("hosts") joined by veth pairs to a bridge
# that lives in a namespace of its own (the "switch"), each host with its own address on a
# private test subnet. Real kernels, real TCP, real packets: only the wire is simulated.
#
#   cluster/testhosts.sh up N            make hosts chorus-h0 … chorus-h(N-1) at 10.213.7.1 … N
#   cluster/testhosts.sh down            remove every test host and the switch
#   cluster/testhosts.sh addr I          print host I's address
#   cluster/testhosts.sh exec I CMD …    run CMD on host I (ip netns exec)
#   cluster/testhosts.sh rate I RATE     limit host I's link to RATE (tc tbf, e.g. 1gbit); RATE=off lifts it
#   cluster/testhosts.sh loss I PCT      drop PCT % of host I's incoming packets (nftables); 0 lifts it; 100 drops all
#   cluster/testhosts.sh cut I | mend I  take host I's link down / up (ip link)
#   cluster/testhosts.sh sshd I KEYS     run an sshd on host I (port 22, key-only root login
#                                        for the public keys in file KEYS; Debian's openssh-server)
#
# This kernel has no netem, so there is no network-level delay: use the product's
# `--fault delay`. Needs root (CI is). Every address is inside 10.213.7.0/24 and reachable
# only from the test hosts themselves: nothing leaves the machine.
set -euo pipefail
PREFIX=chorus-h
SWITCH=chorus-sw
SUBNET=10.213.7

need_root() { [ "$(id -u)" -eq 0 ] || { echo "testhosts: needs root (network namespaces)" >&2; exit 77; }; }
host() { echo "$PREFIX$1"; }
addr() { echo "$SUBNET.$(( $1 + 1 ))"; }

up() {
    local count=$1
    need_root
    down >/dev/null 2>&1 || true
    ip netns add "$SWITCH"
    ip -n "$SWITCH" link add br0 type bridge
    ip -n "$SWITCH" link set br0 up
    ip -n "$SWITCH" link set lo up
    for ((i = 0; i < count; i++)); do
        local h; h=$(host "$i")
        ip netns add "$h"
        ip link add "ch$i" netns "$h" type veth peer name "sw$i" netns "$SWITCH"
        ip -n "$SWITCH" link set "sw$i" master br0 up
        ip -n "$h" link set lo up
        ip -n "$h" addr add "$(addr "$i")/24" dev "ch$i"
        ip -n "$h" link set "ch$i" up
    done
    echo "testhosts: $count host(s) up: $(for ((i = 0; i < count; i++)); do printf '%s=%s ' "$(host "$i")" "$(addr "$i")"; done)"
}

down() {
    need_root
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^($PREFIX[0-9]+|$SWITCH)$" || true); do
        # Processes left in a host would keep it alive: end them first.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns delete "$ns"
    done
}

command=${1:-}
case "$command" in
    up) up "${2:?usage: testhosts.sh up N}" ;;
    down) down ;;
    addr) addr "${2:?usage: testhosts.sh addr I}" ;;
    exec) i=${2:?usage: testhosts.sh exec I CMD…}; shift 2; exec ip netns exec "$(host "$i")" "$@" ;;
    rate)
        i=${2:?}; rate=${3:?usage: testhosts.sh rate I RATE|off}
        ip -n "$(host "$i")" link show "ch$i" >/dev/null
        tc -n "$(host "$i")" qdisc del dev "ch$i" root 2>/dev/null || true
        tc -n "$SWITCH" qdisc del dev "sw$i" root 2>/dev/null || true
        if [ "$rate" != off ]; then
            # Both directions: the host's egress and the switch port's egress towards it.
            tc -n "$(host "$i")" qdisc add dev "ch$i" root tbf rate "$rate" burst 256kb latency 50ms
            tc -n "$SWITCH" qdisc add dev "sw$i" root tbf rate "$rate" burst 256kb latency 50ms
        fi ;;
    loss)
        i=${2:?}; pct=${3:?usage: testhosts.sh loss I PCT}
        h=$(host "$i")
        ip netns exec "$h" nft delete table inet chorusloss 2>/dev/null || true
        if [ "$pct" != 0 ]; then
            ip netns exec "$h" nft add table inet chorusloss
            ip netns exec "$h" nft add chain inet chorusloss input '{ type filter hook input priority 0; policy accept; }'
            if [ "$pct" -ge 100 ]; then  # a firewall that drops everything
                ip netns exec "$h" nft add rule inet chorusloss input iifname "ch$i" drop
            else
                ip netns exec "$h" nft add rule inet chorusloss input iifname "ch$i" numgen random mod 100 '<' "$pct" drop
            fi
        fi ;;
    sshd)
        i=${2:?}; keys=${3:?usage: testhosts.sh sshd I AUTHORIZED_KEYS}
        state=/run/chorus-testhosts/sshd-$i
        mkdir -p "$state" /run/sshd
        [ -f "$state/host_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$state/host_key"
        cp "$keys" "$state/authorized_keys"; chmod 600 "$state/authorized_keys"
        cat > "$state/sshd_config" <<CONFIG
ListenAddress $(addr "$i")
HostKey $state/host_key
PidFile $state/sshd.pid
AuthorizedKeysFile $state/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
CONFIG
        ip netns exec "$(host "$i")" /usr/sbin/sshd -f "$state/sshd_config"
        ;;
    cut) ip -n "$SWITCH" link set "sw${2:?}" down ;;
    mend) ip -n "$SWITCH" link set "sw${2:?}" up ;;
    *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
