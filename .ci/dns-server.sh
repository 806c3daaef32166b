#!/usr/bin/env bash
# A real DNS server for resolver/dns's TestRealServer: NSD (Debian's nsd
# package), authoritative for qorb.test. on 127.0.0.1 at a high port,
# serving testdata/zones/qorb.test.zone; and for qorbpg.test., the SRV
# records of the PostgreSQL servers of .ci/pg-servers.sh
# (testdata/zones/qorbpg.test.zone), a zone of its own so that reloading
# qorb.test. leaves it alone.
#
#   .ci/dns-server.sh install        apt-get install nsd (without starting the system service)
#   .ci/dns-server.sh start          start it; prints QORB_DNS_SERVER=127.0.0.1:PORT
#                                    and QORB_DNS_DIR=DIR (for reload and stop)
#   .ci/dns-server.sh reload ZONE    serve zone file ZONE as qorb.test. (waits until NSD has read it)
#   .ci/dns-server.sh stop           stop it and remove what start put in QORB_DNS_DIR
#
# Then: QORB_DNS_SERVER=127.0.0.1:PORT QORB_DNS_DIR=DIR go test -run TestRealServer ./resolver/dns/
#
# QORB_DNS_PORT chooses the port (default 15353), or "auto": a free port
# drawn for this run (.ci/freeport.go), and another if NSD then fails to
# bind it. QORB_DNS_DIR is the folder of its configuration, zones, socket
# and logs: a folder that does not exist yet (start makes it, stop removes
# it), an empty one (stop empties it), or, when it is not set, a new one
# that start makes with mktemp. reload and stop need it; stop touches only
# a folder that start marked as its own. QORB_PG_PORTS (default 15432,15433,15434), as
# .ci/pg-servers.sh start prints it, sets the ports of qorbpg.test.'s SRV
# records.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${QORB_DNS_DIR:-}
PORT=${QORB_DNS_PORT:-15353}
ZONE=qorb.test
PGZONE=qorbpg.test
PG_PORTS=${QORB_PG_PORTS:-15432,15433,15434}
CONF=$DIR/nsd.conf
MARK=.made-by-dns-server.sh

die() { echo "dns-server.sh: $*" >&2; exit 1; }

# The shared functions: apt_locked, take_dir, clear_dir.
. "$ROOT/.ci/lib.sh"

installed() { command -v nsd >/dev/null && command -v nsd-control >/dev/null; }

install_locked() {
	if installed; then
		return # another run installed it while we waited
	fi
	# Keep the package from starting a system-wide nsd on port 53.
	local guard=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		guard=1
	fi
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nsd >/dev/null
	if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
}

install() {
	if installed; then
		return
	fi
	apt_locked install_locked
	installed || die "nsd did not install"
}


# need_dir checks that QORB_DNS_DIR names a folder that start took.
need_dir() {
	[ -n "$DIR" ] || die "QORB_DNS_DIR is not set: export what $0 start printed"
	[ -f "$DIR/$MARK" ] || die "$DIR was not made by $0 start"
}

control() { nsd-control -c "$CONF" "$@"; }

# loaded counts the times NSD logged that it read the zone.
loaded() { grep -c "zone $ZONE read with success" "$DIR/nsd.log" 2>/dev/null || true; }

# wait_loaded waits until NSD has read the zone more than $1 times.
wait_loaded() {
	for _ in $(seq 100); do
		if [ "$(loaded)" -gt "$1" ]; then
			return
		fi
		sleep 0.1
	done
	tail -20 "$DIR/nsd.log" >&2 || true
	die "NSD did not load $ZONE within 10s"
}

# pg_zone prints qorbpg.test.'s zone with the ports of QORB_PG_PORTS.
pg_zone() {
	local p1 p2 p3 rest
	IFS=, read -r p1 p2 p3 rest <<<"$PG_PORTS"
	[[ -z $rest && $p1 =~ ^[0-9]+$ && $p2 =~ ^[0-9]+$ && $p3 =~ ^[0-9]+$ ]] ||
		die "QORB_PG_PORTS=$PG_PORTS: want three ports, comma-separated"
	# Each on its target's line only: a new port may be an old one.
	sed -e "/ pg1\.qorbpg\.test\.\$/s/ 15432 / $p1 /" \
		-e "/ pg2\.qorbpg\.test\.\$/s/ 15433 / $p2 /" \
		-e "/ pg3\.qorbpg\.test\.\$/s/ 15434 / $p3 /" "$ROOT/testdata/zones/$PGZONE.zone"
}

