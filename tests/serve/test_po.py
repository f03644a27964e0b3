#!/usr/bin/env python3
"""test_po.py VAMOS [--all] - vamos po on gettext catalogs, checked by GNU
gettext's msgfmt -c --check-format.

1. tests/serve/sample.po (directives, numbered and reordered arguments,
   plurals, brace placeholders, markup, accelerators, options, URLs,
   paths, a translated entry, an obsolete one): filled, accepted by msgfmt,
   every kept line byte for byte, every filled entry fuzzy, every span kept.
2. Real catalogs: the Spanish .mo files of the Debian packages installed
   (/usr/share/locale/es/LC_MESSAGES), turned back into .po (msgunfmt),
   emptied (msgfilter), their printf messages flagged c-format as xgettext
   would, then filled. msgfmt must accept every entry. By default the
   smallest few (CI time); --all: every catalog, with the counts printed
   for the README.
"""
import os
import re
import subprocess
import sys
import tempfile

VAMOS = sys.argv[1] if len(sys.argv) > 1 else "build/vamos"
ALL = "--all" in sys.argv
TMP = tempfile.mkdtemp(prefix="vamos-po-")
PRINTF = re.compile(r"%(?:\d+\$)?[-+ #0']*(?:\*|\d+)?(?:\.(?:\*|\d+))?(?:hh|ll|h|l|L|q|j|z|Z|t)?[diouxXeEfFgGaAcspn%]")
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)


