#!/usr/bin/python3
"""dashboard_browser.py: the dashboard in a real browser, for tests/it_dashboard.sh and
tools/screenshot.sh.

Debian's chromium, headless, driven through the DevTools protocol over a pipe
(--remote-debugging-pipe: JSON messages ending in NUL on fds 3 and 4), so that only the
standard library is needed. Every console error, uncaught exception and failed load the
page causes is collected (Runtime.consoleAPICalled, Runtime.exceptionThrown,
Log.entryAdded): "no console error" is a real check.

    dashboard_browser.py check URL OUTDIR [--chart dygraphs|svg] [--queues a,b]
        [--ctl JOBPOOLCTL --grow QUEUE] [--retry ID --ctl JOBPOOLCTL] [--readonly]
        [--pause QUEUE --witness QUEUE --ctl JOBPOOLCTL]
    dashboard_browser.py shot URL FILE [--width W --height H] [--ctl ... --grow QUEUE]

check prints a TAP-like line per assertion and exits 1 if one failed; screenshots go
to OUTDIR (desktop.png, phone.png, wall.png).
"""

import argparse
import base64
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time


class Browser:
    """chromium --headless with one page, spoken to over --remote-debugging-pipe."""

    def __init__(self, width, height):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise RuntimeError("chromium is missing (quickstart.sh test installs it)")
        self.profile = tempfile.mkdtemp(prefix="jpchrome.")
        cmd_r, self.cmd_w = os.pipe()
        self.resp_r, resp_w = os.pipe()

        def fds():
            os.dup2(cmd_r, 3)
            os.dup2(resp_w, 4)

        args = [exe, "--headless", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--mute-audio",
                "--user-data-dir=" + self.profile, "--window-size=%d,%d" % (width, height),
                "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # CI runs as root
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, preexec_fn=fds, pass_fds=(3, 4))
        os.close(cmd_r)
        os.close(resp_w)
        self.next_id = 0
        self.replies = {}
        self.events = queue.Queue()
        self.errors = []
        self.cv = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for m in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(m, session=True)
        self.resize(width, height)

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.resp_r, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cv:
                    self.replies[None] = "chromium closed the pipe"
                    self.cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self.cv:
                        self.replies[msg["id"]] = msg
                        self.cv.notify_all()
                else:
                    self._event(msg)

    def _event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", "")))
                            for a in p.get("args", []))
            self.errors.append("console.%s: %s" % (p["type"], text))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append("exception: %s %s" % (
                d.get("text", ""), d.get("exception", {}).get("description", "")))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append("log (%s): %s %s" % (e.get("source"), e.get("text"),
                                                    e.get("url", "")))

    def call(self, method, params=None, session=False, timeout=30):
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self.cv:
            while mid not in self.replies:
                if None in self.replies:
                    raise RuntimeError(self.replies[None])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("%s: no answer in %d s" % (method, timeout))
                self.cv.wait(left)
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise RuntimeError("%s: %s" % (method, reply["error"]))
        return reply.get("result", {})

    def resize(self, width, height):
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": width < 700}, session=True)

    def goto(self, url):
        self.call("Page.navigate", {"url": url}, session=True)

    def js(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True}, session=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"].get("text")))
        return r.get("result", {}).get("value")

    def until(self, expr, secs=20):
        """The value of expr once it is truthy, or None after secs."""
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            try:
                v = self.js(expr)
            except RuntimeError:
                v = None
            if v:
                return v
            time.sleep(0.2)
        return None

    def until_errors(self, text, secs=5):
        """Has an error holding text been collected (within secs)?"""
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            if any(text in e for e in self.errors):
                return True
            time.sleep(0.05)
        return False

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", {"format": "png",
                                                 "captureBeyondViewport": False},
                      session=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except RuntimeError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Checks:
    def __init__(self):
        self.failed = 0

    def ok(self, cond, what, detail=""):
        print("%s - %s%s" % ("ok" if cond else "not ok", what,
                             "" if cond or not detail else ": " + str(detail)))
        sys.stdout.flush()
        if not cond:
            self.failed += 1
        return cond


def submit(ctl, q, n, data="x"):
    for _ in range(n):
        subprocess.run([ctl, "submit", "-q", q, data], check=True,
                       stdout=subprocess.DEVNULL)


