#!/bin/bash
# The monitor's startup is an ordered table of steps, each with its undo
# (src/run/boot.c).  A start fails right after each step in turn (a test
# build's $PHYLLOME_FAULT_STEP), and for real at three of them (swtpm
# failing, passt missing, QEMU refusing its CPU model), on a VM that has
# every companion: swtpm, passt with a forward, virtiofsd, a guest agent
# socket (and, for two steps, a disk with a key file).  After each failure:
# the start says why, status says failed with the same words, no process
# of the VM is left (monitor, QEMU, swtpm, passt, virtiofsd), the lock is
# free, and the run dir holds only the state, the lock and the logs.  Then a plain start runs.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
[ "${PHYLLOME_TEST_HOOKS:-1}" = 1 ] || skip_all "built with -Dtest_hooks=false: no fault injection"
[ "$(id -u)" = 0 ] || skip_all "virtiofsd needs root here (the share's companion)"
for t in swtpm swtpm_setup passt qemu-img; do
  command -v "$t" >/dev/null || skip_all "$t is not installed"
done
lc_new_home

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Processes this home started that may outlive a start: found by the
# PHYLLOME_HOME in their environment (every child inherits it) and a comm
# of the VM's processes (not this shell, jq or phyllo itself).
vm_procs() {
  local p n=0
  for p in $(grep -lxE 'phyllo-monitor|qemu-system-.*|swtpm|passt.*|virtiofsd' /proc/[0-9]*/comm 2>/dev/null); do
    p=${p%/comm}
    tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "PHYLLOME_HOME=$PHYLLOME_HOME" || continue
    diag "left: $(basename "$p") $(cat "$p/comm") $(tr '\0' ' ' <"$p/cmdline" | cut -c1-120)"
    n=$((n + 1))
  done
  echo "$n"
}
# What the run dir holds beyond the state, the lock, the logs and the
# note that the TCG warning was given (ops, kept across runs).
run_extra() { ls -A "$PHYLLOME_HOME/run/$1" 2>/dev/null | grep -vxE 'lock|state\.json|tcg-warned|.*\.log(\.1)?' | tr '\n' ' '; }

share=$(mktemp -d /tmp/phyllome-share.XXXXXX)
trap 'lc_cleanup; rm -rf "$share"' EXIT
mkdir "$share/vfs"
chmod -R a+rwX "$share"
export HOME=$share        # a share and a key file must lie under an allowed directory
key=$share/disk.key
head -c 32 /dev/urandom | base64 >"$key"; chmod 600 "$key"

vm=steps$$ port=$(free_port)
lc_create "$vm" --forward "tcp:$port:80"
conf=$PHYLLOME_HOME/vms/$vm/vm.conf
cat >>"$conf" <<CONF

[tpm]
type = emulated

[share vfs]
path = $share/vfs
CONF
grep -q '^\[machine\]$' "$conf" && sed -i 's/^\[machine\]$/[machine]\nagent = on/' "$conf" ||
  printf '\n[machine]\nagent = on\n' >>"$conf"
"$PHYLLO" show "$vm" >/dev/null; ok $? "the definition with swtpm, passt, virtiofsd and an agent reads back"

# check NAME WHAT EXPECTED-ERROR-REGEX: the state after a failed start.
check_failed() {
  local what=$1 out=$2 rc=$3 want=$4 st
  ok $((rc == 0)) "$what: the start fails"
  like "$out" "$want" "$what: it says why"
  st=$("$PHYLLO" status "$vm" --json)
  is "$(jq -r .state <<<"$st")" failed "$what: status says failed"
  like "$(jq -r .error <<<"$st")" "$want" "$what: status gives the same reason"
  is "$(vm_procs)" 0 "$what: no process of the VM is left"
  lc_lock_free "$vm"; ok $? "$what: the lock is free"
  is "$(run_extra "$vm")" "" "$what: the run dir holds only state, lock and logs"
  [ "$(jq -r .state <<<"$st")" = failed ] || "$PHYLLO" stop "$vm" --force >/dev/null 2>&1
}

# The steps, from the refusal of a name that is none.
out=$(PHYLLOME_FAULT_STEP=no-such-step "$PHYLLO" start "$vm" 2>&1); rc=$?
is "$rc" 2 "an unknown PHYLLOME_FAULT_STEP is a usage error"
steps=$(sed -n 's/.*the steps are: //p' <<<"$out")
like "$steps" '^record event-loop sockets .* qemu console-log qmp watch$' "it lists the start steps in order"
for s in $steps; do
  t0=$(date +%s.%N)
  out=$(PHYLLOME_FAULT_STEP=$s "$PHYLLO" start "$vm" 2>&1); rc=$?
  diag "fault after '$s': $(echo "$(date +%s.%N) - $t0" | bc) s"
  check_failed "fault after '$s'" "$out" "$rc" "fault was injected after its start step '$s'"
done

# A disk with a key file (QEMU gets it as a memfd): its own step.  Only
# up to QEMU's spawn, as QEMU's LUKS key derivation takes seconds.
out=$("$PHYLLO" disk add "$vm" --size 16M --encrypt --key-file "$key" --name sec 2>&1)
ok $? "an encrypted disk with a key file" || diag "$out"
for s in key-files qemu; do
  out=$(PHYLLOME_FAULT_STEP=$s "$PHYLLO" start "$vm" 2>&1); rc=$?
  check_failed "with a key file, fault after '$s'" "$out" "$rc" "fault was injected after its start step '$s'"
done
out=$("$PHYLLO" disk remove "$vm" sec --yes 2>&1); ok $? "the encrypted disk goes again" || diag "$out"

# Real failures.  A swtpm that ends at once: QEMU finds no TPM and gives up.
out=$(PHYLLOME_SWTPM=/bin/false "$PHYLLO" start "$vm" 2>&1); rc=$?
check_failed "swtpm failing" "$out" "$rc" "QEMU could not start VM.*tpm"
# passt missing for a NIC that asks for it: swtpm already runs, and goes.
sed -i "s/^forward = tcp:$port:80$/forward = tcp:$port:80\nbackend = passt/" "$conf"
out=$(PHYLLOME_PASST= "$PHYLLO" start "$vm" 2>&1); rc=$?
check_failed "passt missing" "$out" "$rc" "asks for backend = passt, but passt is not installed"
# QEMU itself refuses (every companion runs by then).
sed -i 's/^\[cpu\]$/[cpu]\nmodel = no-such-cpu/' "$conf"
out=$("$PHYLLO" start "$vm" 2>&1); rc=$?
check_failed "QEMU refuses its CPU model" "$out" "$rc" "QEMU could not start VM"
sed -i '/^model = no-such-cpu$/d' "$conf"

# After all that, the VM starts and stops as usual.
out=$("$PHYLLO" start "$vm" 2>&1)
ok $? "a start without a fault runs" || diag "$out"
is "$(lc_state "$vm")" running "status says running"
"$PHYLLO" stop "$vm" --force >/dev/null 2>&1; ok $? "stop --force"
is "$(vm_procs)" 0 "no process of the VM is left after the stop"
is "$(run_extra "$vm")" "" "the run dir holds only state, lock and logs after the stop"

tap_done
