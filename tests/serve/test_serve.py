#!/usr/bin/env python3
"""test_serve.py VAMOS - vamos serve as LibreTranslate's clients use it.

Builds two model libraries, starts `vamos serve` on a free loopback port
and talks to it with curl (form, multipart and JSON bodies), urllib and
requests (the request shapes of LibreTranslate's documentation: arrays,
format html, api_key), then with bad input: malformed bodies, wrong types,
empty, huge and invalid-UTF-8 q, slow and dropped connections. The server
must answer each with a 4xx (or drop it) and keep serving; SIGTERM must
finish the requests in flight. Exits non-zero on the first failure."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

VAMOS = sys.argv[1] if len(sys.argv) > 1 else "build/vamos"
TMP = tempfile.mkdtemp(prefix="vamos-serve-")
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)


def build(model, weights, out, *extra):
    subprocess.run([VAMOS, "build", model, "-w", weights, "--lib", "-o", out, *extra], check=True,
                   stderr=subprocess.DEVNULL)


def start(*args):
    """Start vamos serve with args on port 0; returns (process, base url)."""
    log = open(os.path.join(TMP, "serve-%d.log" % time.monotonic_ns()), "w+")
    p = subprocess.Popen([VAMOS, "serve", *args, "--port", "0"], stderr=log)
    for _ in range(200):
        log.seek(0)
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read())
        if m:
            return p, m.group(1), log
        if p.poll() is not None:
            break
        time.sleep(0.05)
    log.seek(0)
    sys.exit("vamos serve did not start:\n" + log.read())


def post(url, body, ctype="application/json"):
    """POST body; returns (status, parsed JSON or raw text)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def curl(*args):
    r = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=60)
    body, _, code = r.stdout.rpartition("\n")
    return int(code), json.loads(body) if body else None


