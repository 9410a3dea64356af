#!/usr/bin/env python3
"""Scores Gatehouse's detectors on a labelled corpus by running the release binary.

Runs `target/release/gatehouse scan FILE` once per record (text records: the "text"; llm_json
records: the exact "body" if the record has one, else json.dumps of "json"), reads its JSON-lines
findings ({"kind","start","end"[,"pointer"]}, UTF-8 byte offsets; JSON input: offsets in the
decoded string the pointer names) and prints, per kind:
  gold       labelled spans of the kind
  precision  findings of the kind overlapping a labelled span of the same kind (and pointer) /
             findings of the kind, over ALL records (so findings on near misses count against it)
  recall     labelled spans overlapped by a finding of the same kind (and pointer) / gold
  near_miss  findings of the kind on records of set "near_miss"
These are the definitions of src/pii/accuracy.rs. Bars (issue 16): validated kinds P >= 0.99,
R >= 0.97; phone P >= 0.95, R >= 0.90; no finding on near misses.

Usage
  python3 scripts/score_corpus.py [CORPUS ...] [--by-source] [--json] [--binary PATH]
                                  [--config FILE] [--misses N] [--jobs N]
CORPUS defaults to tests/data/pii_corpus.jsonl and tests/data/independent_corpus.jsonl.
--misses N prints up to N missed / wrong examples per corpus (for debugging detectors; do not
use it to choose what goes into a corpus). Needs only the Python standard library.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPORA = [ROOT / "tests/data/pii_corpus.jsonl", ROOT / "tests/data/independent_corpus.jsonl"]


def scan(binary, config, payload):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as fh:
        fh.write(payload.encode("utf-8"))
        path = fh.name
    try:
        cmd = [binary, "scan"] + (["--config", config] if config else []) + [path]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"gatehouse scan failed ({out.returncode}): {out.stderr.strip()}")
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    finally:
        os.unlink(path)


def payload_of(record):
    if "json" in record:
        return record.get("body") or json.dumps(record["json"], ensure_ascii=False)
    return record["text"]


def overlaps(a, b):
    return a[0] == b[0] and a[1] == b[1] and a[2] < b[3] and b[2] < a[3]


class Tally:
    __slots__ = ("gold", "found_gold", "predicted", "correct", "near_miss")

    def __init__(self):
        self.gold = self.found_gold = self.predicted = self.correct = self.near_miss = 0

    def row(self):
        p = self.correct / self.predicted if self.predicted else 1.0
        r = self.found_gold / self.gold if self.gold else 1.0
        return {"gold": self.gold, "found_gold": self.found_gold, "predicted": self.predicted,
                "correct_predictions": self.correct, "precision": round(p, 4), "recall": round(r, 4),
                "near_miss_findings": self.near_miss}


def bar(kind, row):
    p_bar, r_bar = (0.95, 0.90) if kind == "phone" else (0.99, 0.97)
    ok = row["precision"] >= p_bar and row["recall"] >= r_bar and row["near_miss_findings"] == 0
    return "" if ok or (row["gold"] == 0 and row["predicted"] == 0) else "  <-- below bar"


def score(corpus, binary, config, jobs, misses_wanted):
    records = [json.loads(line) for line in open(corpus, encoding="utf-8") if line.strip()]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        findings = list(ex.map(lambda r: scan(binary, config, payload_of(r)), records))
    total = collections.defaultdict(Tally)
    by_source = collections.defaultdict(lambda: collections.defaultdict(Tally))
    near_by_kind = collections.Counter()
    misses = []
    for rec, found in zip(records, findings):
        src = rec.get("source", "-")
        gold = [(s["kind"], s.get("pointer", ""), s["start"], s["end"]) for s in rec["spans"]]
        pred = [(f["kind"], f.get("pointer", ""), f["start"], f["end"]) for f in found]
        for table in (total, by_source[src]):
            for g in gold:
                t = table[g[0]]
                t.gold += 1
                t.found_gold += any(overlaps(g, p) for p in pred)
            for p in pred:
                t = table[p[0]]
                t.predicted += 1
                t.correct += any(overlaps(g, p) for g in gold)
                if rec["set"] == "near_miss":
                    t.near_miss += 1
        if rec["set"] == "near_miss":
            for p in pred:
                near_by_kind[p[0]] += 1
        missed = [g for g in gold if not any(overlaps(g, p) for p in pred)]
        wrong = [p for p in pred if not any(overlaps(g, p) for g in gold)]
        if (missed or wrong) and len(misses) < misses_wanted:
            misses.append({"source": src, "set": rec["set"], "input": payload_of(rec),
                           "missed": missed, "wrong": wrong})
    return {
        "corpus": str(corpus),
        "records": len(records),
        "sets": dict(collections.Counter(r["set"] for r in records)),
        "kinds": {k: total[k].row() for k in sorted(total)},
        "near_miss_findings_by_kind": dict(sorted(near_by_kind.items())),
        "near_miss_records": sum(1 for r in records if r["set"] == "near_miss"),
        "by_source": {s: {k: t[k].row() for k in sorted(t)} for s, t in sorted(by_source.items())},
        "misses": misses,
    }


def print_table(title, kinds):
    print(title)
    print("| kind | gold | predicted | precision | recall | near-miss findings |")
    print("|---|---|---|---|---|---|")
    for k, r in kinds.items():
        print(f"| {k} | {r['gold']} | {r['predicted']} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['near_miss_findings']} |{bar(k, r)}")
    print()


def main():
    ap = argparse.ArgumentParser(description="precision / recall per kind of `gatehouse scan` on a corpus")
    ap.add_argument("corpora", nargs="*", default=[str(c) for c in DEFAULT_CORPORA])
    ap.add_argument("--binary", default=str(ROOT / "target/release/gatehouse"))
    ap.add_argument("--config", help="config file passed to `gatehouse scan --config`")
    ap.add_argument("--by-source", action="store_true", help="also break the table down by record source")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--misses", type=int, default=0, help="print up to N misses per corpus")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 4)
    args = ap.parse_args()
    results = [score(c, args.binary, args.config, args.jobs, args.misses) for c in args.corpora]
    if args.json:
        for r in results:
            if not args.by_source:
                r.pop("by_source")
        json.dump(results if len(results) > 1 else results[0], sys.stdout, indent=2, ensure_ascii=False)
        print()
        return
    for r in results:
        print(f"## {r['corpus']}: {r['records']} records {r['sets']}\n")
        print_table("### all sources", r["kinds"])
        print(f"near-miss records: {r['near_miss_records']}; findings on them by kind: "
              f"{r['near_miss_findings_by_kind'] or 'none'}\n")
        if args.by_source:
            for src, kinds in r["by_source"].items():
                print_table(f"### source: {src}", kinds)
        for m in r["misses"]:
            print(f"- [{m['source']}/{m['set']}] {m['input'][:300]!r}\n    missed {m['missed']}\n    wrong {m['wrong']}")
        if r["misses"]:
            print()


if __name__ == "__main__":
    main()
