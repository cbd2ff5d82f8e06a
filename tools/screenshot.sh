#!/bin/sh
# tools/screenshot.sh [BUILDDIR]: doc/dashboard.png, the dashboard as README.md shows it.
# Starts jobpoold from BUILDDIR (default: build-check, then build) on a private socket
# and a free loopback port, runs jobs on three queues for about 40 seconds (some fail
# and end dead) so that the chart has a shape, and takes the page in headless chromium
# (tests/dashboard_browser.py shot). Needs chromium and libjs-dygraphs.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-}
if [ -z "$build" ]; then
	for d in "$top/build-check" "$top/build"; do
		[ -x "$d/daemon/jobpoold" ] && { build=$d; break; }
	done
fi
[ -n "$build" ] && [ -x "$build/daemon/jobpoold" ] || {
	echo "screenshot.sh: no built jobpoold (give the build directory)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/jpshot.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; sleep 1; rm -rf "$tmp"' EXIT
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/fails.sh" <<'SH'
#!/bin/sh
echo "upstream said 503 Service Unavailable" >&2
exit 1
SH
chmod +x "$tmp/fails.sh"
cat >"$tmp/jobpool.conf" <<CONF
socket = "$tmp/jobpool.sock";
metrics_listen = "127.0.0.1:$port";
dashboard_dir = "$top/dashboard";
queues = (
	{ name = "thumbnails"; handler = "sha256"; workers = 3; },
	{ name = "mail"; handler = "sleep"; workers = 2; },
	{ name = "webhooks"; handler = "exec:$tmp/fails.sh"; workers = 1; retries = 1;
	  backoff_base = 0.1; backoff_max = 0.1; }
);
CONF
"$build/daemon/jobpoold" -c "$tmp/jobpool.conf" >"$tmp/log" 2>&1 &
pid=$!
export JOBPOOL_SOCKET="$tmp/jobpool.sock"
ctl="$build/cli/jobpoolctl"
i=0
until "$ctl" ping >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$tmp/log" >&2; exit 1; }; sleep 0.1
done
# Mail takes 50-400 ms a job; a few webhooks fail, retry and die.
( n=0; while [ $n -lt 200 ]; do "$ctl" submit -q mail $((50 + (n * 37) % 350)) >/dev/null;
  [ $((n % 25)) -eq 0 ] && "$ctl" submit -q webhooks "{\"id\":$n}" >/dev/null
  n=$((n + 1)); sleep 0.2; done ) &
/usr/bin/python3 "$top/tests/dashboard_browser.py" shot "http://127.0.0.1:$port/" \
	"$top/doc/dashboard.png" --width 1440 --height 1000 --ctl "$ctl" --grow thumbnails \
	--seconds 40
echo "screenshot.sh: wrote $top/doc/dashboard.png"
