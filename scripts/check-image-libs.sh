#!/usr/bin/env bash
# scripts/check-image-libs.sh - the runtime image has every shared library the
# binaries link.
#
#   sh scripts/check-image-libs.sh [BINDIR]     default: bin
#
# For each library ldd resolves for bin/rampart-*, the Debian package that
# ships it must be one of the Dockerfile's RUNTIME_PACKAGES, a package they
# depend on (recursively), or part of every Debian base (Priority: required).
# The binaries are built on this Debian 12 machine from the same packages as
# the image's build stage. RUNTIME_PACKAGES in the environment overrides the
# Dockerfile's list (the self-test in scripts/check-compose.sh drops one to see this
# fail).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=check-image-libs
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$RAMPART_ROOT"
bindir=${1:-bin}

pkgs=${RUNTIME_PACKAGES:-$(sed -n 's/^ARG RUNTIME_PACKAGES="\(.*\)"$/\1/p' Dockerfile)}
[ -n "$pkgs" ] || die "no ARG RUNTIME_PACKAGES=\"...\" line in Dockerfile"

# Everything the runtime packages pull in, and the base every image has.
# shellcheck disable=SC2086 # $pkgs is a word list
allowed=$( {
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances $pkgs | grep -v '^ ' | tr -d '<>'
	dpkg-query -W -f='${Package} ${Priority} ${Essential}\n' |
		awk '$2 == "required" || $3 == "yes" { print $1 }'
} | sed 's/:.*//' | sort -u)

# One line per binary and library: "binary lib path" (path "not" = not found).
links=$(for b in "$bindir"/rampart-*; do
	[ -x "$b" ] || continue
	ldd "$b" | awk -v b="$b" '/=>/ && $3 ~ /^\// { print b, $1, $3 } /not found/ { print b, $1, "not" }'
done)
[ -n "$links" ] || die "no binaries in $bindir (build first: make)"

# The owning package of each distinct library, in one dpkg query
# (usrmerge: a library ldd finds in /lib is registered as /usr/lib or /lib).
declare -A owner
while IFS= read -r line; do
	pkg=${line%%: *}
	path=${line#*: }
	owner[$path]=${pkg%%[:,]*}
	owner[/usr$path]=${pkg%%[:,]*}
	owner[${path#/usr}]=${pkg%%[:,]*}
done < <(awk '$3 != "not" { print $3; print "/usr" $3 }' <<<"$links" | sort -u |
	xargs dpkg -S 2>/dev/null || true)

bad=0 checked=0
while read -r b lib path; do
	checked=$((checked + 1))
	if [ "$path" = "not" ]; then
		say "$b: $lib not found by ldd"
		bad=$((bad + 1))
		continue
	fi
	pkg=${owner[$path]:-${owner[$(readlink -f "$path")]:-}}
	if [ -z "$pkg" ]; then
		say "$b: $lib ($path) belongs to no Debian package"
		bad=$((bad + 1))
	elif ! grep -qx "$pkg" <<<"$allowed"; then
		say "$b: $lib comes from $pkg, which the runtime image does not install"
		bad=$((bad + 1))
	fi
done <<<"$links"
[ "$checked" -gt 0 ] || die "no binaries in $bindir (build first: make)"
[ "$bad" -eq 0 ] || die "$bad library problem(s); fix ARG RUNTIME_PACKAGES in Dockerfile"
say "ok: $checked linked libraries of $bindir/rampart-* are in the runtime image's packages"
