#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a Debian or Ubuntu machine that has
# only the Rust toolchain and a C compiler: installs what the suite needs when
# it is missing (Chromium and its driver for the admin UI's browser test,
# PostgreSQL and MariaDB for the database suites), starts the database
# servers when they are down, then runs every test on SQLite, PostgreSQL and
# MariaDB. Uses sudo when not run as root.
set -euo pipefail
cd "$(dirname "$0")"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# What to install: Debian names the driver chromium-driver, Ubuntu chromium-chromedriver.
missing=()
if ! command -v chromedriver >/dev/null; then
    if apt-cache show chromium-driver >/dev/null 2>&1; then
        missing+=(chromium chromium-driver)
    else
        missing+=(chromium-browser chromium-chromedriver)
    fi
fi
fresh_postgres=false fresh_mariadb=false
if ! command -v pg_ctlcluster >/dev/null; then
    missing+=(postgresql postgresql-client)
    fresh_postgres=true
fi
if ! command -v mariadbd >/dev/null && ! command -v mysqld >/dev/null; then
    missing+=(mariadb-server mariadb-client)
    fresh_mariadb=true
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The database servers: started if they are down (with or without systemd).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
fi
if ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && ! mariadb-admin -u root ping >/dev/null 2>&1; then
    as_root install -d -o mysql -g mysql /run/mysqld
    as_root start-stop-daemon --start --oknodo --background --exec "$(command -v mariadbd || command -v mysqld)" -- --user=mysql
fi
for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && as_root mariadb-admin -u root ping >/dev/null 2>&1 && break
    sleep 1
done

# Servers installed just now: the suites' users, as the README describes them
# (postgres and root without a password on 127.0.0.1, a database `test`).
if $fresh_postgres; then
    hba=$(as_root su postgres -c "psql -Atc 'SHOW hba_file'")
    as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    as_root su postgres -c "psql -qc 'SELECT pg_reload_conf()'"
    as_root su postgres -c "createdb test" || true
fi
if $fresh_mariadb; then
    as_root mariadb -u root -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD(''); \
        CREATE USER IF NOT EXISTS root@127.0.0.1; GRANT ALL ON *.* TO root@127.0.0.1 WITH GRANT OPTION; \
        CREATE DATABASE IF NOT EXISTS test"
fi

# Each test makes its own database (ew_test_*); drop those of earlier runs.
psql -h 127.0.0.1 -U postgres -d test -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'ew\_test\_%'" |
    while read -r db; do psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS \"$db\""; done
mariadb -h 127.0.0.1 -u root -N -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'ew\_test\_%'" |
    while read -r db; do mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS \`$db\`"; done

# Every test, the PostgreSQL and MySQL/MariaDB suites included.
cargo test -- --include-ignored
