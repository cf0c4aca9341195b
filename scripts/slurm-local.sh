#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (slurmctld + slurmd, munge), for trying
# `tumorscope experiment run --executor slurm` and for the tests. Installs slurm-wlm and munge from
# Debian's packages when run as root and they are missing. Idempotent: a cluster already answering
# `sinfo` is left as it is.
#
#   scripts/slurm-local.sh          start (or check) the cluster; exit 0 when `sinfo` shows the node idle
#   scripts/slurm-local.sh stop     stop slurmd and slurmctld
#
# Prints "SKIPPED: <why>" and exits 3 where Slurm cannot be started (not root and not installed, no
# package source, no systemd-less way to run the daemons).
set -u
CONF_DIR=/etc/slurm
STATE=/var/spool/slurm-local
LOG=/var/log/slurm-local

skip() { echo "SKIPPED: $*"; exit 3; }

if [ "${1:-}" = "stop" ]; then
    pkill -x slurmd 2>/dev/null; pkill -x slurmctld 2>/dev/null
    exit 0
fi

if pgrep -x slurmd >/dev/null && sinfo -h -o '%t' 2>/dev/null | grep -qE 'idle|mix|alloc'; then
    echo "slurm: already running ($(sinfo -h -o '%N %t' | head -1))"
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    [ "$(id -u)" = 0 ] || skip "slurm-wlm and munge are not installed and this is not root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || skip "apt-get update failed (no package source)"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || skip "apt-get install slurm-wlm munge failed"
fi
[ "$(id -u)" = 0 ] || skip "starting slurmctld, slurmd and munged needs root"

# munge: a key, then the daemon (as root: there is no systemd in a container).
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chmod 0400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
    munged --force 2>/dev/null || skip "munged would not start"
fi

HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOG"
cat > "$CONF_DIR/slurm.conf" <<CONF
# Written by tumorscope's scripts/slurm-local.sh: one node, no cgroups, no accounting.
ClusterName=tumorscope-local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MaxArraySize=10000
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
# No cgroup.conf: Slurm 22.05 has no "disabled" cgroup plugin, and with proctrack/linuxproc and
# task/none nothing uses cgroups (slurmd only loads the v1 plugin).
rm -f "$CONF_DIR/cgroup.conf"

pgrep -x slurmctld >/dev/null || slurmctld -c 2>>"$LOG/start.err" || skip "slurmctld would not start ($(tail -1 "$LOG/start.err" 2>/dev/null))"
pgrep -x slurmd >/dev/null || slurmd 2>>"$LOG/start.err" || skip "slurmd would not start ($(tail -1 "$LOG/start.err" 2>/dev/null))"

for _ in $(seq 1 60); do
    if sinfo -h -o '%t' 2>/dev/null | grep -qE 'idle|mix|alloc'; then
        scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
        echo "slurm: one-node cluster up ($(sinfo -h -o '%N %t %c CPUs' | head -1))"
        exit 0
    fi
    # A node that registered as down (earlier crash) is put back.
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    sleep 1
done
skip "the node never became idle: $(sinfo -h -o '%N %t %E' 2>&1 | head -1); see $LOG"
