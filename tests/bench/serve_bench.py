#!/usr/bin/python3
"""serve_bench.py - vamos serve under load, on loopback, against the
translator's own batched throughput on the same sentences.

    /usr/bin/python3 tests/bench/serve_bench.py [--clients 64] [--seconds 30] [--requests 100000] [--data DIR]

- The model: the shipped en-es, built as a library (serve) and as a
  translator (the peer: its own stdin batching, the same 2 threads).
- The sentences: the 1,254 sources of dev-ood.tsv, one per request (q a
  string), each client walking them from its own offset.
- Phase 1: --clients concurrent clients for --seconds: requests, errors,
  sentences/s, p50 and p99 latency; the ratio to the translator's
  sentences/s on the same sentences, and to the translator reading ahead
  only --clients lines (as many as are in flight).
- Phase 2: RSS of the server after a warm-up, then after --requests more
  requests, with the same clients (memory must not grow).
The load generator runs on the same 2 cores: its CPU time is printed, as
it takes cycles from the server. Writes tests/bench/results/serve.txt.
"""
import argparse, http.client, json, os, re, signal, statistics, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VAMOS = os.path.join(ROOT, "build", "vamos")
sys.path.insert(0, HERE)
from machine import cpu_name  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=0, help="vamos serve --batch (0: its default)")
    ap.add_argument("--batch-wait", type=int, default=-1, help="vamos serve --batch-wait MS (-1: its default)")
    ap.add_argument("--refill", type=int, default=0, help="vamos serve --refill PCT (0: its default)")
    ap.add_argument("--quantize", default="", help="vamos build --quantize (int8, int8w) for both builds")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "serve.txt"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "en-es"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vamos-serve-bench-")
    lib, exe = os.path.join(tmp, "enes.so"), os.path.join(tmp, "enes")
    for out, extra in ((lib, ["--lib"]), (exe, [])):
        q = ["--quantize", a.quantize] if a.quantize else []
        subprocess.run([VAMOS, "build", "models/en-es.vam", "-w", "models/en-es.safetensors", *extra, *q, "-o", out],
                       check=True, cwd=ROOT, stderr=subprocess.DEVNULL)
    sents = [l.split("\t")[0] for l in open(os.path.join(a.data, "dev-ood.tsv"), encoding="utf-8") if "\t" in l]
    src = os.path.join(tmp, "src.txt")
    with open(src, "w") as f:
        f.write("\n".join(sents) + "\n")
    # the peer: the translator on the same sentences, its default batching,
    # best of 3, before and after phase 1 (the machine's speed drifts)
    def peer(window=None):
        best = 0
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([exe, "--threads", "2"] + (["--window", str(window)] if window else []),
                           stdin=open(src), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            best = max(best, len(sents) / (time.perf_counter() - t0))
        return best

    peer_before = peer()
    # the translator reading ahead only as many lines as the server has
    # requests in flight (the clients): the batches it can form from them
    peer_window = peer(a.clients)
    log = open(os.path.join(tmp, "serve.log"), "w+")
    p = subprocess.Popen([VAMOS, "serve", lib, "--port", "0", "--threads", "2"] +
                         (["--batch", str(a.batch)] if a.batch else []) +
                         (["--batch-wait", str(a.batch_wait)] if a.batch_wait >= 0 else []) +
                         (["--refill", str(a.refill)] if a.refill > 0 else []), stderr=log)
    port = None
    for _ in range(200):
        log.seek(0)
        m = re.search(r"127\.0\.0\.1:(\d+)", log.read())
        if m:
            port = int(m.group(1))
            break
        time.sleep(0.05)
    assert port, "the server did not start"

    stop = threading.Event()
    lock = threading.Lock()
    lat, errors, counter = [], [0], [0]

    def client(i, limit):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        k = i * 17
        while not stop.is_set():
            with lock:
                if limit and counter[0] >= limit:
                    break
                counter[0] += 1
            body = json.dumps({"q": sents[k % len(sents)], "source": "en", "target": "es"})
            k += 1
            t0 = time.perf_counter()
            try:
                c.request("POST", "/translate", body, {"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                ok = r.status == 200 and "translatedText" in json.loads(data)
            except Exception:
                ok = False
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            dt = time.perf_counter() - t0
            with lock:
                if ok:
                    lat.append(dt)
                else:
                    errors[0] += 1
        c.close()

    def run(limit, seconds):
        stop.clear()
        lat.clear()
        errors[0] = counter[0] = 0
        ts = [threading.Thread(target=client, args=(i, limit)) for i in range(a.clients)]
        c0, t0 = os.times(), time.perf_counter()
        for t in ts:
            t.start()
        if seconds:
            time.sleep(seconds)
            stop.set()
        for t in ts:
            t.join()
        c1, wall = os.times(), time.perf_counter() - t0
        return wall, (c1.user - c0.user) + (c1.system - c0.system)

    run(2000, 0)   # warm-up
    wall, cpu = run(0, a.seconds)
    n1, e1 = len(lat), errors[0]
    q = statistics.quantiles(lat, n=100)
    p.send_signal(signal.SIGSTOP)   # the peer again, with the server asleep
    peer_after = peer()
    p.send_signal(signal.SIGCONT)
    peer_sps = (peer_before + peer_after) / 2
    sps = len(lat) / wall
    rss0 = rss_kb(p.pid)
    wall2, _ = run(a.requests, 0)
    n2, err2 = len(lat), errors[0]
    rss1 = rss_kb(p.pid)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=120)
    log.seek(0)
    counts = re.findall(r"\(([\d.]+) a batch; workers translating (\d+)%", log.read())
    lines = [
        "vamos serve under load (tests/bench/serve_bench.py), %s" % cpu_name(),
        "en-es%s, dev-ood sources (%d), one sentence per request, %d clients, loopback, kernel threads 2, serve --batch %s --batch-wait %s --refill %s"
        % (" --quantize " + a.quantize if a.quantize else "", len(sents), a.clients, a.batch or "default",
           a.batch_wait if a.batch_wait >= 0 else "default", a.refill or "default"),
        "translator (stdin, default batching, 2 threads): %.0f sentences/s before phase 1, %.0f after (best of 3 each)"
        % (peer_before, peer_after),
        "serve, %.0f s: %d requests, %d errors, %.0f sentences/s = %.2fx the translator (their mean); latency p50 %.0f ms, p99 %.0f ms"
        % (wall, n1 + e1, e1, sps, sps / peer_sps, q[49] * 1e3, q[98] * 1e3),
        "the translator reading ahead %d lines (--window %d, as many as the clients): %.0f sentences/s; serve = %.2fx that"
        % (a.clients, a.clients, peer_window, sps / peer_window),
        "load generator CPU: %.0f%% of one core during phase 1" % (100 * cpu / wall),
        "RSS: %.1f MB after warm-up + phase 1, %.1f MB after %d more requests (%d errors, %.0f s)"
        % (rss0 / 1024, rss1 / 1024, n2 + err2, err2, wall2),
        "server exit after SIGTERM: %d; sentences a batch over the whole run: %s; workers translating %s%% of the time "
        "since the first batch (the peer's runs in between included)" % (rc, *(counts[0] if counts else ("?", "?"))),
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
