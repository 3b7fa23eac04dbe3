#!/usr/bin/env bash
# Run the tlsgate benchmark (bench/run.py): installs nmap (Debian package) when it is missing, then runs
# tlsgate, sslyze and nmap against N loopback endpoints. Arguments go to run.py, e.g. `bench/run.sh -n 50`.
# The Python used is $PYTHON, else the repository's .venv, else python3; it must have tlsgate installed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v nmap >/dev/null 2>&1; then
    echo "installing nmap (apt-get)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nmap >/dev/null
fi
for tool in openssl unshare ip; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench needs $tool (openssl, util-linux, iproute2)" >&2; exit 2; }
done

python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python="python3"; fi
fi
if ! "$python" -c "import scanner, sslyze" 2>/dev/null; then
    echo "$python has no tlsgate/sslyze: run 'make test' (it creates .venv) or set PYTHON=/path/to/venv/bin/python" >&2
    exit 2
fi
exec "$python" "$here/run.py" "$@"