def raw(port, data, wait=0.0, read=True):
    """Send raw bytes on a socket; returns what came back (b'' if dropped)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(data)
    if wait:
        time.sleep(wait)
    out = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    s.close()
    return out


def main():
    enes, sq = os.path.join(TMP, "enes.so"), os.path.join(TMP, "sq.so")
    build("models/en-es.vam", "models/en-es.safetensors", enes)
    build("models/statquest.vam", "models/statquest.safetensors", sq, "--langs", "st:vm")
    keys = os.path.join(TMP, "keys")
    with open(keys, "w") as f:
        f.write("# one key a line\nsecret-1\nsecret-2\n")
    p, base, log = start(enes, sq, "--api-keys", keys, "--char-limit", "2000", "--timeout", "2", "--threads", "2")
    port = int(base.rsplit(":", 1)[1])
    tr = base + "/translate"
    K = {"api_key": "secret-1"}

    # ---- the client shapes of LibreTranslate's documentation
    st, r = post(tr, {"q": "Open file", "source": "en", "target": "es", **K})
    check(st == 200 and r == {"translatedText": "Abrir archivo"}, "json string: %s %s" % (st, r))
    st, r = post(tr, {"q": ["Open file", "Show hidden files", ""], "source": "en", "target": "es", "format": "text", **K})
    check(st == 200 and r["translatedText"][0] == "Abrir archivo" and len(r["translatedText"]) == 3
          and r["translatedText"][2] == "", "json array: %s %s" % (st, r))
    st, r = post(tr, {"q": "<p>Open <b>file</b></p>", "source": "en", "target": "es", "format": "html", **K})
    check(st == 200 and r["translatedText"].startswith("<p>") and "<b>" in r["translatedText"]
          and r["translatedText"].endswith("</p>"), "html keeps tags: %s" % r)
    st, r = post(tr, {"q": "Open file", "source": "en", "target": "es", "apiKey": "x", "alternatives": 3, **K})
    check(st == 200 and r["translatedText"] == "Abrir archivo", "unknown fields are ignored: %s %s" % (st, r))
    st, r = post(tr, {"q": "Let's go", "source": "st", "target": "vm", **K})
    check(st == 200 and r["translatedText"] == "vamos", "the second model: %s %s" % (st, r))
    st, r = post(tr, {"q": "Save the file. Close the window.\nQuit", "source": "en", "target": "es", **K})
    check(st == 200 and r["translatedText"].count("\n") == 1 and ". " in r["translatedText"],
          "sentences and lines kept apart: %s" % r)
    code, r = curl("-d", "q=Open file&source=en&target=es&api_key=secret-2", tr)
    check(code == 200 and r["translatedText"] == "Abrir archivo", "curl form: %s %s" % (code, r))
    code, r = curl("-F", "q=Open file", "-F", "source=en", "-F", "target=es", "-F", "api_key=secret-2", tr)
    check(code == 200 and r["translatedText"] == "Abrir archivo", "curl multipart: %s %s" % (code, r))
    code, r = curl("-X", "POST", "-H", "Content-Type: application/json",
                   "-d", json.dumps({"q": "Open file", "source": "en", "target": "es", **K}), tr)
    check(code == 200 and r["translatedText"] == "Abrir archivo", "curl json: %s %s" % (code, r))
    try:
        import requests
        r = requests.post(tr, json={"q": ["Open file"], "source": "en", "target": "es", **K}, timeout=60)
        check(r.status_code == 200 and r.json()["translatedText"] == ["Abrir archivo"], "requests: %s" % r.text)
        r = requests.post(tr, data={"q": "Open file", "source": "en", "target": "es", **K}, timeout=60)
        check(r.status_code == 200 and r.json()["translatedText"] == "Abrir archivo", "requests form: %s" % r.text)
    except ImportError:
        print("python3-requests is not installed: its cases are skipped")
    st, r = get(base + "/languages")
    codes = {x["code"]: x["targets"] for x in r}
    check(st == 200 and codes.get("en") == ["es"] and codes.get("st") == ["vm"] and "es" in codes, "languages: %s" % r)
    check(get(base + "/health")[0] == 200, "health")
    st, r = get(base + "/frontend/settings")
    check(st == 200 and r["keyRequired"] is True and r["charLimit"] == 2000, "settings: %s" % r)

    # ---- refusals: each a 4xx with {"error": ...}
    def refused(status, body, expect, what, ctype="application/json"):
        st, r = post(tr, body, ctype)
        check(st == expect and isinstance(r, dict) and "error" in r, "%s: %s %s" % (what, st, r))

    refused(0, {"q": "Open file", "source": "en", "target": "es"}, 403, "no api key")
    refused(0, {"q": "Open file", "source": "en", "target": "es", "api_key": "nope"}, 403, "bad api key")
    refused(0, b"{\"q\": \"Open", 400, "malformed JSON")
    refused(0, b"[1, 2]", 400, "JSON that is not an object")
    refused(0, {"q": 5, "source": "en", "target": "es", **K}, 400, "q a number")
    refused(0, {"q": ["a", 5], "source": "en", "target": "es", **K}, 400, "q an array with a number")
    refused(0, {"q": "", "source": "en", "target": "es", **K}, 400, "empty q")
    refused(0, {"q": [], "source": "en", "target": "es", **K}, 400, "empty q array")
    refused(0, {"source": "en", "target": "es", **K}, 400, "no q")
    refused(0, {"q": "x", "target": "es", **K}, 400, "no source")
    refused(0, {"q": "x", "source": "en", "target": 3, **K}, 400, "target a number")
    refused(0, {"q": "x", "source": "en", "target": "de", **K}, 400, "a pair not served")
    refused(0, {"q": "x", "source": "auto", "target": "es", **K}, 400, "auto with two source languages")
    refused(0, {"q": "x", "source": "en", "target": "es", "format": "pdf", **K}, 400, "unknown format")
    refused(0, {"q": "word " * 500, "source": "en", "target": "es", **K}, 400, "over the char limit")
    refused(0, b"q=%FF%FE&source=en&target=es&api_key=secret-1", 400, "invalid UTF-8 in a form",
            "application/x-www-form-urlencoded")
    refused(0, b"{\"q\": \"\\udc00\", \"source\": \"en\", \"target\": \"es\"}", 400, "a lone surrogate")
    refused(0, b"{\"q\": \"" + b"a" * (5 << 20) + b"\"}", 400, "a body over 4 MB")
    refused(0, b"q=" + b"a" * (3 << 20) + b"&q=" + b"a" * (3 << 20) + b"&source=en&target=es&api_key=secret-1", 400,
            "a form body over 4 MB", "application/x-www-form-urlencoded")
    refused(0, {"q": "." * 200000 + ")" * 200000, "source": "en", "target": "es", **K}, 400,
            "over the char limit, quickly")
    check(get(base + "/nope")[0] == 404, "unknown path: 404")
    st, r = get(tr)
    check(st == 405, "GET /translate: %s" % st)

    # ---- connections that misbehave, then the server still serves
    raw(port, b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"q\":",
        read=False)                                          # dropped mid-body
    out = raw(port, b"POST /translate HTTP/1.1\r\nHost: x\r\n", wait=3.5)   # slow: past --timeout 2
    check(b" 200 " not in out, "a slow client is dropped: %r" % out[:80])
    out = raw(port, b"GARBAGE\r\n\r\n")
    check(out == b"" or b" 400 " in out[:20] or b" 505 " in out[:20] or b" 501 " in out[:20],
          "not HTTP: %r" % out[:60])
    st, r = post(tr, {"q": "Open file", "source": "en", "target": "es", **K})
    check(st == 200 and r["translatedText"] == "Abrir archivo", "still serving after bad clients: %s" % r)

    # ---- concurrent requests are batched and give what single ones give
    words = ["Open file", "Save file", "Close window", "Show hidden files", "Print document", "Quit"]
    alone = {w: post(tr, {"q": w, "source": "en", "target": "es", **K})[1]["translatedText"] for w in words}
    results, lock = [], threading.Lock()

    def client(i):
        for k in range(5):
            w = words[(i + k) % len(words)]
            st, r = post(tr, {"q": w, "source": "en", "target": "es", **K})
            with lock:
                results.append((st, w, r.get("translatedText") if isinstance(r, dict) else r))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [x for x in results if x[0] != 200 or x[2] != alone[x[1]]]
    check(len(results) == 80 and not bad, "16 concurrent clients: %d results, differing: %s" % (len(results), bad[:3]))

    # ---- SIGTERM finishes what is in flight
    inflight = []

    def slow(i):
        inflight.append(post(tr, {"q": ["Show hidden files in the folder"] * 64, "source": "en", "target": "es", **K}))

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    rc = p.wait(timeout=60)
    check(rc == 0, "exit status after SIGTERM: %s" % rc)
    check(len(inflight) == 4 and all(st == 200 and len(r["translatedText"]) == 64 for st, r in inflight),
          "requests in flight at SIGTERM finished: %s" % [st for st, _ in inflight])
    log.seek(0)
    check("stopping: finishing" in log.read(), "the log says it is stopping")

    # ---- the per-minute request limit
    p, base, log = start(sq, "--req-limit", "3")
    codes = [post(base + "/translate", {"q": "to go", "source": "st", "target": "vm"})[0] for _ in range(5)]
    check(codes == [200, 200, 200, 429, 429], "--req-limit 3: %s" % codes)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)

    # ---- refusals at start
    r = subprocess.run([VAMOS, "serve", os.path.join(TMP, "keys")], capture_output=True, text=True)
    check(r.returncode == 1 and "cannot open" in r.stderr, "a non-library: %s" % r.stderr)
    r = subprocess.run([VAMOS, "serve"], capture_output=True, text=True)
    check(r.returncode == 2 and "missing LIB.so" in r.stderr, "no library: %s" % r.stderr)
    r = subprocess.run([VAMOS, "serve", enes, "--port", "70000"], capture_output=True, text=True)
    check(r.returncode == 2, "--port 70000: %s" % r.stderr)

    if FAILS:
        sys.exit("%d failures" % len(FAILS))
    print("test_serve: all passed")


if __name__ == "__main__":
    main()
