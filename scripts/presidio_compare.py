#!/usr/bin/env python3
"""Scores Microsoft Presidio's predefined recognizers on our labelled PII corpus.

What it does
  * Builds a Presidio AnalyzerEngine that needs no spaCy model: the documented "no_op" NLP
    engine (NoOpNlpEngine, presidio-analyzer >= 2.2.36x) and a RecognizerRegistry holding an
    instance of EVERY predefined self-contained recognizer (pattern recognizers and the
    phonenumbers-based phone recognizers), each registered for language "en", including the
    country recognizers Presidio ships disabled or for other languages (es, it, pl, fi, sv, de,
    ko, tr, th). NER / model / cloud recognizers (spaCy, Stanza, Transformers, GLiNER,
    HuggingFace, Azure, LangExtract) are left out.
  * Runs it over every string of tests/data/pii_corpus.jsonl: the "text" of plain records and,
    for "json" (LLM request) records, every string value under /messages plus any other string a
    span points at.
  * Maps Presidio entity types to our kinds (PRESIDIO_TO_KIND below; anything else is "other"),
    converts Presidio's character offsets to UTF-8 byte offsets (the corpus' unit), and prints
    per kind: labelled count, precision = predictions of the kind overlapping a labelled span of
    the same kind / predictions of the kind (all three sets, so near-miss hits count against
    it), and recall = labelled spans overlapped by a prediction of the same kind / labelled.
    It also prints the findings on the near_miss set by Presidio entity type.
  * Two score thresholds are reported: 0.0 (AnalyzerEngine's default: every result) and 0.5.
    With --context, the no-op engine is swapped for a blank spaCy tokenizer (spacy.blank("en"),
    no model download, lemma = lower-cased token) so Presidio's context-word boosting works
    approximately as it would with a real spaCy model; this only changes scores, so it matters
    for the 0.5 threshold, not for 0.0.

How to run (offline once installed; needs only PyPI)
  python3 -m venv /tmp/presidio-venv
  /tmp/presidio-venv/bin/pip install presidio-analyzer==2.2.366
  /tmp/presidio-venv/bin/python scripts/presidio_compare.py [--corpus PATH] [--context]
"""

import argparse
import collections
import importlib.metadata
import inspect
import json
import os
import sys
import time
import warnings
from pathlib import Path

# Offline: the email recognizer calls tldextract, which by default tries to download the Public
# Suffix List on first use (and logs a traceback when it cannot). An empty URL list makes it use
# the snapshot bundled in the wheel straight away. Must be set before presidio is imported.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import presidio_analyzer.predefined_recognizers as predefined
from presidio_analyzer import AnalyzerEngine, LocalRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpArtifacts, NoOpNlpEngine

OUR_KINDS = [
    "email", "credit_card", "iban", "us_ssn", "phone", "ip_address", "mac_address",
    "crypto_wallet", "de_tax_id", "fr_nir", "es_dni", "it_fiscal_code", "nl_bsn", "pl_pesel",
    "be_national_number", "se_personnummer", "fi_hetu", "uk_nino", "uk_nhs", "secret",
]

# Presidio entity type -> our kind. Every other entity type is an "other" prediction.
PRESIDIO_TO_KIND = {
    "EMAIL_ADDRESS": "email",
    "CREDIT_CARD": "credit_card",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
    "PHONE_NUMBER": "phone",
    "IP_ADDRESS": "ip_address",
    "MAC_ADDRESS": "mac_address",
    "CRYPTO": "crypto_wallet",
    "DE_TAX_ID": "de_tax_id",  # Steuer-IdNr (11 digits), same identifier as our de_tax_id
    "ES_NIF": "es_dni",
    "ES_NIE": "es_dni",
    "IT_FISCAL_CODE": "it_fiscal_code",
    "PL_PESEL": "pl_pesel",
    "SE_PERSONNUMMER": "se_personnummer",
    "FI_PERSONAL_IDENTITY_CODE": "fi_hetu",
    "UK_NINO": "uk_nino",
    "UK_NHS": "uk_nhs",
}

# Recognizers that need a model, an NLP engine's entities or a remote service.
EXCLUDED_MODULE_PARTS = ("nlp_engine_recognizers", "ner", "third_party")

THRESHOLDS = [0.0, 0.5]


def all_pattern_recognizers(language="en"):
    """One instance of every predefined self-contained recognizer class, for `language`."""
    recognizers = []
    for name in sorted(predefined.__all__):
        cls = getattr(predefined, name)
        if not (inspect.isclass(cls) and issubclass(cls, LocalRecognizer)):
            continue
        if any(part in cls.__module__.split(".") for part in EXCLUDED_MODULE_PARTS):
            continue
        recognizers.append(cls(supported_language=language))
    return recognizers


