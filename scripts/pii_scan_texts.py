#!/usr/bin/env python3
"""Writes the texts the scanner's speed work is checked on, and compares two binaries on them.

A change made for speed must leave every finding as it was. This writes, into OUTDIR:
  prose.txt, transcript.txt, dense.txt
      the three texts of `benches/pii_scan.rs` (a port of its generator: the same LCG, the same
      sentence lists, read from the bench's source), 1 MiB each
  corpora.txt   the text of every record of tests/data/pii_corpus.jsonl and
                tests/data/independent_corpus.jsonl (JSON records as their body), one a line
  corpora.json  every record of both corpora as one JSON document (a list)
  fragments.txt about 3 MB of corpus words and whole corpus texts shuffled with the anchor
                literals (gitleaks' keywords and prefixes from src/pii/secret_rules.tsv, our own
                key prefixes, obfuscated `at`s) in random case with key-like tails, assignment
                operators, quotes, digits and separators: text where anchors start, end and
                continue words in every way
and with --compare BASE NEW runs `BINARY scan FILE` of both on each file and says whether the
outputs are byte-identical (and how many findings each holds).

Usage
  python3 scripts/pii_scan_texts.py OUTDIR [--compare BASE NEW] [--seed N]
Needs only the Python standard library.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASK = 2**64


class Lcg:
    """The bench's generator (`benches/pii_scan.rs`, `Lcg`)."""

    def __init__(self, seed):
        self.x = seed

    def next(self):
        self.x = (self.x * 6364136223846793005 + 1442695040888963407) % MASK
        return self.x >> 33

    def pick(self, items):
        return items[self.next() % len(items)]


def bench_list(source, name):
    body = source.split("const %s: &[&str] = &[" % name)[1].split("];")[0]
    return [json.loads(s) for s in re.findall(r'"(?:[^"\\]|\\.)*"', body)]


def bench_text(prose, pii, size, every):
    """`text(size, every)` of the bench."""
    rng = Lcg(7)
    out, n = [], 0
    while n < size:
        draw = rng.next()
        s = rng.pick(pii) if every > 0 and draw % every == 0 else rng.pick(prose)
        out.append(s)
        n += len(s.encode())
    return "".join(out)


def corpus_records():
    records = []
    for name in ("pii_corpus.jsonl", "independent_corpus.jsonl"):
        with open(os.path.join(ROOT, "tests", "data", name), encoding="utf-8") as f:
            records.extend(json.loads(line) for line in f if line.strip())
    return records


def record_text(record):
    if "text" in record:
        return record["text"]
    if "body" in record:
        return record["body"]
    return json.dumps(record.get("json"))


def anchor_literals():
    literals = ["@", "[at]", "(at)", "{at}", " at ", "-----BEGIN", "sk-ant-", "sk-", "eyJ", "0x", "bc1"]
    with open(os.path.join(ROOT, "src", "pii", "secret_rules.tsv"), encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[0] in ("prefix", "keyed") and len(fields) > 4:
                literals.extend(fields[4].split(" "))
    return literals


def fragments(records, seed, size):
    rng = random.Random(seed)
    words = []
    for r in records:
        words.extend(record_text(r).split())
    literals = anchor_literals()
    glue = [" ", " ", " ", "", "\n", "=", ": ", ":", "\"", "'", " = ", "=>", ":=", "_", "-", ".",
            "/", ",", "(", ")", "\t", "`"]
    alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    texts = [record_text(r) for r in records]
    out, n = [], 0
    while n < size:
        roll = rng.random()
        if roll < 0.08:
            piece = rng.choice(texts)
        elif roll < 0.45:
            piece = rng.choice(words)
        elif roll < 0.75:
            lit = rng.choice(literals)
            piece = "".join(c.upper() if rng.random() < 0.3 else c for c in lit)
            if rng.random() < 0.2:
                piece = piece[: rng.randrange(len(piece) + 1)]
            if rng.random() < 0.5:
                piece += "".join(rng.choice(alnum) for _ in range(rng.choice([4, 8, 16, 20, 32, 40])))
        elif roll < 0.9:
            piece = rng.choice(glue)
        else:
            piece = "".join(rng.choice("0123456789 -.+()") for _ in range(rng.randrange(3, 18)))
        out.append(piece)
        n += len(piece.encode())
    return "".join(out)


def write(outdir, seed):
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(ROOT, "benches", "pii_scan.rs"), encoding="utf-8") as f:
        source = f.read()
    prose, pii = bench_list(source, "PROSE"), bench_list(source, "PII")
    files = {}
    for name, every in (("prose", 0), ("transcript", 6), ("dense", 1)):
        files[name + ".txt"] = bench_text(prose, pii, 1 << 20, every)
    records = corpus_records()
    files["corpora.txt"] = "\n".join(record_text(r) for r in records) + "\n"
    files["corpora.json"] = json.dumps(records, ensure_ascii=False)
    files["fragments.txt"] = fragments(records, seed, 3_000_000)
    for name, text in files.items():
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            f.write(text)
    return sorted(files)


def compare(outdir, names, base, new):
    same = True
    for name in names:
        path = os.path.join(outdir, name)
        outs = [subprocess.run([b, "scan", path], capture_output=True, check=True).stdout for b in (base, new)]
        equal = outs[0] == outs[1]
        same &= equal
        print("%-15s %s  findings %d / %d" % (name, "identical" if equal else "DIFFERENT",
                                              outs[0].count(b"\n"), outs[1].count(b"\n")))
    return same


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--compare", nargs=2, metavar=("BASE", "NEW"))
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    names = write(args.outdir, args.seed)
    if args.compare and not compare(args.outdir, names, *args.compare):
        sys.exit(1)


if __name__ == "__main__":
    main()
