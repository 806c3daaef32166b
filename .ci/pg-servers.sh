#!/usr/bin/env bash
# Three real PostgreSQL servers for contrib/pg's tests and its example:
# Debian's postgresql package, three clusters made with initdb under
# $QORB_PG_DIR, trust authentication on 127.0.0.1 only, listening on
# 127.0.0.1 at three high ports. .ci/dns-server.sh serves their SRV records
# (testdata/zones/qorbpg.test.zone: _postgresql._tcp.qorbpg.test.).
#
#   .ci/pg-servers.sh install   apt-get install postgresql (without starting the system service)
#   .ci/pg-servers.sh start     initdb (once) and start the three servers; prints
#                               QORB_PG_SERVERS=127.0.0.1:15432,127.0.0.1:15433,127.0.0.1:15434
#                               QORB_PG_DIRS=DIR1,DIR2,DIR3   (data directories, same order)
#                               QORB_PG_CTL=/usr/lib/postgresql/N/bin/pg_ctl
#   .ci/pg-servers.sh stop      stop them and remove their directories
#
# Then, with QORB_DNS_SERVER from .ci/dns-server.sh start:
#   QORB_PG_SERVERS=... QORB_PG_DIRS=... QORB_PG_CTL=... QORB_DNS_SERVER=... go test ./pg/   (in contrib/)
#
# The servers run as the postgres user: when this script runs as root it
# uses runuser for initdb and pg_ctl. QORB_PG_PORTS (default
# 15432,15433,15434) chooses the ports (give the same value to
# .ci/dns-server.sh start so that the SRV records match), QORB_PG_DIR
# (default /tmp/qorb-pg) where the clusters live.
set -euo pipefail

BASE=${QORB_PG_DIR:-/tmp/qorb-pg}
PORTS=${QORB_PG_PORTS:-15432,15433,15434}
PGUSER_OS=postgres

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

install() {
	if bindir >/dev/null; then
		return
	fi
	# Keep the package from starting the system-wide cluster on port 5432.
	local guard=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		guard=1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
	bindir >/dev/null || die "postgresql did not install (no /usr/lib/postgresql/*/bin/pg_ctl)"
}

ports() { tr ',' ' ' <<<"$PORTS"; }

start() {
	local bin
	bin=$(bindir) || die "postgresql is not installed: run $0 install"
	[ "$(id -u)" != 0 ] || id "$PGUSER_OS" >/dev/null 2>&1 || die "no $PGUSER_OS user"
	mkdir -p "$BASE"
	chmod 755 "$BASE"
	local servers="" dirs="" port dir
	for port in $(ports); do
		[[ $port =~ ^[0-9]+$ ]] || die "bad port $port in QORB_PG_PORTS=$PORTS"
		dir=$BASE/$port
		if [ ! -f "$dir/PG_VERSION" ]; then
			rm -rf "$dir"
			mkdir -p "$dir"
			[ "$(id -u)" != 0 ] || chown "$PGUSER_OS:" "$dir"
			chmod 700 "$dir"
			(cd "$dir" && as_pg "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$BASE/initdb-$port.log" 2>&1) ||
				{ tail -20 "$BASE/initdb-$port.log" >&2; die "initdb $dir failed"; }
			# Loopback only, trust: these servers exist for tests.
			cat >"$dir/pg_hba.conf" <<HBA
local all all trust
host  all all 127.0.0.1/32 trust
HBA
			cat >>"$dir/postgresql.conf" <<CONF

# qorb tests
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 50
shared_buffers = 16MB
fsync = off
full_page_writes = off
log_min_messages = warning
CONF
		fi
		if ! (cd "$dir" && as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1); then
			(cd "$dir" && as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null) ||
				{ tail -20 "$dir/server.log" >&2 || true; die "server on port $port did not start"; }
		fi
		servers+=${servers:+,}127.0.0.1:$port
		dirs+=${dirs:+,}$dir
	done
	echo "QORB_PG_SERVERS=$servers"
	echo "QORB_PG_DIRS=$dirs"
	echo "QORB_PG_CTL=$bin/pg_ctl"
}

stop() {
	local bin port dir
	bin=$(bindir) || { rm -rf "$BASE"; return; }
	for port in $(ports); do
		dir=$BASE/$port
		if [ -f "$dir/postmaster.pid" ]; then
			(cd "$dir" && as_pg "$bin/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1) || true
		fi
	done
	rm -rf "$BASE"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*) die "usage: $0 install|start|stop" ;;
esac