# wait_pg_zone waits until NSD has read qorbpg.test.
wait_pg_zone() {
	for _ in $(seq 100); do
		if grep -q "zone $PGZONE read with success" "$DIR/nsd.log" 2>/dev/null; then
			return
		fi
		sleep 0.1
	done
	tail -20 "$DIR/nsd.log" >&2 || true
	die "NSD did not load $PGZONE within 10s"
}

# write_conf writes NSD's configuration for port $PORT.
write_conf() {
	cat >"$CONF" <<CONF
server:
	ip-address: 127.0.0.1@$PORT
	port: $PORT
	do-ip6: no
	username: ""
	chroot: ""
	zonesdir: "$DIR"
	database: ""
	zonelistfile: "$DIR/zone.list"
	xfrdfile: "$DIR/xfrd.state"
	xfrdir: "$DIR"
	pidfile: "$DIR/nsd.pid"
	logfile: "$DIR/nsd.log"
	server-count: 1
	verbosity: 1
	hide-version: yes
remote-control:
	control-enable: yes
	control-interface: "$DIR/control.sock"
zone:
	name: $ZONE
	zonefile: "$DIR/$ZONE.zone"
zone:
	name: $PGZONE
	zonefile: "$DIR/$PGZONE.zone"
CONF
	nsd-checkconf "$CONF" || die "bad configuration $CONF"
}

start() {
	command -v nsd >/dev/null || die "nsd is not installed: run $0 install"
	local auto=""
	if [ "$PORT" = auto ]; then
		auto=1
	elif ! [[ $PORT =~ ^[0-9]+$ ]]; then
		die "QORB_DNS_PORT=$PORT: want a port or auto"
	fi
	DIR=$(take_dir "$DIR" qorb-nsd QORB_DNS_DIR)
	CONF=$DIR/nsd.conf
	# A start that fails stops NSD if it runs and removes the folder.
	trap 'if [ $? != 0 ]; then stop || true; fi' EXIT
	cp "$ROOT/testdata/zones/qorb.test.zone" "$DIR/$ZONE.zone"
	pg_zone >"$DIR/$PGZONE.zone"
	local try go tried=""
	go=$(command -v go || echo /usr/local/go/bin/go)
	for try in 1 2 3 4 5; do
		if [ -n "$auto" ]; then
			PORT=$("$go" run "$ROOT/.ci/freeport.go" ${tried:+-x "$tried"} 1)
		fi
		write_conf
		if nsd -c "$CONF" 2>"$DIR/nsd.stderr"; then
			break
		fi
		if [ -n "$auto" ] && [ "$try" -lt 5 ] &&
			grep -qE "can't bind|Address already in use" "$DIR/nsd.stderr" "$DIR/nsd.log" 2>/dev/null; then
			# Taken since it was drawn: draw another.
			echo "dns-server.sh: port $PORT was taken; drawing another" >&2
			tried+=${tried:+,}$PORT
			rm -f "$DIR/nsd.log"
			continue
		fi
		cat "$DIR/nsd.stderr" >&2 || true
		tail -20 "$DIR/nsd.log" >&2 || true
		die "nsd did not start"
	done
	wait_loaded 0
	wait_pg_zone
	trap - EXIT
	echo "QORB_DNS_SERVER=127.0.0.1:$PORT"
	echo "QORB_DNS_DIR=$DIR"
}

reload() {
	local file=${1:?usage: $0 reload ZONEFILE}
	need_dir
	[ -f "$file" ] || die "no zone file $file"
	local before
	before=$(loaded)
	cp "$file" "$DIR/$ZONE.zone.new"
	mv "$DIR/$ZONE.zone.new" "$DIR/$ZONE.zone"
	control reload "$ZONE" >/dev/null
	# NSD has read the file; it serves it a moment later (callers that
	# must see it wait for the new SOA serial).
	wait_loaded "$before"
}

stop() {
	[ -n "$DIR" ] || die "QORB_DNS_DIR is not set: export what $0 start printed"
	[ -e "$DIR" ] || return 0
	need_dir
	if [ -f "$DIR/nsd.pid" ]; then
		local pid
		pid=$(cat "$DIR/nsd.pid")
		control stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
	fi
	clear_dir "$DIR"
}

case "${1:-}" in
install) install ;;
start) start ;;
reload) shift; reload "$@" ;;
stop) stop ;;
*) die "usage: $0 install|start|reload ZONEFILE|stop" ;;
esac
