#!/usr/bin/env bash
# Three real PostgreSQL servers for contrib/pg's tests and its example:
# Debian's postgresql package, three clusters made with initdb in a folder
# of their own, trust authentication on 127.0.0.1 only, listening on
# 127.0.0.1 at three high ports. .ci/dns-server.sh serves their SRV records
# (testdata/zones/qorbpg.test.zone: _postgresql._tcp.qorbpg.test.).
#
#   .ci/pg-servers.sh install   apt-get install postgresql (without starting the system service)
#   .ci/pg-servers.sh start     initdb and start the three servers; prints
#                               QORB_PG_SERVERS=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
#                               QORB_PG_DIRS=DIR1,DIR2,DIR3   (data directories, same order)
#                               QORB_PG_CTL=/usr/lib/postgresql/N/bin/pg_ctl
#                               QORB_PG_PORTS=P1,P2,P3        (for .ci/dns-server.sh start)
#                               QORB_PG_DIR=DIR               (for stop)
#   .ci/pg-servers.sh stop      stop the servers of QORB_PG_DIR and remove what start put there
#
# Then, with QORB_DNS_SERVER from .ci/dns-server.sh start:
#   QORB_PG_SERVERS=... QORB_PG_DIRS=... QORB_PG_CTL=... QORB_DNS_SERVER=... go test ./pg/   (in contrib/)
#
# QORB_PG_PORTS chooses the ports: three, comma-separated (default
# 15432,15433,15434, the ports of the SRV records that .ci/dns-server.sh
# serves when it is not told others), or "auto": three free ports drawn for
# this run (.ci/freeport.go), and another for a server that then fails to
# bind its port. Give the ports printed to .ci/dns-server.sh start so that
# the SRV records match.
#
# QORB_PG_DIR is the folder the clusters live in: a folder that does not
# exist yet (start makes it, stop removes it), an empty one (stop empties
# it), or, when it is not set, a new one that start makes with mktemp; stop
# touches only a folder that start marked as its own. The servers run as
# the postgres user: when this script runs as root it uses runuser for
# initdb and pg_ctl, and the folder's parent must be open to that user.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${QORB_PG_DIR:-}
PORTS=${QORB_PG_PORTS:-15432,15433,15434}
PGUSER_OS=postgres
MARK=.made-by-pg-servers.sh

die() { echo "pg-servers.sh: $*" >&2; exit 1; }

# bindir prints the directory of the newest installed server's programs.
bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || return 1
	echo "$d"
}

# as_pg runs a command as the postgres user (directly when we are not root).
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$PGUSER_OS" -- "$@"
	else
		"$@"
	fi
}

# The shared functions: apt_locked, take_dir, clear_dir.
. "$ROOT/.ci/lib.sh"

install_locked() {
	if bindir >/dev/null; then
		return # another run installed it while we waited
	fi
	# Keep the package from starting the system-wide cluster on port 5432.
	local guard=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		guard=1
	fi
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >/dev/null
	if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
}

install() {
	if bindir >/dev/null; then
		return
	fi
	apt_locked install_locked
	bindir >/dev/null || die "postgresql did not install (no /usr/lib/postgresql/*/bin/pg_ctl)"
}

# freeport prints one free port that none of the given ports is.
freeport() {
	local go
	go=$(command -v go || echo /usr/local/go/bin/go)
	"$go" run "$ROOT/.ci/freeport.go" -x "$(tr ' ' , <<<"$*")" 1
}


# bind_failed reports whether a server's log says that its port was taken.
bind_failed() {
	grep -qE 'could not bind|Address already in use|could not create any TCP/IP sockets' "$1" 2>/dev/null
}