def entries(text):
    """(msgid, [msgstr...], flags, raw block) of each entry."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        def strings(key):
            m = re.search(r"^%s (\".*\"(?:\n\".*\")*)" % re.escape(key), block, re.M)
            if not m:
                return None
            return "".join(eval(s) for s in re.findall(r"\"(?:[^\"\\]|\\.)*\"", m.group(1)))  # noqa: S307 (test data)
        msgid = strings("msgid")
        if msgid is None:
            continue
        strs = [strings("msgstr")] if strings("msgstr") is not None else []
        k = 0
        while strings("msgstr[%d]" % k) is not None:
            strs.append(strings("msgstr[%d]" % k))
            k += 1
        flags = " ".join(re.findall(r"^#, (.*)$", block, re.M))
        out.append((msgid, strs, flags, block, strings("msgid_plural")))
    return out


def msgfmt(path):
    r = subprocess.run(["msgfmt", "-c", "--check-format", "-o", "/dev/null", path], capture_output=True, text=True)
    m = re.search(r"found (\d+) fatal error", r.stderr)
    return r.returncode, int(m.group(1)) if m else (0 if r.returncode == 0 else -1), r.stderr


def fill(lib, src, dst):
    r = subprocess.run([VAMOS, "po", lib, src, "-o", dst], capture_output=True, text=True, timeout=1800)
    return r.returncode, r.stderr


def main():
    lib = os.path.join(TMP, "enes.so")
    subprocess.run([VAMOS, "build", "models/en-es.vam", "-w", "models/en-es.safetensors", "--lib", "-o", lib],
                   check=True, stderr=subprocess.DEVNULL)

    # ---- 1. the sample catalog
    out = os.path.join(TMP, "sample.po")
    rc, err = fill(lib, "tests/serve/sample.po", out)
    check(rc == 0 and "filled 13 entries (1 plural" in err, "vamos po on sample.po: %s %s" % (rc, err))
    rc, errors, msg = msgfmt(out)
    check(rc == 0 and errors == 0, "msgfmt -c --check-format rejects the filled sample: %s" % msg)
    src_text = open("tests/serve/sample.po").read()
    new_text = open(out).read()
    before, after = entries(src_text), entries(new_text)
    check(len(before) == len(after), "entries: %d before, %d after" % (len(before), len(after)))
    for (mid, strs, flags, block, plural), (mid2, strs2, flags2, block2, _) in zip(before, after):
        check(mid == mid2, "msgid changed: %r -> %r" % (mid, mid2))
        if mid == "" or any(strs):   # the header and translated entries: byte for byte
            check(block == block2, "a kept entry changed:\n%s\n---\n%s" % (block, block2))
            continue
        check("fuzzy" in flags2, "filled but not fuzzy: %r" % mid)
        check(all(strs2) and len(strs2) == len(strs), "not filled: %r -> %r" % (mid, strs2))
        for i, t in enumerate(strs2):
            source = mid if i == 0 else plural
            for span in re.findall(r"%\d+\$s|%-?\d*[sd]|%%|\{\w+\}|</?b>|--\w+|https?://\S+?(?=\s|$)|/etc/\S+?(?=\s)", source):
                check(span in t, "%r lost %r: %r" % (source, span, t))
            check(t.startswith("\n") == source.startswith("\n") and t.endswith("\n") == source.endswith("\n"),
                  "newlines at the ends differ: %r -> %r" % (source, t))
        if mid.startswith("_"):
            check(strs2[0].count("_") == 1, "the accelerator: %r" % strs2[0])
    check("#~ msgid \"Old message\"\n#~ msgstr \"Mensaje viejo\"" in new_text, "the obsolete entry is kept")
    check(new_text.startswith(src_text[:src_text.index("#: src/main.c:10")]), "the header is kept byte for byte")

    # ---- 2. real catalogs of the installed packages
    mos = sorted((os.path.getsize(os.path.join(d, f)), os.path.join(d, f))
                 for d in ["/usr/share/locale/es/LC_MESSAGES"] if os.path.isdir(d) for f in os.listdir(d)
                 if f.endswith(".mo"))
    if not mos:
        print("no Spanish catalogs installed (/usr/share/locale/es/LC_MESSAGES): part 2 skipped")
    picked = [p for _, p in mos] if ALL else [p for _, p in mos[:6]]
    total_filled = total_errors = 0
    for mo in picked:
        name = os.path.basename(mo)[:-3]
        po, blank, filled = (os.path.join(TMP, name + s) for s in (".po", ".blank.po", ".filled.po"))
        if subprocess.run(["sh", "-c", 'msgunfmt "$1" | msgconv -t UTF-8 -o "$2"', "sh", mo, po],
                          capture_output=True).returncode:
            print("%s: msgunfmt cannot read it, skipped" % name)
            continue
        if subprocess.run(["msgfilter", "--keep-header", "-i", po, "-o", blank, "sed", "-e", "d"],
                          capture_output=True).returncode:
            print("%s: msgfilter failed, skipped" % name)
            continue
        # flag the messages with printf directives c-format, as xgettext does for C sources
        text = open(blank).read()
        blocks = re.split(r"(\n\s*\n)", text)
        for i, b in enumerate(blocks):
            m = re.search(r"^msgid (\".*\"(?:\n\".*\")*)", b, re.M)
            if m and m.group(1) != '""' and PRINTF.search(m.group(1).replace("%%", "")) and "#," not in b:
                blocks[i] = re.sub(r"^(msgctxt|msgid )", r"#, c-format\n\1", b, count=1, flags=re.M)
        open(blank, "w").write("".join(blocks))
        rc0, errors0, _ = msgfmt(blank)
        if rc0 or errors0:
            print("%s: msgfmt rejects the emptied catalog itself, skipped" % name)
            continue
        rc, err = fill(lib, blank, filled)
        m = re.search(r"filled (\d+) entries", err)
        n = int(m.group(1)) if m else 0
        check(rc == 0 and m, "%s: vamos po failed: %s" % (name, err))
        rc, errors, msg = msgfmt(filled)
        check(rc == 0 and errors == 0, "%s: msgfmt rejects %d of %d filled entries:\n%s" % (name, errors, n, msg[:2000]))
        total_filled += n
        total_errors += max(errors, 0)
        print("%-24s %6d entries filled, msgfmt -c --check-format accepts %d" % (name, n, n - max(errors, 0)), flush=True)
    if picked:
        print("%d catalogs: %d entries filled, %d accepted (%.1f%%)" %
              (len(picked), total_filled, total_filled - total_errors,
               100.0 * (total_filled - total_errors) / max(total_filled, 1)))
    if FAILS:
        sys.exit("%d failures" % len(FAILS))
    print("test_po: all passed")


if __name__ == "__main__":
    main()
