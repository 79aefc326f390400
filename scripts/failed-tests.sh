#!/usr/bin/env bash
# Prints each failed test of an xUnit XML report (the runner's --report-xunit): its name, the first lines of its
# message and the first frame of its stack trace in Envio's code. test.sh prints this just before its summary, so the
# tail of a long run's log (all CI keeps) says what failed and why, not only how many.
set -euo pipefail
report=${1:?usage: failed-tests.sh REPORT.xml}
perl -0777 -ne '
  sub unescape { my $s = shift; $s =~ s/&quot;/"/g; $s =~ s/&lt;/</g; $s =~ s/&gt;/>/g; $s =~ s/&amp;/&/g; $s }
  while (/<test [^>]*?name="([^"]*)"[^>]*?result="Fail"[^>]*>((?:(?!<test ).)*)/sg) {
    my ($name, $body) = (unescape($1), $2);
    print "$name\n";
    if ($body =~ /<message><!\[CDATA\[(.*?)\]\]><\/message>/s) {
      my @lines = split /\n/, $1;
      print map { "    $_\n" } @lines[0 .. ($#lines < 11 ? $#lines : 11)];
      print "    (", scalar(@lines) - 12, " more lines in the report)\n" if @lines > 12;
    }
    print "    $1\n" if $body =~ /<stack-trace><!\[CDATA\[.*?(at Envio\.[^\n]*)/s;
  }' "$report"
