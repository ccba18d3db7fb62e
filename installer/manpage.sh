#!/usr/bin/env bash
# Writes a man page for PROGRAM from its own help output, so the page cannot drift from the
# program: `corralctl` gets its global help plus `corralctl help COMMAND` for every command it
# lists; other programs get their --help.
#   installer/manpage.sh PROGRAM NAME VERSION "ONE-LINE DESCRIPTION" > NAME.1
set -euo pipefail
program=$1 name=$2 version=$3 summary=$4
export QT_QPA_PLATFORM=offscreen # corral is a GUI program; its --help needs no display
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} # generating docs is not a leak test

roff() { # escape text for a preformatted roff block
  sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}
section() {
  printf '.SH %s\n.nf\n' "$1"
  roff
  printf '.fi\n'
}

printf '.TH %s 1 "" "Corral %s" "User Commands"\n' "$(echo "$name" | tr a-z A-Z)" "$version"
printf '.SH NAME\n%s \\- %s\n' "$name" "$summary"
(exec -a "$name" "$program" --help) | section "SYNOPSIS AND OPTIONS"
if [ "$name" = corralctl ]; then
  commands=$("$program" --help | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{if (seen) exit} on{seen=1}')
  for command in $commands; do
    [ "$command" = help ] && continue
    "$program" help "$command" | section "COMMAND: $(echo "$command" | tr a-z A-Z)"
  done
fi
printf '.SH SEE ALSO\n'
case $name in
  corral) see_also="corralctl corral-agent" ;;
  corralctl) see_also="corral corral-agent corral-demo-worker" ;;
  corral-agent) see_also="corral corralctl systemctl" ;;
  *) see_also="corral corralctl" ;;
esac
last=${see_also##* }
for page in $see_also; do # ".BR page (1)," — the last without the comma
  if [ "$page" = "$last" ]; then printf '.BR %s (1)\n' "$page"; else printf '.BR %s (1),\n' "$page"; fi
done
printf '.SH AUTHORS\nThe Corral authors.\n'
