#!/bin/bash
# A guest's crash is reported with its reason (issue 18): every VM gets
# QEMU's pvpanic device (and vmcoreinfo) when the QEMU has them; the test
# guest's kernel drives it (pvpanic-mmio), panics on phyllome.panic, QEMU
# reports GUEST_PANICKED and stops the VM, and 'status' (and --json, which
# phyllod's events read) names the event and the reason.  One boot.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home
caps=$("$PHYLLO" caps --json) || skip_all "phyllo caps failed"
jq -e '.devices | index("pvpanic")' <<<"$caps" >/dev/null || skip_all "this QEMU has no pvpanic device"

vm=pan$$
lc_create "$vm" --append "console=ttyS0 phyllome.panic"
argv=$("$PHYLLO" argv "$vm" 2>/dev/null)
like "$argv" "-device pvpanic,id=panic0 " "argv: -device pvpanic"
like "$argv" "-device vmcoreinfo " "argv: -device vmcoreinfo"
out=$("$PHYLLO" start "$vm" 2>&1); ok $? "start" || diag "$out"
lc_wait_log "$vm" 'PHYLLOME-GUEST-PANIC' 120; ok $? "the guest reaches its panic"
like "$("$PHYLLO" logs "$vm" | grep -m1 'PHYLLOME-GUEST-PANIC')" "PHYLLOME-GUEST-PANIC 1 pvpanic" \
  "its pvpanic driver has the device (QEMU0001)"
"$PHYLLO" wait "$vm" --for stopped --timeout 60 >/dev/null; ok $? "the VM stops after the panic"
json=$("$PHYLLO" status "$vm" --json)
diag "$(jq -c '{state, guest_event}' <<<"$json")"
is "$(jq -r .guest_event.reason <<<"$json")" "guest-panic" "status --json: the last guest event's reason is guest-panic"
is "$(jq -r .guest_event.event <<<"$json")" "SHUTDOWN" "after QEMU's GUEST_PANICKED, its stop"
like "$("$PHYLLO" status "$vm")" "guest: +its kernel panicked \\(SHUTDOWN, reason guest-panic\\)" "status says the guest's kernel panicked"
tap_done
