#!/usr/bin/env bash
# Prints the URL of a PostgreSQL server for the tests: the one on
# 127.0.0.1:5432 when it answers, otherwise one started here from the
# machine's PostgreSQL packages (installed with apt-get when missing), in a
# temporary directory, on 127.0.0.1:54329. Progress goes to standard error.
set -euo pipefail
source "$(dirname "$0")/apt.sh"

if [ -z "${PAL_CI_OWN_POSTGRES:-}" ] && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
	echo "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	exit 0
fi

initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$initdb" ]; then
	apt_install postgresql
	initdb=$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
fi
bin=$(dirname "$initdb")
dir=$(mktemp -d /tmp/pal-ci-postgres.XXXXXX)
chown postgres "$dir"
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >&2
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
	-o "-p 54329 -k $dir -c listen_addresses=127.0.0.1" start >&2
runuser -u postgres -- "$bin/createdb" -h 127.0.0.1 -p 54329 -U postgres test >&2
echo "postgres://postgres@127.0.0.1:54329/test?sslmode=disable"
