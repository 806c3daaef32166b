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
#   .ci/dns-server.sh reload ZONE    serve zone file ZONE as qorb.test. (waits until NSD has read it)
#   .ci/dns-server.sh stop           stop it and remove its files
#
# Then: QORB_DNS_SERVER=127.0.0.1:PORT go test -run TestRealServer ./resolver/dns/
#
# QORB_DNS_PORT (default 15353) chooses the port, QORB_DNS_DIR (default
# /tmp/qorb-nsd) where its configuration, zone, socket and logs live.
# QORB_PG_PORTS (default 15432,15433,15434), as given to .ci/pg-servers.sh,
# sets the ports of qorbpg.test.'s SRV records.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${QORB_DNS_DIR:-/tmp/qorb-nsd}
PORT=${QORB_DNS_PORT:-15353}
ZONE=qorb.test
PGZONE=qorbpg.test
PG_PORTS=${QORB_PG_PORTS:-15432,15433,15434}
CONF=$DIR/nsd.conf

die() { echo "dns-server.sh: $*" >&2; exit 1; }

install() {
	if command -v nsd >/dev/null && command -v nsd-control >/dev/null; then
		return
	fi
	# Keep the package from starting a system-wide nsd on port 53.
	local guard=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		guard=1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nsd >/dev/null
	if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
	command -v nsd >/dev/null || die "nsd did not install"
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
	sed -e "s/ 15432 / $p1 /" -e "s/ 15433 / $p2 /" -e "s/ 15434 / $p3 /" "$ROOT/testdata/zones/$PGZONE.zone"
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

start() {
	command -v nsd >/dev/null || die "nsd is not installed: run $0 install"
	if [ -f "$DIR/nsd.pid" ] && kill -0 "$(cat "$DIR/nsd.pid")" 2>/dev/null; then
		die "already running (pid $(cat "$DIR/nsd.pid")); run $0 stop first"
	fi
	mkdir -p "$DIR"
	cp "$ROOT/testdata/zones/qorb.test.zone" "$DIR/$ZONE.zone"
	pg_zone >"$DIR/$PGZONE.zone"
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
	nsd -c "$CONF" || { tail -20 "$DIR/nsd.log" >&2 || true; die "nsd did not start"; }
	wait_loaded 0
	wait_pg_zone
	echo "QORB_DNS_SERVER=127.0.0.1:$PORT"
}

reload() {
	local file=${1:?usage: $0 reload ZONEFILE}
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
	rm -rf "$DIR"
}

case "${1:-}" in
install) install ;;
start) start ;;
reload) shift; reload "$@" ;;
stop) stop ;;
*) die "usage: $0 install|start|reload ZONEFILE|stop" ;;
esac
