#!/usr/bin/env bash
# scripts/checksrc.sh - rejects banned C functions outside tests/ (STYLE.md "Habits").
#
# Unsafe string functions (sprintf, vsprintf, strcpy, strcat, strtok, atoi,
# gets) and calls that block the event loop (PQexec, PQconnectdb,
# redisCommand, redisConnect, curl_easy_perform, sleep, usleep) are reported as
# "file:line: banned function X". Matching is on whole identifiers followed by
# "(" in code only: comments and string literals are ignored, and snprintf,
# PQexecPrepared or PQsendQuery do not match.
#
# A line that genuinely needs one (e.g. a blocking call in a one-shot CLI path
# that never runs on the loop) may carry the comment "checksrc:allow <reason>".
#
#   sh scripts/checksrc.sh [file.c ...]    default: every *.c/*.h outside tests/
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
	files=("$@")
else
	files=()
	while IFS= read -r f; do
		files+=("$f")
	done < <(find . \( -path ./tests -o -path ./build -o -path ./.git -o -path ./.run \) -prune \
		-o -type f \( -name '*.c' -o -name '*.h' \) -print | sed 's|^\./||' | sort)
fi
[ ${#files[@]} -gt 0 ] || {
	echo "checksrc: no C files"
	exit 0
}

perl -e '
	my @banned = qw(sprintf vsprintf strcpy strcat strtok atoi gets
			PQexec PQconnectdb redisCommand redisConnect curl_easy_perform
			sleep usleep);
	my $re = join("|", @banned);
	my $bad = 0;
	for my $file (@ARGV) {
		open(my $fh, "<", $file) or die "checksrc: $file: $!\n";
		local $/;
		my $src = <$fh>;
		close($fh);
		my @orig = split(/\n/, $src, -1);
		# Blank out comments and string/char literals, keeping newlines so
		# line numbers stay right.
		$src =~ s{
			(/\*.*?\*/)            # block comment
			| (//[^\n]*)           # line comment
			| ("(?:\\.|[^"\\\n])*") # string literal
			| (\x27(?:\\.|[^\x27\\\n])*\x27) # char literal
		}{ my $m = $&; $m =~ s/[^\n]/ /g; $m }gsex;
		my @lines = split(/\n/, $src, -1);
		for my $i (0 .. $#lines) {
			next if $orig[$i] =~ /checksrc:allow/;
			while ($lines[$i] =~ /(?<![A-Za-z0-9_])(?<!\.)(?<!->)($re)\s*\(/g) {
				printf("%s:%d: banned function %s\n", $file, $i + 1, $1);
				$bad++;
			}
		}
	}
	printf("checksrc: %d file(s), %d banned call(s)\n", scalar(@ARGV), $bad);
	exit($bad ? 1 : 0);
' "${files[@]}"