def blank_tokenizer_engine():
    """An NLP engine giving tokens and (lower-cased) lemmas from spacy.blank("en"), no model."""
    import spacy

    from presidio_analyzer.nlp_engine import SlimSpacyNlpEngine

    class BlankTokenizerNlpEngine(SlimSpacyNlpEngine):
        def load(self):
            self.nlp = {"en": spacy.blank("en")}

        def _doc_to_nlp_artifact(self, doc, language):
            return NlpArtifacts(
                entities=[], tokens=doc, tokens_indices=[t.idx for t in doc],
                lemmas=[t.lower_ for t in doc], nlp_engine=self, language=language, scores=[],
            )

    engine = BlankTokenizerNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}],
                                     auto_download=False)
    engine.load()
    return engine


def build_engine(context):
    if context:
        nlp_engine = blank_tokenizer_engine()
    else:
        nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
        nlp_engine.load()
    registry = RecognizerRegistry(recognizers=all_pattern_recognizers("en"),
                                  supported_languages=["en"])
    with warnings.catch_warnings():
        # NoOpNlpEngine warns that context words in the text cannot boost scores: expected here.
        warnings.simplefilter("ignore", UserWarning)
        engine = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine,
                                supported_languages=["en"], default_score_threshold=0.0)
    return engine


