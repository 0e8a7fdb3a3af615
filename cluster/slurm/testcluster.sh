#!/usr/bin/env bash
# A real Slurm cluster on this machine, for tests: munged, slurmctld and two slurmd (node1,
# node2: `slurmd -N`, ports 17001/17002, NodeAddr 127.0.0.1), from Debian's slurm-wlm and
# munge. No systemd: this script starts and stops the daemons itself.
#
#   cluster/slurm/testcluster.sh up      start (idempotent); prints the SLURM_CONF to export
#   cluster/slurm/testcluster.sh down    stop every daemon it started
#
# Needs root. State lives in /run/chorus-slurm.
set -euo pipefail
state=/run/chorus-slurm
conf=$state/slurm.conf

up() {
    [ "$(id -u)" -eq 0 ] || { echo "slurm testcluster: needs root" >&2; exit 77; }
    command -v slurmctld >/dev/null || { echo "slurm testcluster: slurm-wlm is not installed (apt-get install slurm-wlm munge)" >&2; exit 1; }
    down >/dev/null 2>&1 || true
    mkdir -p "$state"/{spool,ctld,log} /run/munge /var/log/munge /var/lib/munge
    # munge: a key and the daemon (its socket in /run/munge, as the Slurm plugin expects).
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    if ! pgrep -x munged >/dev/null; then
        if id munge >/dev/null 2>&1; then runuser -u munge -- /usr/sbin/munged; else /usr/sbin/munged --force; fi
    fi
    local cpus; cpus=$(nproc)
    cat > "$conf" <<CONF
ClusterName=chorus-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=17001
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool/%n
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd-%n.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=node1 NodeAddr=127.0.0.1 Port=17001 CPUs=$cpus State=UNKNOWN
NodeName=node2 NodeAddr=127.0.0.1 Port=17002 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
    mkdir -p "$state/spool/node1" "$state/spool/node2"
    export SLURM_CONF=$conf
    slurmctld -f "$conf"
    slurmd -f "$conf" -N node1
    slurmd -f "$conf" -N node2
    # Wait until both nodes are idle.
    for _ in $(seq 100); do
        [ "$(sinfo -h -o '%t' -N 2>/dev/null | grep -c idle)" -ge 2 ] && break
        sleep 0.2
    done
    sinfo -N >&2
    echo "export SLURM_CONF=$conf"
}

down() {
    for pidfile in "$state"/slurmd-*.pid "$state"/slurmctld.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    pkill -f "slurmd -f $conf" 2>/dev/null || true
    pkill -f "slurmctld -f $conf" 2>/dev/null || true
    sleep 0.5
    rm -rf "$state/ctld" "$state/spool"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
