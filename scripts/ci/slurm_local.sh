#!/usr/bin/env bash
# A real single-machine SLURM for tests and CI: slurmctld + slurmd + munge on this host.
#
#   scripts/ci/slurm_local.sh start   install the Debian packages if missing (apt, needs root), write
#                                     $DIR/slurm.conf for this host (hostname -s, nproc, memory, no
#                                     GPUs), start munged, slurmctld and slurmd, wait for the node
#                                     to be idle, and print `export SLURM_CONF=$DIR/slurm.conf`
#   scripts/ci/slurm_local.sh stop    stop the daemons this script started (by their pid files) and
#                                     remove DIR when start made it
#   scripts/ci/slurm_local.sh status  exit 0 when the controller answers
#
# DIR (config, state, logs of daemons that run as root) is $SLURM_LOCAL_DIR, which must be a folder
# of this user that no one else can write (created 0700 when missing); without it, start makes a
# private one with mktemp -d (never a fixed, predictable name in the shared temporary folder, which
# anyone could create first), and stop / status find it from the SLURM_CONF that start printed.
# Exit status 3 means SLURM cannot be set up here (not root, no apt-get / packages, an unsafe DIR);
# the reason is printed on stderr.
set -euo pipefail
ACTION="${1:-start}"
MADE_DIR=""

cannot() {
  [[ -n "$MADE_DIR" ]] && rm -rf -- "$MADE_DIR"
  echo "slurm_local: cannot set up SLURM here: $*" >&2
  exit 3
}

# $1 must be a folder of this user that no one else can write (it is created 0700 when missing)
private_dir() {
  local d="$1" mode
  [[ -L "$d" ]] && cannot "$d is a symbolic link; set SLURM_LOCAL_DIR to a private folder of yours, or unset it"
  [[ -e "$d" ]] || mkdir -p -m 700 -- "$d" || cannot "cannot create $d"
  [[ -d "$d" && -O "$d" ]] || cannot "$d is not a folder of $(id -un); set SLURM_LOCAL_DIR to a private folder of yours, or unset it"
  mode="$(stat -c %a -- "$d")"
  (( (8#$mode & 8#022) == 0 )) || cannot "$d is writable by its group or others (mode $mode); run chmod go-w $d, or unset SLURM_LOCAL_DIR"
}

if [[ -n "${SLURM_LOCAL_DIR:-}" ]]; then
  DIR="$SLURM_LOCAL_DIR"
elif [[ -n "${SLURM_CONF:-}" ]] && grep -qs "^# written by scripts/ci/slurm_local.sh" "$SLURM_CONF"; then
  DIR="$(dirname -- "$SLURM_CONF")"  # the folder of an earlier start (not a system slurm.conf's)
elif [[ "$ACTION" == start ]]; then
  DIR="$(mktemp -d "${TMPDIR:-/tmp}/textseld-slurm.XXXXXXXX")" || cannot "mktemp -d failed"
  MADE_DIR="$DIR"
  touch "$DIR/.made-by-slurm-local"
else
  echo "slurm_local: no local SLURM to $ACTION: set SLURM_CONF (printed by start) or SLURM_LOCAL_DIR" >&2
  exit 1
fi
[[ "$ACTION" == start ]] && private_dir "$DIR"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() {
  local f="$1"
  if alive "$f"; then
    local pid; pid="$(cat "$f")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

controller_up() { [[ -f "$CONF" ]] && timeout 5 scontrol ping 2>/dev/null | grep -q UP; }

case "$ACTION" in
  status)
    controller_up && { sinfo; exit 0; }
    exit 1
    ;;
  stop)
    stop_pidfile "$DIR/slurmd.pid"
    stop_pidfile "$DIR/slurmctld.pid"
    [[ -f "$DIR/munged.started" ]] && stop_pidfile /run/munge/munged.pid && rm -f "$DIR/munged.started"
    [[ -f "$DIR/.made-by-slurm-local" && ! -L "$DIR" ]] && rm -rf -- "$DIR"
    echo "slurm_local: stopped"
    exit 0
    ;;
  start) ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && controller_up; then
  echo "export SLURM_CONF=$CONF"
  exit 0
fi

# ---------------------------------------------------------------- packages
need=()
for bin in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/sbin/munged; do
  [[ -x "$bin" ]] || need+=("$bin")
done
if (( ${#need[@]} )); then
  [[ "$(id -u)" == 0 ]] || cannot "missing ${need[*]} and not root (apt-get needs root)"
  command -v apt-get >/dev/null || cannot "missing ${need[*]} and no apt-get"
  echo "slurm_local: installing slurmctld slurmd slurm-client munge" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || cannot "apt-get update failed"
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >&2 \
    || cannot "apt-get install slurmctld slurmd slurm-client munge failed"
fi
[[ "$(id -u)" == 0 ]] || cannot "the daemons run as root here (SlurmUser=root); run as root"

# ---------------------------------------------------------------- slurm.conf for this host
HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
mkdir -p "$DIR"/{state,spool,log}
cat > "$CONF" <<EOF
# written by scripts/ci/slurm_local.sh for $HOST
ClusterName=textseld-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobRequeue=1
KillWait=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# ---------------------------------------------------------------- daemons
MADE_DIR=""  # from here on DIR holds the daemons' logs, which the messages below point to
if ! alive /run/munge/munged.pid; then
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged || cannot "munged did not start"
  touch "$DIR/munged.started"
fi
alive "$DIR/slurmctld.pid" || /usr/sbin/slurmctld -f "$CONF" || cannot "slurmctld did not start (see $DIR/log/slurmctld.log)"
alive "$DIR/slurmd.pid" || /usr/sbin/slurmd -f "$CONF" || cannot "slurmd did not start (see $DIR/log/slurmd.log)"
for _ in $(seq 120); do
  state="$(timeout 5 sinfo -h -n "$HOST" -o %t 2>/dev/null || true)"
  if [[ "$state" == idle* || "$state" == mix* || "$state" == alloc* ]]; then
    echo "slurm_local: node $HOST ($CPUS CPUs, $MEM_MB MB) is $state" >&2
    echo "export SLURM_CONF=$CONF"
    exit 0
  fi
  sleep 0.5
done
cannot "node $HOST did not become idle within 60 s (see $DIR/log/)"