def resolve_pointer(doc, pointer):
    node = doc
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def strings_under(node, pointer):
    """(pointer, string) for every string value below `node`."""
    if isinstance(node, str):
        yield pointer, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings_under(value, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings_under(value, f"{pointer}/{index}")


def corpus_units(path):
    """Yield (set, text, labelled spans [(kind, byte_start, byte_end)]) per string to scan."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            spans = record.get("spans", [])
            if "text" in record:
                yield record["set"], record["text"], [(s["kind"], s["start"], s["end"]) for s in spans]
                continue
            doc = record["json"]
            strings = dict(strings_under(doc.get("messages", []), "/messages"))
            for span in spans:
                strings.setdefault(span["pointer"], resolve_pointer(doc, span["pointer"]))
            for pointer, text in strings.items():
                labelled = [(s["kind"], s["start"], s["end"]) for s in spans if s["pointer"] == pointer]
                yield record["set"], text, labelled


def char_to_byte_offsets(text):
    """offsets[i] = UTF-8 byte offset of character i (len(text) included)."""
    offsets, total = [0], 0
    for ch in text:
        total += len(ch.encode("utf-8"))
        offsets.append(total)
    return offsets


def overlaps(a_start, a_end, b_start, b_end):
    return a_start < b_end and b_start < a_end


def pct(num, den):
    return "—" if den == 0 else f"{100.0 * num / den:.1f}%"


def evaluate(engine, units, threshold):
    labelled = collections.Counter()
    recalled = collections.Counter()
    predicted = collections.Counter()
    correct = collections.Counter()
    near_miss_by_type = collections.Counter()
    near_miss_strings_hit = 0
    other_by_type = collections.Counter()          # unmapped types on positive/llm_json strings
    other_on_labelled = collections.Counter()      # ... of which overlap some labelled span
    wrong_kind = collections.Counter()             # (our kind predicted, labelled kind it hit)

    for set_name, text, spans in units:
        results = engine.analyze(text=text, language="en", score_threshold=threshold)
        offsets = char_to_byte_offsets(text)
        preds = set()  # (kind or "other:<TYPE>", byte_start, byte_end), deduplicated per kind
        for r in results:
            kind = PRESIDIO_TO_KIND.get(r.entity_type, "other:" + r.entity_type)
            preds.add((kind, offsets[r.start], offsets[r.end]))

        if set_name == "near_miss":
            types = [k.split(":", 1)[1] if k.startswith("other:") else k for k, _, _ in preds]
            near_miss_by_type.update(types)
            near_miss_strings_hit += bool(preds)

        for kind, start, end in spans:
            labelled[kind] += 1
            if any(k == kind and overlaps(start, end, s, e) for k, s, e in preds):
                recalled[kind] += 1

        for kind, start, end in preds:
            hit_kinds = {k for k, s, e in spans if overlaps(start, end, s, e)}
            if kind.startswith("other:"):
                if set_name != "near_miss":
                    other_by_type[kind[6:]] += 1
                    other_on_labelled[kind[6:]] += bool(hit_kinds)
                continue
            predicted[kind] += 1
            if kind in hit_kinds:
                correct[kind] += 1
            else:
                for hit in hit_kinds:
                    wrong_kind[(kind, hit)] += 1

    return dict(labelled=labelled, recalled=recalled, predicted=predicted, correct=correct,
                near_miss_by_type=near_miss_by_type, near_miss_strings_hit=near_miss_strings_hit,
                other_by_type=other_by_type, other_on_labelled=other_on_labelled,
                wrong_kind=wrong_kind)


def ranked(counter):
    """Counter items by count descending, then name, so output is stable across runs."""
    return sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))


def print_report(per_threshold, n_near_miss_strings, covered_kinds):
    thresholds = list(per_threshold)
    first = per_threshold[thresholds[0]]
    head = "| kind | labelled |" + "".join(
        f" Presidio precision (≥{t}) | Presidio recall (≥{t}) |" for t in thresholds)
    print(head)
    print("|" + "---|" * (2 + 2 * len(thresholds)))
    total_lab = sum(first["labelled"][k] for k in OUR_KINDS)
    for kind in OUR_KINDS:
        row = f"| {kind} | {first['labelled'][kind]} |"
        for t in thresholds:
            m = per_threshold[t]
            if kind not in covered_kinds:
                row += " no recognizer | no recognizer |"
            else:
                row += (f" {pct(m['correct'][kind], m['predicted'][kind])}"
                        f" ({m['correct'][kind]}/{m['predicted'][kind]}) |"
                        f" {pct(m['recalled'][kind], m['labelled'][kind])} |")
        print(row)
    row = f"| **all kinds** | {total_lab} |"
    for t in thresholds:
        m = per_threshold[t]
        c, p, r = (sum(m[x][k] for k in OUR_KINDS) for x in ("correct", "predicted", "recalled"))
        row += f" {pct(c, p)} ({c}/{p}) | {pct(r, total_lab)} |"
    print(row)

    for t in thresholds:
        m = per_threshold[t]
        print(f"\n### Threshold ≥{t}: near_miss set ({n_near_miss_strings} strings)")
        print(f"strings with ≥1 finding: {m['near_miss_strings_hit']}; findings: "
              f"{sum(m['near_miss_by_type'].values())}")
        print("| Presidio entity / our kind | near-miss findings |\n|---|---|")
        for typ, n in ranked(m["near_miss_by_type"]):
            print(f"| {typ} | {n} |")
        print(f"\nUnmapped ('other') predictions on positive + llm_json strings (≥{t}):")
        print("| Presidio entity | predictions | overlapping a labelled span |\n|---|---|---|")
        for typ, n in ranked(m["other_by_type"]):
            print(f"| {typ} | {n} | {m['other_on_labelled'][typ]} |")
        if m["wrong_kind"]:
            print(f"\nMapped predictions landing on a labelled span of another kind (≥{t}):")
            print("| predicted kind | labelled kind | count |\n|---|---|---|")
            for (pk, lk), n in ranked(m["wrong_kind"]):
                print(f"| {pk} | {lk} | {n} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(Path(__file__).resolve().parent.parent
                                                 / "tests/data/pii_corpus.jsonl"))
    parser.add_argument("--context", action="store_true",
                        help="blank spaCy tokenizer so context words can boost scores")
    args = parser.parse_args()

    started = time.perf_counter()
    engine = build_engine(args.context)
    built = time.perf_counter()
    units = list(corpus_units(args.corpus))
    entities = set(engine.get_supported_entities("en"))
    covered = {PRESIDIO_TO_KIND[e] for e in entities if e in PRESIDIO_TO_KIND}

    per_threshold, scan_times = {}, {}
    for t in THRESHOLDS:
        t0 = time.perf_counter()
        per_threshold[t] = evaluate(engine, units, t)
        scan_times[t] = time.perf_counter() - t0

    n_near = sum(1 for s, _, _ in units if s == "near_miss")
    print(f"presidio-analyzer {importlib.metadata.version('presidio-analyzer')}"
          f" | NLP engine: {type(engine.nlp_engine).__name__}"
          f" | recognizers: {len(engine.registry.recognizers)}"
          f" | entity types: {len(entities)} | strings scanned: {len(units)}\n")
    print_report(per_threshold, n_near, covered)
    print(f"\nTiming: engine build {built - started:.2f}s; "
          + "; ".join(f"scan at ≥{t}: {s:.2f}s ({1000 * s / len(units):.2f} ms/string)"
                      for t, s in scan_times.items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
