#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 19, item 10: every command and group answers --help, `phyllo help`
# works, and each usage line names exactly the options its command's parser
# takes (`phyllo help --options COMMAND` lists those from the parser's own
# table, through cli_getopt).  Needs no VM and no QEMU.
set -u
. "$(dirname "$0")/tap.sh"
command -v jq >/dev/null || skip_all "jq is not installed"
tap_new_home

"$PHYLLO" help >/dev/null; ok $? "phyllo help exits 0"
like "$("$PHYLLO" help)" "Commands:" "... and lists the commands"
"$PHYLLO" --help >/dev/null; ok $? "phyllo --help exits 0"

# The commands, as the command table lists them (the first column of --help).
mapfile -t cmds < <("$PHYLLO" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z-]*\( [a-z-]*\)\?\) \{2,\}.*/\1/p' |
                     sed 's/ *$//')
ok "$([ "${#cmds[@]}" -ge 50 ]; echo $?)" "${#cmds[@]} commands listed"
groups=()
for c in "${cmds[@]}"; do
  # shellcheck disable=SC2086
  out=$("$PHYLLO" $c --help 2>&1); rc=$?
  is "$rc" 0 "phyllo $c --help exits 0"
  usage=$(sed -n 's/^usage: phyllo //p' <<<"$out")
  like "$usage" "^$c( |$)" "... and shows its usage line"
  # The options the usage names, and those the parser takes.
  said=$(grep -o -- '--[a-z][a-z0-9-]*' <<<"$usage" | sed 's/^--//' | sort -u | tr '\n' ' ')
  # shellcheck disable=SC2086
  parsed=$("$PHYLLO" help --options $c 2>/dev/null | jq -r '.[].name' | sort -u | tr '\n' ' ')
  is "$said" "$parsed" "phyllo $c: the usage line names the options its parser takes"
  [[ $c == *" "* ]] && groups+=("${c%% *}")
done
for g in $(printf '%s\n' "${groups[@]}" | sort -u); do
  out=$("$PHYLLO" "$g" --help 2>&1); rc=$?
  is "$rc" 0 "phyllo $g --help exits 0"
  like "$out" "usage: phyllo $g VERB" "... and lists the group's commands"
  out=$("$PHYLLO" help "$g" 2>&1); rc=$?
  is "$rc" 0 "phyllo help $g exits 0"
  out=$("$PHYLLO" "$g" 2>&1); rc=$?
  is "$rc" 2 "phyllo $g alone is a usage error (exit 2)"
  like "$out" "usage: phyllo $g VERB" "... that lists the group's commands"
done
# What the help says matches what the program does (issue 19's examples).
like "$("$PHYLLO" snapshot create --help)" "running VM" "snapshot create --help: live snapshots work"
like "$("$PHYLLO" create --help)" "--net .*--usb-redirect" "create --help names --net and --usb-redirect"

tap_done