ROWS = "document.querySelectorAll('#%s tbody tr').length"
QUEUES = "[...document.querySelectorAll('#queues tbody tr')].map(r => r.dataset.queue).join(',')"
# Does the page fit the window (nothing wider than it, but inside a card's scroller)?
FITS = "document.documentElement.scrollWidth <= window.innerWidth"
COLUMNS = "getComputedStyle(document.querySelector('main')).gridTemplateColumns.split(' ').length"


def ctl_out(a, *args):
    return subprocess.run([a.ctl, *args], capture_output=True, text=True).stdout


def ctl_until(a, args, pred, secs=15):
    """jobpoolctl ARGS until pred(its output), or secs passed: the last output, and
    whether pred held."""
    deadline = time.monotonic() + secs
    while True:
        out = ctl_out(a, *args)
        if pred(out) or time.monotonic() >= deadline:
            return out, pred(out)
        time.sleep(0.2)


def click_until(b, c, sel, what, msg_re):
    """Click the button sel once it shows; then the page's message matches msg_re."""
    c.ok(b.until("document.querySelector(\"%s\") !== null" % sel, 15), what)
    b.js("document.querySelector(\"%s\").click()" % sel)
    msg = b.until("%s.test(document.getElementById('message').textContent)" % msg_re, 10)
    c.ok(msg, "the page says so", b.js("document.getElementById('message').textContent"))


def pause_from_page(b, c, a):
    """Pause a.pause from its Pause button: its jobs stay queued (jobpoolctl) while
    a.witness's run; its Resume button then runs them."""
    q = a.pause
    click_until(b, c, "button.pause[data-queue='%s']" % q,
                "queue %s has a Pause button" % q, "/paused/")
    out, ok = ctl_until(a, ["status"], lambda o: re.search(
        r"^%s +paused " % re.escape(q), o, re.M) is not None)
    c.ok(ok, "jobpoolctl status: queue %s is paused" % q, out)
    job = ctl_out(a, "submit", "-q", q, "after-pause").strip()
    # Another queue's job runs to its end: loop passes went by with this one ready.
    seen = ctl_out(a, "submit", "-w", "-q", a.witness, "witness").strip()
    c.ok(seen == "witness", "queue %s runs its jobs meanwhile" % a.witness, seen)
    out = ctl_out(a, "status", job)
    c.ok("state: queued" in out, "jobpoolctl status: job %s of the paused queue stays "
         "queued" % job, out)
    c.ok(b.until("/paused/.test([...document.querySelectorAll('#queues tbody tr')]"
                 ".find(r => r.dataset.queue === '%s').textContent)" % q, 10),
         "the page shows the queue paused")
    click_until(b, c, "button.resume[data-queue='%s']" % q,
                "then a Resume button", "/resumed/")
    out, ok = ctl_until(a, ["status", job], lambda o: "state: done" in o)
    c.ok(ok, "jobpoolctl status: job %s ran once resumed" % job, out)


