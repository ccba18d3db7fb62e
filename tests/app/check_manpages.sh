#!/bin/sh
# The generated man pages document every corralctl command, exist for every installed program,
# render without groff warnings, and the gzipped copies the package installs are the same pages
# compressed without a name or time stamp (gzip -n: rebuilding gives the same bytes).
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
for page in corral corralctl corral-agent corral-demo-worker; do
  warnings=$(groff -man -ww -z "$mandir/$page.1" 2>&1)
  [ -z "$warnings" ] || { echo "$page.1: $warnings"; exit 1; }
  grep -q '^\.SH SYNOPSIS AND OPTIONS$' "$mandir/$page.1" || { echo "$page.1 lacks the program's help"; exit 1; }
  gzip -dc "$mandir/$page.1.gz" | cmp -s - "$mandir/$page.1" || { echo "$page.1.gz is not $page.1 compressed"; exit 1; }
  # gzip's header: magic, method, flags (bit 3: a file name follows), then four bytes of mtime
  header=$(od -An -tu1 -N8 "$mandir/$page.1.gz" | tr -s ' ' | sed 's/^ //')
  [ "$header" = "31 139 8 0 0 0 0 0" ] || { echo "$page.1.gz records a name or time: $header"; exit 1; }
done
echo "man pages: corral corralctl corral-agent corral-demo-worker; corralctl.1 covers: $commands"
