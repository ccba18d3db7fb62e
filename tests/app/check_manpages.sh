#!/bin/sh
# The generated man pages document every corralctl command and render without groff warnings.
#   check_manpages.sh CORRALCTL MAN_DIR
set -eu
corralctl=$1 mandir=$2
commands=$("$corralctl" --help | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{print $1}')
[ -n "$commands" ] || { echo "no commands in corralctl --help"; exit 1; }
for command in $commands; do
  [ "$command" = help ] && continue
  upper=$(echo "$command" | tr a-z A-Z)
  grep -q "^\.SH COMMAND: $upper\$" "$mandir/corralctl.1" || { echo "corralctl.1 lacks command $command"; exit 1; }
done
for page in corral corralctl; do
  warnings=$(groff -man -ww -z "$mandir/$page.1" 2>&1)
  [ -z "$warnings" ] || { echo "$page.1: $warnings"; exit 1; }
done
echo "man pages cover: $commands"