def check(a):
    c = Checks()
    os.makedirs(a.out, exist_ok=True)
    b = Browser(1280, 900)
    try:
        # The console check itself: an error the page logs is caught.
        b.js("console.error('dashboard_browser self-test')")
        c.ok(b.until_errors("self-test"), "a console error would be caught")
        b.errors.clear()
        b.goto(a.url)
        c.ok(b.until("document.body.dataset.ready === '1'"), "the page loads")
        if a.queues:
            got = b.until("(%s) === %s && (%s)" % (QUEUES, json.dumps(a.queues), QUEUES))
            c.ok(got, "it shows the daemon's queues (%s)" % a.queues, b.js(QUEUES))
        c.ok(b.until("document.querySelectorAll('#workers tbody tr').length > 0"),
             "it shows the workers")
        c.ok(b.until("document.getElementById('live').textContent === 'live'"),
             "the event stream is live")
        chart = b.js("document.body.dataset.chart")
        c.ok(chart == a.chart, "the chart is drawn with %s" % a.chart, chart)
        if a.chart == "svg":
            c.ok(b.until("document.querySelectorAll('#chart-tput svg polyline, "
                         "#chart-tput svg text').length > 0"), "the SVG chart is drawn")
        else:
            c.ok(b.until("document.querySelectorAll('#chart-tput canvas').length > 0"),
                 "dygraphs drew its canvas")
        if a.grow:
            before = b.js(ROWS % "events")
            submit(a.ctl, a.grow, 20)
            grown = b.until("%s >= %d" % (ROWS % "events", min(before + 20, 200)))
            c.ok(grown, "the event list grows while jobs run", "%s rows, then %s" % (
                before, b.js(ROWS % "events")))
            c.ok(b.until("[...document.querySelectorAll('#events td')].some(td => "
                         "td.textContent === 'job.succeeded')"),
                 "a job.succeeded event is listed")
        # The series fills in: the chart has points once two ticks passed.
        c.ok(b.until("fetch('/api/series').then(r => r.json()).then(s => "
                     "s.queues.some(q => q.points.length > 0))", 15),
             "the series has points")
        buttons = b.js("document.querySelectorAll('button.retry, button.pause, "
                       "button.resume').length")
        if a.readonly:
            b.until(ROWS % "dead" + " > 0", 10)
            c.ok(b.js(ROWS % "dead") > 0, "dead jobs are listed")
            c.ok(buttons == 0, "read-only: no action buttons", buttons)
        b.screenshot(os.path.join(a.out, "desktop.png"))
        if a.retry:
            sel = "button.retry[data-id='%s']" % a.retry
            c.ok(b.until("document.querySelector(\"%s\") !== null" % sel, 15),
                 "dead job %s has a Retry button" % a.retry)
            b.js("document.querySelector(\"%s\").click()" % sel)
            msg = b.until("/queued/.test(document.getElementById('message')"
                          ".textContent) && document.getElementById('message')"
                          ".textContent", 10)
            c.ok(msg, "the page says the job is queued again", b.js(
                "document.getElementById('message').textContent"))
            state = None
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                out = subprocess.run([a.ctl, "status", a.retry], capture_output=True,
                                     text=True).stdout
                if "state: done" in out:
                    state = out
                    break
                time.sleep(0.2)
            c.ok(state, "jobpoolctl status: job %s ran again and is done" % a.retry,
                 out)
        if a.pause:
            pause_from_page(b, c, a)
        # A phone, then a wall screen: it fits, one column, then three.
        b.resize(390, 844)
        c.ok(b.until(FITS, 5), "a phone (390 px): nothing wider than the screen",
             b.js("document.documentElement.scrollWidth"))
        c.ok(b.until("(%s) === 1" % COLUMNS, 5), "a phone: one column", b.js(COLUMNS))
        b.screenshot(os.path.join(a.out, "phone.png"))
        b.resize(2560, 1440)
        c.ok(b.until("(%s) === 3" % COLUMNS, 5), "a wall screen (2560 px): three columns",
             b.js(COLUMNS))
        c.ok(b.until(FITS, 5), "a wall screen: it fits")
        b.screenshot(os.path.join(a.out, "wall.png"))
        c.ok(not b.errors, "no console error", "\n  ".join(b.errors))
    finally:
        b.close()
    return 1 if c.failed else 0


def shot(a):
    b = Browser(a.width, a.height)
    try:
        b.goto(a.url)
        if not b.until("document.body.dataset.ready === '1'"):
            print("the page did not load", file=sys.stderr)
            return 1
        if a.grow:
            # A minute of a working pool: jobs now and then, so the chart has a shape.
            for i in range(a.seconds):
                submit(a.ctl, a.grow, 5 + (i * 7) % 23)
                time.sleep(1)
        time.sleep(2.5)
        b.screenshot(a.file)
        if b.errors:
            print("console errors:\n  " + "\n  ".join(b.errors), file=sys.stderr)
            return 1
    finally:
        b.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("check")
    k.add_argument("url")
    k.add_argument("out")
    k.add_argument("--chart", default="dygraphs", choices=("dygraphs", "svg"))
    k.add_argument("--queues", default="")
    k.add_argument("--ctl")
    k.add_argument("--grow")
    k.add_argument("--retry")
    k.add_argument("--readonly", action="store_true")
    k.add_argument("--pause")
    k.add_argument("--witness")
    s = sub.add_parser("shot")
    s.add_argument("url")
    s.add_argument("file")
    s.add_argument("--width", type=int, default=1440)
    s.add_argument("--height", type=int, default=1000)
    s.add_argument("--ctl")
    s.add_argument("--grow")
    s.add_argument("--seconds", type=int, default=40)
    a = p.parse_args()
    return check(a) if a.cmd == "check" else shot(a)


if __name__ == "__main__":
    sys.exit(main())