start() {
	local bin
	bin=$(bindir) || die "postgresql is not installed: run $0 install"
	[ "$(id -u)" != 0 ] || id "$PGUSER_OS" >/dev/null 2>&1 || die "no $PGUSER_OS user"
	local auto="" ports=()
	if [ "$PORTS" = auto ]; then
		auto=1
		local go
		go=$(command -v go || echo /usr/local/go/bin/go)
		mapfile -t ports < <("$go" run "$ROOT/.ci/freeport.go" 3) || true
		[ "${#ports[@]}" = 3 ] || die "no free ports"
	else
		IFS=, read -r -a ports <<<"$PORTS"
		[ "${#ports[@]}" = 3 ] || die "QORB_PG_PORTS=$PORTS: want three ports, comma-separated, or auto"
		local p
		for p in "${ports[@]}"; do
			[[ $p =~ ^[0-9]+$ ]] || die "bad port $p in QORB_PG_PORTS=$PORTS"
		done
	fi
	BASE=$(take_dir "$BASE" qorb-pg QORB_PG_DIR)
	chmod 755 "$BASE"
	# A start that fails stops the servers it started and removes the folder.
	trap 'if [ $? != 0 ]; then stop || true; fi' EXIT
	local servers="" dirs="" i dir
	for i in 0 1 2; do
		dir=$BASE/$((i + 1))
		mkdir "$dir"
		[ "$(id -u)" != 0 ] || chown "$PGUSER_OS:" "$dir"
		chmod 700 "$dir"
		(cd "$dir" && as_pg "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$BASE/initdb-$((i + 1)).log" 2>&1) ||
			{ tail -20 "$BASE/initdb-$((i + 1)).log" >&2; die "initdb $dir failed"; }
		# Loopback only, trust: these servers exist for tests.
		cat >"$dir/pg_hba.conf" <<HBA
local all all trust
host  all all 127.0.0.1/32 trust
HBA
		cat >>"$dir/postgresql.conf" <<CONF

# qorb tests
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 50
shared_buffers = 16MB
fsync = off
full_page_writes = off
log_min_messages = warning
include 'qorb-port.conf'
CONF
		local try
		for try in 1 2 3 4 5; do
			# The port is in the cluster's configuration, so that a test
			# that restarts the server with pg_ctl gets the same one.
			echo "port = ${ports[i]}" >"$dir/qorb-port.conf"
			[ "$(id -u)" != 0 ] || chown "$PGUSER_OS:" "$dir/qorb-port.conf"
			if (cd "$dir" && as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null 2>"$BASE/pg_ctl.err"); then
				break
			fi
			if [ -n "$auto" ] && [ "$try" -lt 5 ] && bind_failed "$dir/server.log"; then
				# Taken since it was drawn: draw another.
				echo "pg-servers.sh: port ${ports[i]} was taken; drawing another" >&2
				mv "$dir/server.log" "$dir/server.log.$try"
				ports[i]=$(freeport "${ports[@]}")
				continue
			fi
			cat "$BASE/pg_ctl.err" >&2 || true
			tail -20 "$dir/server.log" >&2 || true
			die "server on port ${ports[i]} did not start"
		done
		servers+=${servers:+,}127.0.0.1:${ports[i]}
		dirs+=${dirs:+,}$dir
	done
	echo "QORB_PG_SERVERS=$servers"
	echo "QORB_PG_DIRS=$dirs"
	echo "QORB_PG_CTL=$bin/pg_ctl"
	echo "QORB_PG_PORTS=$(tr ' ' , <<<"${ports[*]}")"
	echo "QORB_PG_DIR=$BASE"
	trap - EXIT
}

stop() {
	[ -n "$BASE" ] || die "QORB_PG_DIR is not set: export what $0 start printed"
	[ -e "$BASE" ] || return 0
	[ -f "$BASE/$MARK" ] || die "$BASE was not made by $0 start; leaving it"

	local bin dir
	if bin=$(bindir); then
		for dir in "$BASE"/*/; do
			dir=${dir%/}
			if [ -f "$dir/postmaster.pid" ]; then
				(cd "$dir" && as_pg "$bin/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1) || true
			fi
		done
	fi
	clear_dir "$BASE"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*) die "usage: $0 install|start|stop" ;;
esac
