#!/usr/bin/env bash
# The system packages the test suite runs for real, installed from Debian's packages when missing:
# chromium (tests/test_report.py renders the HTML report headless), a Java runtime (the Spark
# tests start a local[2] JVM) and prometheus with promtool (tests/test_prometheus_server.py runs a
# real server on a temporary port; the package's own service is not needed).  Part of README's test command, so a fresh machine gets them.
# Installs as root, or through `sudo -n` when that works; otherwise it names the command to run
# and fails, so the tests never run without them and never skip.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
if [ -z "${JAVA_HOME:-}" ] && ! command -v java >/dev/null 2>&1; then
    need+=(openjdk-17-jre-headless)
fi
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then
    echo "system-packages: chromium, java and prometheus present"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "system-packages: missing ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-packages: missing ${need[*]} and no apt-get here; install them with your package manager" >&2
    exit 1
fi
echo "system-packages: installing ${need[*]} from Debian's packages"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
