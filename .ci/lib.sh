# Functions shared by .ci/dns-server.sh and .ci/pg-servers.sh, which
# source this file after they set MARK (the name of the file that marks a
# folder as theirs) and die (how they fail).

# apt_locked runs a command holding this machine's lock for the CI
# scripts' apt-get: two runs at once install one after the other, and the
# policy-rc.d guard of one is not removed under the other.
apt_locked() {
	(
		flock -w 900 9 || die "waited 15 minutes for /var/lock/qorb-ci-apt.lock"
		"$@"
	) 9>/var/lock/qorb-ci-apt.lock
}

# take_dir DIR PREFIX VAR prints the folder start works in, marked as this
# script's: DIR when it does not exist (made here) or is an empty folder
# (given), or a new one made with mktemp when DIR is empty.
take_dir() {
	local dir=$1 how=made
	if [ -z "$dir" ]; then
		dir=$(mktemp -d "${TMPDIR:-/tmp}/$2.XXXXXX")
	elif [ ! -e "$dir" ]; then
		mkdir "$dir"
	elif [ -d "$dir" ] && [ -z "$(ls -A "$dir")" ]; then
		how=given
	elif [ -f "$dir/$MARK" ]; then
		die "$3=$dir is in use by an earlier start: run $0 stop first"
	else
		die "$3=$dir is not an empty folder: give a new or an empty one"
	fi
	echo "$how by $0 start: $0 stop removes $([ $how = made ] && echo "this folder" || echo "what is in this folder")" >"$dir/$MARK"
	echo "$dir"
}

# clear_dir removes what start put in its folder: the folder itself when
# start made it, what is in it when it was given.
clear_dir() {
	if [ "$(cut -d' ' -f1 "$1/$MARK")" = made ]; then
		rm -rf "$1"
	else
		find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
	fi
}
