#!/usr/bin/env bash
# Install the real servers the tests talk to on loopback (openssl s_server, nginx, gnutls-serv), sslscan,
# which a test compares with, Debian's chromium, the headless browser the HTML report is tested in, and
# PostgreSQL, the server the store's tests start themselves (initdb into a temp dir).
# Does nothing when they are already there.
set -euo pipefail

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v gnutls-serv >/dev/null || need+=(gnutls-bin)
command -v sslscan >/dev/null || need+=(sslscan)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v promtool >/dev/null || need+=(prometheus)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
((${#need[@]})) || exit 0

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install ${need[*]} (apt-get) and run again" >&2; exit 1; }
  sudo_cmd="sudo"
fi
echo "installing ${need[*]} with apt-get" >&2
$sudo_cmd apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${need[@]}"
