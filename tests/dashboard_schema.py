#!/usr/bin/python3
"""dashboard_schema.py: the dashboard's live JSON against doc/dashboard.schema.json.

    dashboard_schema.py SCHEMA URL [--job ID]... [--events N]
    dashboard_schema.py SCHEMA URL --stall JOBPOOLCTL QUEUE JOBS

Fetches /api/info, /api/series, /api/dead, /api/job?id=ID for each --job, an unknown
job's 404 and a refused action's 403, and reads N events from /api/events (each
"id: epoch:seq" with its JSON); every body is checked against its schema. Then the
stream is resumed with Last-Event-ID (it goes on after that event) and with an id of
another start (a restart's gap first). Prints a line per check, exits 1 if one failed.

With --stall: a stream whose reader stops (a 4 KiB receive buffer, nothing read) while
JOBS jobs run on QUEUE (jobpoolctl map): the daemon counts what the ring overtook
(jobpool_events_dropped_total), and once the reader reads again the stream says so with
one overrun gap, then goes on after it.

The validator is the subset of JSON Schema the schema file uses (type, enum,
properties, required, additionalProperties, items, prefixItems, minItems, maxItems,
minimum, maxLength, pattern, $ref to a name of the file): the standard library only.
"""

import json
import re
import socket
import sys
import urllib.error
import urllib.request

FAILED = 0


def ok(cond, what, detail=""):
    global FAILED
    print("%s - %s%s" % ("ok" if cond else "not ok", what,
                         "" if cond or not detail else ": %s" % detail))
    if not cond:
        FAILED += 1
    return cond


TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(schema, v, root, path="$"):
    """The list of what is wrong with v (empty: valid)."""
    if "$ref" in schema:
        defs = root.get("$defs", {})
        return validate(defs.get(schema["$ref"]) or root[schema["$ref"]], v, root, path)
    errs = []
    if "type" in schema:
        ts = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](v) for t in ts):
            return ["%s: %r is not %s" % (path, v, "/".join(ts))]
    if "enum" in schema and v not in schema["enum"]:
        errs.append("%s: %r not one of %r" % (path, v, schema["enum"]))
    if "minimum" in schema and isinstance(v, (int, float)) and v < schema["minimum"]:
        errs.append("%s: %r < %r" % (path, v, schema["minimum"]))
    if "maxLength" in schema and isinstance(v, str) and len(v.encode()) > schema["maxLength"]:
        errs.append("%s: longer than %d" % (path, schema["maxLength"]))
    if "pattern" in schema and isinstance(v, str) and not re.search(schema["pattern"], v):
        errs.append("%s: %r does not match %s" % (path, v, schema["pattern"]))
    if isinstance(v, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in v:
                errs.append("%s: no %s" % (path, k))
        for k, x in v.items():
            if k in props:
                errs += validate(props[k], x, root, path + "." + k)
            elif schema.get("additionalProperties") is False:
                errs.append("%s: %s is not documented" % (path, k))
    if isinstance(v, list):
        if "minItems" in schema and len(v) < schema["minItems"]:
            errs.append("%s: fewer than %d items" % (path, schema["minItems"]))
        if "maxItems" in schema and len(v) > schema["maxItems"]:
            errs.append("%s: more than %d items" % (path, schema["maxItems"]))
        pre = schema.get("prefixItems", [])
        for i, x in enumerate(v):
            s = pre[i] if i < len(pre) else schema.get("items")
            if s is not None:
                errs += validate(s, x, root, "%s[%d]" % (path, i))
    return errs


def get(url, method="GET", headers=None):
    """(status, parsed JSON body) of a request."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.load(e), e.headers


def check(schema, root, name, url, **kw):
    status, body, hdr = get(url, **kw)
    errs = validate(root[schema], body, root)
    ok(not errs, "%s matches the schema %s" % (name, schema), "; ".join(errs[:5]))
    return status, body, hdr


def sse(base, n, last_id=None, secs=10):
    """The first n events of /api/events as (id, data) pairs."""
    host, port = base.split("//")[1].rstrip("/").split(":")
    s = socket.create_connection((host, int(port)), timeout=secs)
    req = "GET /api/events HTTP/1.1\r\nHost: %s:%s\r\nAccept: text/event-stream\r\n" % (
        host, port)
    if last_id:
        req += "Last-Event-ID: %s\r\n" % last_id
    s.sendall((req + "\r\n").encode())
    f = s.makefile("rb")
    out, cur_id, data = [], None, None
    status = f.readline().decode()
    chunked = False
    while True:
        line = f.readline().decode().strip()
        if line.lower() == "transfer-encoding: chunked":
            chunked = True
        if line == "":
            break
    buf = ""
    try:
        while len(out) < n:
            if chunked:
                size = int(f.readline().decode().strip(), 16)
                buf += f.read(size).decode()
                f.readline()
            else:
                buf += f.readline().decode()
            while "\n\n" in buf:
                block, buf = buf.split("\n\n", 1)
                cur_id, data = None, None
                for line in block.split("\n"):
                    if line.startswith("id: "):
                        cur_id = line[4:]
                    elif line.startswith("data: "):
                        data = line[6:]
                if data is not None:
                    out.append((cur_id, json.loads(data)))
    except (socket.timeout, ValueError):
        pass
    s.close()
    return status, out[:n]


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def stall(root, base, ctl, q, jobs):
    import subprocess
    import time
    host, port = base.split("//")[1].rstrip("/").split(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    s.sendall(("GET /api/events HTTP/1.1\r\nHost: %s:%s\r\n\r\n" % (host, port)).encode())
    s.settimeout(10)
    head = s.recv(1024).decode(errors="replace")
    ok(" 200 " in head.split("\r\n")[0], "a stream opens", head[:40])
    before = metric(base, "jobpool_events_dropped_total")
    subprocess.run([ctl, "map", "-q", q], input="".join("%d\n" % i for i in range(jobs)),
                   text=True, stdout=subprocess.DEVNULL, check=True)
    deadline = time.monotonic() + 30
    dropped = before
    while time.monotonic() < deadline and dropped == before:
        time.sleep(0.2)
        dropped = metric(base, "jobpool_events_dropped_total")
    ok(dropped > before, "the stalled stream's loss is counted (%s -> %s)" % (before, dropped))
    # Read again: a gap, once, then later events.
    buf, pos, gaps, after = b"", 0, [], []
    data = re.compile(rb'data: (\{[^\n]*\})\n')
    deadline = time.monotonic() + 30
    s.settimeout(2)
    while time.monotonic() < deadline and not (gaps and after):
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        for m in data.finditer(buf, pos):
            pos = m.end()
            e = json.loads(m.group(1))
            if e.get("type") == "gap":
                gaps.append(e)
            elif gaps and not after:
                after.append(e)
    s.close()
    ok(len(gaps) == 1 and gaps[0]["reason"] == "overrun" and
       not validate(root["gap"], gaps[0], root) and gaps[0]["last"] >= gaps[0]["first"],
       "read again: one overrun gap naming what was lost", gaps[:2])
    ok(after and after[0]["seq"] == gaps[0]["last"] + 1 if gaps else False,
       "then the stream goes on right after it", after[:1])
    return 1 if FAILED else 0


def main():
    args = sys.argv[1:]
    if len(args) >= 6 and args[2] == "--stall":
        return stall(json.load(open(args[0])), args[1].rstrip("/"), args[3], args[4],
                     int(args[5]))
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = json.load(open(args[0]))
    base = args[1].rstrip("/")
    jobs, nevents = [], 20
    rest = args[2:]
    while rest:
        if rest[0] == "--job":
            jobs.append(rest[1])
        elif rest[0] == "--events":
            nevents = int(rest[1])
        rest = rest[2:]

    check("info", root, "/api/info", base + "/api/info")
    status, series, _ = check("series", root, "/api/series", base + "/api/series")
    status, dead, _ = check("dead", root, "/api/dead", base + "/api/dead")
    for j in jobs:
        status, body, _ = check("job", root, "/api/job?id=" + j, base + "/api/job?id=" + j)
        ok(status == 200 and str(body.get("id")) == j, "/api/job?id=%s is that job" % j)
    status, body, _ = check("error", root, "an unknown job", base + "/api/job?id=999999999")
    ok(status == 404, "an unknown job is 404", status)
    status, body, _ = check("error", root, "an action without the token",
                            base + "/api/retry?id=1", method="POST")
    ok(status == 403, "an action without the token is 403", status)

    status, events = sse(base, nevents)
    ok(" 200 " in status, "/api/events answers 200", status)
    ok(len(events) == nevents, "%d events read from /api/events" % nevents, len(events))
    bad = []
    for eid, e in events:
        schema = "gap" if e.get("type") == "gap" else "event"
        bad += validate(root[schema], e, root)
        if schema == "event" and eid != "%d:%d" % (e["epoch"], e["seq"]):
            bad.append("id %s is not epoch:seq of %r" % (eid, e))
    ok(not bad, "every event matches the schema and its id is epoch:seq", "; ".join(bad[:5]))
    if len(events) >= 3:
        eid, e = events[1]
        status, again = sse(base, 1, last_id=eid)
        ok(again and again[0][1].get("seq") == e["seq"] + 1,
           "Last-Event-ID %s resumes after it" % eid, again[:1])
        status, again = sse(base, 2, last_id="1:%d" % e["seq"])
        ok(again and again[0][1].get("type") == "gap" and
           again[0][1].get("reason") == "restart" and
           not validate(root["gap"], again[0][1], root),
           "a Last-Event-ID of another start: a restart's gap first", again[:1])
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
