#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, to try `cargo xtask reproduce <exp> --slurm` without a cluster.
#
#   scripts/slurm-local.sh start    # installs the Debian packages if missing (as root), starts munged, slurmctld
#                                   # and slurmd, waits until the node is idle
#   scripts/slurm-local.sh status   # the daemons this script started, and what `sinfo` says
#   scripts/slurm-local.sh stop     # stops exactly the daemons this script started (by their pid files)
#
# Everything it writes lives in $SLURM_LOCAL_DIR (default: target/slurm-local of this workspace): slurm.conf,
# the controller's state, the daemons' logs and pid files. The Slurm commands find the config through
# /etc/slurm/slurm.conf, which `start` links to ours when no other config is there (and `stop` removes only
# that link); where a config of its own is already present, export SLURM_CONF=$SLURM_LOCAL_DIR/slurm.conf.
# Needs root (the daemons run as root, munged as the munge user). `start` and `stop` are idempotent.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${SLURM_LOCAL_DIR:-$here/target/slurm-local}"
conf="$dir/slurm.conf"
system_conf=/etc/slurm/slurm.conf
munge_socket=/run/munge/munge.socket.2
packages=(slurmctld slurmd slurm-client munge)

say() { echo "slurm-local: $*" >&2; }
die() { say "$*"; exit 1; }

# The pid in a pid file, if that process is alive.
live_pid() {
    local file="$1" pid
    [[ -s "$file" ]] || return 1
    pid="$(tr -dc 0-9 <"$file")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_packages() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install Slurm and munge yourself"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no package lists yet; the daemons' own services are not started (policy-rc.d or no
    # systemd): this script starts them with its own config.
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$dir/apt.log" 2>&1 ||
        { apt-get update -q >>"$dir/apt.log" 2>&1 &&
            apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$dir/apt.log" 2>&1; } ||
        die "apt-get install ${missing[*]} failed; see $dir/apt.log"
}

write_config() {
    local node
    # `slurmd -C` prints this host's NodeName, CPUs, sockets, cores, threads and RealMemory as slurm.conf wants them.
    node="$(slurmd -C | head -n 1)"
    [[ "$node" == NodeName=* ]] || die "slurmd -C printed no node line: $node"
    local host="${node#NodeName=}"
    host="${host%% *}"
    cat >"$conf.tmp" <<EOF
# Written by scripts/slurm-local.sh: one node, this host, both controller and compute node.
ClusterName=ssinfogan-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job waits cred_expire + 1 seconds before it may start again (default 120).
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job that does not say how much memory it needs gets this per CPU, not the whole node.
DefMemPerCPU=1024
SchedulerType=sched/backfill
ReturnToService=2
# No accounting daemon: jobs are followed with squeue and scontrol; finished ones stay known for MinJobAge.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
# A requeued batch job's task is killed with SIGTERM, then SIGKILL after KillWait.
KillWait=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
$node
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$conf.tmp" "$conf"
}

start_munge() {
    if [[ -S "$munge_socket" ]] && munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        live_pid "$dir/munged.pid" >/dev/null || say "using the munged already running on $munge_socket"
        return 0
    fi
    [[ -s /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing (the munge package creates it)"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 "$dir/munge"
    runuser -u munge -- munged --force --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" ||
        die "munged did not start (it runs as the munge user, who must be able to reach $dir); see $dir/munge/munged.log"
    # munged writes its pid file as the munge user; ours names it for `stop`.
    for _ in $(seq 50); do
        [[ -s "$dir/munge/munged.pid" ]] && break
        sleep 0.1
    done
    [[ -s "$dir/munge/munged.pid" ]] || die "munged wrote no pid file; see $dir/munge/munged.log"
    cp "$dir/munge/munged.pid" "$dir/munged.pid"
    munge -n </dev/null | unmunge >/dev/null || die "munged does not answer; see $dir/munge/munged.log"
}

start() {
    [[ $EUID -eq 0 ]] || die "run as root: the daemons need it"
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    install_packages
    if live_pid "$dir/slurmctld.pid" >/dev/null && live_pid "$dir/slurmd.pid" >/dev/null; then
        say "already running (config $conf)"
    else
        write_config
        if [[ -L "$system_conf" && ! -e "$system_conf" ]]; then
            # A link left by an earlier start from another directory, pointing nowhere now.
            rm -f "$system_conf"
        fi
        if [[ ! -e "$system_conf" ]]; then
            mkdir -p "$(dirname "$system_conf")"
            ln -s "$conf" "$system_conf"
        elif [[ "$(readlink "$system_conf" || true)" != "$conf" ]]; then
            say "$system_conf is another config: export SLURM_CONF=$conf before using sbatch, squeue or cargo xtask"
        fi
        start_munge
        live_pid "$dir/slurmctld.pid" >/dev/null || slurmctld -f "$conf"
        live_pid "$dir/slurmd.pid" >/dev/null || slurmd -f "$conf"
    fi
    export SLURM_CONF="$conf"
    local state=""
    for _ in $(seq 120); do
        state="$(sinfo -h -N -o %T 2>/dev/null | head -n 1 || true)"
        # A suffix (`idle*`: not responding, `idle~`: powered down, `idle#`: powering up) is not ready yet.
        [[ "$state" == idle || "$state" == mixed || "$state" == allocated ]] && break
        sleep 0.5
    done
    case "$state" in
        idle | mixed | allocated) say "node $state; partition local ($(sinfo -h -o '%c CPUs, %m MB' | head -n 1))" ;;
        *) die "the node did not come up (state '${state:-none}'); see $dir/log/slurmctld.log and slurmd.log" ;;
    esac
}

stop_one() {
    local name="$1" file="$2" pid
    if pid="$(live_pid "$file")"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
        say "stopped $name ($pid)"
    fi
    rm -f "$file"
}

stop() {
    stop_one slurmd "$dir/slurmd.pid"
    stop_one slurmctld "$dir/slurmctld.pid"
    stop_one munged "$dir/munged.pid"
    if [[ "$(readlink "$system_conf" 2>/dev/null || true)" == "$conf" ]]; then
        rm -f "$system_conf"
    fi
}

status() {
    local running=0
    for name in munged slurmctld slurmd; do
        if pid="$(live_pid "$dir/$name.pid")"; then
            say "$name running ($pid)"
            running=$((running + 1))
        else
            say "$name not started by this script"
        fi
    done
    if ((running > 0)); then
        SLURM_CONF="$conf" sinfo
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start|stop|status (state in $dir)" ;;
esac
