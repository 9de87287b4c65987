# Sourced by the lifecycle tests (after tap.sh): a private home with a copy
# of the tiny test guest, VM creation, event-driven waits on the console log,
# and a cleanup that kills only the processes recorded for this home's VMs.
G=${PHYLLOME_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phyllome/test-guest}
[ -r "$G/vmlinux" ] && [ -r "$G/vmlinuz" ] && [ -r "$G/initrd.img" ] ||
  skip_all "the test guest is not built in $G (run tests/guest/build.sh)"
command -v jq >/dev/null || skip_all "jq is not installed"
# KVM may exist yet be unusable (nested); these tests pin TCG for the same timing everywhere.
export PHYLLOME_FORCE_TCG=1
export PHYLLOME_CACHE=${PHYLLOME_CACHE:-$(mktemp -d /tmp/phyllome-cache.XXXXXX)}

lc_vms=()
lc_cleanup() {
  local vm f p
  for vm in "${lc_vms[@]}"; do
    f=$(ls -d "$PHYLLOME_HOME"/run/"$vm"/state.json 2>/dev/null) || continue
    # Only pids still verified as this VM's QEMU, a monitor or swtpm.
    for p in $(jq -r '.qemu_pid, .swtpm_pid, .monitor_pid' "$f" 2>/dev/null); do
      [ "$p" -gt 0 ] 2>/dev/null || continue
      if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "-name guest=$vm," ||
         grep -qxE 'phyllo-monitor|swtpm' "/proc/$p/comm" 2>/dev/null; then
        kill -9 "$p" 2>/dev/null
      fi
    done
  done
  for p in "${lc_extra_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  tap_cleanup
  [[ "$PHYLLOME_CACHE" == /tmp/phyllome-cache.* ]] && rm -rf "$PHYLLOME_CACHE"
}
lc_extra_pids=()
lc_new_home() {
  tap_new_home
  trap lc_cleanup EXIT
  # When QEMU runs as an unprivileged user (phyllo as root), it must reach the home.
  chmod 755 "$PHYLLOME_HOME"
  mkdir "$PHYLLOME_HOME/guest"
  cp "$G/vmlinux" "$G/vmlinuz" "$G/initrd.img" "$PHYLLOME_HOME/guest/"
  chmod 644 "$PHYLLOME_HOME"/guest/*
  GUEST=$PHYLLOME_HOME/guest
}

# lc_create NAME [create args...]: a small BIOS VM booting the PVH vmlinux.
lc_create() {
  local name=$1; shift
  lc_vms+=("$name")
  "$PHYLLO" create "$name" --profile linux --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" \
    --append "console=ttyS0" --display none --memory 256M --cpus 1 --no-uefi "$@" >/dev/null
}

# lc_wait_log NAME REGEX [SECONDS]: until a log line matches (inotify in phyllo logs --follow).
lc_wait_log() {
  timeout "${3:-60}" "$PHYLLO" logs "$1" --follow | grep -m1 -E -- "$2" >/dev/null
}

lc_state() { "$PHYLLO" status "$1" --json | jq -r .state; }
lc_field() { jq -r ".$2" "$PHYLLOME_HOME/run/$1/state.json"; }
lc_alive() { [ -n "$1" ] && [ "$1" -gt 0 ] && [ -e "/proc/$1" ] && [ -n "$(tr -d '\0' <"/proc/$1/cmdline" 2>/dev/null)" ]; }
# The sockets a run leaves: none once the VM stopped.
lc_sockets() { find "$PHYLLOME_HOME/run/$1" -type s 2>/dev/null | wc -l; }
# Is the per-VM lock free?  flock -n succeeds only then; no lock file (a
# start killed before it made the run dir) is free too.
lc_lock_free() { [ ! -e "$PHYLLOME_HOME/run/$1/lock" ] || flock -n "$PHYLLOME_HOME/run/$1/lock" true; }
