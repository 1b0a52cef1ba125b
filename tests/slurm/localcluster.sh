#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests/test_workflow_slurm.py (and for trying the
# SLURM profile by hand). Debian's slurm-wlm (SLURM 22.05) and munge; this host is controller and
# node; partitions `cpu` (default) and `gpu` on the same node, one count-only GPU GRES so that
# `--gpus=1` can be scheduled (no real GPU is bound); no accounting storage (so `sacct` has no
# history: use `--slurm-status-command squeue`), MinJobAge 1 day so squeue keeps finished jobs.
#
#   tests/slurm/localcluster.sh install   # apt-get install slurm-wlm munge (root only; idempotent)
#   tests/slurm/localcluster.sh start     # write the config, start munged, slurmctld, slurmd
#   tests/slurm/localcluster.sh status    # sinfo
#   tests/slurm/localcluster.sh stop      # stop exactly the daemons `start` started
#
# The configuration is written to /etc/slurm/slurm.conf, the path every SLURM command reads by
# default: jobs call `srun`, which does not see a non-default SLURM_CONF. An existing slurm.conf
# that this script did not write is never touched (start refuses). State, logs and pid files live
# in $ONCOSHOT_SLURM_DIR (default /var/tmp/oncoshot-slurm).
set -euo pipefail

STATE=${ONCOSHOT_SLURM_DIR:-/var/tmp/oncoshot-slurm}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by oncoshot tests/slurm/localcluster.sh"

die() { echo "localcluster: $*" >&2; exit 1; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        echo "localcluster: slurm-wlm and munge already installed"; return 0
    fi
    [ "$(id -u)" = 0 ] || die "installing slurm-wlm and munge needs root (apt-get)"
    command -v apt-get >/dev/null || die "apt-get not found: install slurm-wlm and munge by hand"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    # policy-rc.d keeps the packages from starting their own daemons (we start ours below)
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; created=1; fi
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null || {
        [ -n "$created" ] && rm -f $policy; die "apt-get install slurm-wlm munge failed"; }
    [ -n "$created" ] && rm -f $policy
    echo "localcluster: installed $(slurmctld -V)"
}

write_conf() {
    local host mem
    host=$(hostname -s)
    # the node announces 128 GB whatever it has (SlurmdParameters=config_overrides): the profile's
    # requests are sized for the full run (up to 64 GB), memory is not enforced here
    # (task/none), and the demo needs little
    mem=131072
    mkdir -p "$STATE"/{state,spool,log} $CONF_DIR
    if [ -e $CONF ] && ! grep -qF "$MARK" $CONF; then
        die "$CONF exists and was not written by this script; refusing to overwrite a real cluster's configuration"
    fi
    cat > $CONF <<CONF
$MARK
ClusterName=oncoshot-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=86400
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$host CPUs=$(nproc) RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
CONF
    printf '%s\nAutoDetect=off\nNodeName=%s Name=gpu File=/dev/null Count=1\n' "$MARK" "$host" > $CONF_DIR/gres.conf
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    [ "$(id -u)" = 0 ] || die "starting the SLURM daemons needs root"
    command -v slurmctld >/dev/null || die "slurmctld not installed (run: $0 install)"
    write_conf
    # munge: its own key if the package did not create one
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge; dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true; chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    if ! munge -n >/dev/null 2>&1; then
        if id munge >/dev/null 2>&1; then
            runuser -u munge -- munged --pid-file="/run/munge/oncoshot-munged.pid"
            cp /run/munge/oncoshot-munged.pid "$STATE/munged.pid"
        else
            munged --force --pid-file="$STATE/munged.pid"
        fi
    fi
    alive "$STATE/slurmctld.pid" || slurmctld
    alive "$STATE/slurmd.pid" || slurmd
    local host; host=$(hostname -s)
    for _ in $(seq 1 60); do
        if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "localcluster: up ($host: partitions cpu, gpu)"; return 0
        fi
        scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    die "the node did not become idle within 60 s"
}

stop() {
    for d in slurmd slurmctld munged; do
        local pidfile="$STATE/$d.pid"
        if alive "$pidfile"; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            for _ in $(seq 1 20); do alive "$pidfile" || break; sleep 0.25; done
        fi
        rm -f "$pidfile"
    done
    echo "localcluster: stopped"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
