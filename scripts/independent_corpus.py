#!/usr/bin/env python3
"""Builds tests/data/independent_corpus.jsonl: a second, independent evaluation corpus for the
PII / secret detectors (issue 16), made ONLY from outside generators and outside examples.

Honesty rules this script follows
  * Every labelled VALUE comes from an outside source, and the label is what that source says it
    generated or expects. Where a validator exists (python-stdnum, phonenumbers, Luhn via
    stdnum.luhn, Python's ipaddress) the value must pass it, otherwise it is dropped, never
    relabelled. Sentence templates around the values are ours (several languages, with and
    without a context word); the values are not.
  * Gatehouse's own detectors are never run or consulted here. Whether a record is kept depends
    only on outside validators (see `outside_hits`): a positive record is dropped when text
    outside its labelled spans holds something an outside validator accepts as one of our kinds
    (an unlabelled email, phone, IBAN, card, national id ...), or when its value is accepted by
    a second kind's checksum validator too (ambiguous); a near_miss record is dropped when any
    outside validator accepts anything in it.
  * Not to be used to tune individual patterns.

Sources ("source" field)
  phonenumbers        phonenumbers.example_number_for_type for every region of the EU, EEA, UK,
                      US and CA and every number type that has an example, each in E164,
                      INTERNATIONAL, NATIONAL and RFC3966 (minus "tel:") format.
  faker               Faker (every EU/EEA locale Faker has, plus en_GB, en_US, en_CA): email,
                      phone_number (kept only if phonenumbers.is_valid_number_for_region for the
                      locale's country), credit_card_number per card type (kept only if Luhn
                      passes), iban (stdnum.iban must accept), ssn / pesel / nif / nie /
                      birth_number where the locale's provider produces a real identifier
                      (validated with the matching stdnum module, see FAKER_IDS), ipv4 / ipv6,
                      mac_address; Faker's sentences as filler text.
  stdnum-doc          valid examples in python-stdnum module docstrings (`>>> validate('...')`
                      lines that return a value, `>>> is_valid('...')` -> True), spelled as the
                      docstring spells them; docstring examples that raise InvalidChecksum /
                      InvalidComponent / InvalidLength / InvalidFormat become near misses.
  presidio            test sentences from microsoft/presidio presidio-analyzer/tests
                      (test_*_recognizer.py parametrize tables: text + expected spans), entity
                      types mapped to our kinds; texts Presidio expects to yield nothing become
                      near misses. Copied data only, (c) Microsoft Corporation, MIT licence.
  gitleaks            literal true positives (tps) and false positives (fps) from
                      gitleaks/gitleaks cmd/generate/config/rules/*.go. tps -> positive, kind
                      secret, span = the secret group of the rule's own regex (converted to
                      Python) or, if that cannot be placed, the whole literal; fps -> near_miss.
                      Copied data only, (c) Zachary Rice and gitleaks contributors, MIT licence.
  faker-near-miss     near misses from Faker providers: ean13 / ean8, isbn10 / isbn13, uuid4,
                      iso8601 timestamps, date, numerify version strings, Luhn-failing card
                      numbers (a Faker card with one digit changed), IBANs with altered check
                      digits (Faker iban), all stdnum/Luhn-invalid by construction.
  llm_json            (set "llm_json") LLM request bodies {"model", "messages"} built from
                      positive records above; "body" holds the exact serialisation (pretty,
                      compact, or ASCII with \\u escapes); spans carry the JSON "pointer" and
                      UTF-8 byte offsets in the decoded string value.

Pinned versions (install into a venv; PyPI only)
  python3 -m venv /tmp/corpus-venv
  /tmp/corpus-venv/bin/pip install faker==40.63.0 phonenumbers==9.0.43 python-stdnum==2.2 \\
      freezegun==1.5.5
  (freezegun pins "today" to FROZEN_NOW, because Faker's birth-date based identifiers and
  timestamps are drawn relative to the current date.)
  Repositories (bare git dirs from the search tool's fetch, read at these commits):
    microsoft/presidio  0aa9f8e44275cb52c00fbbebe19168e934e1f076
    gitleaks/gitleaks   b58d3f102cf3a2c84cb7f923d05c25c9b1aed84b

Run
  /tmp/corpus-venv/bin/python scripts/independent_corpus.py \\
      [--presidio-git /work/.mirror/microsoft+presidio/repo] \\
      [--gitleaks-git /work/.mirror/gitleaks+gitleaks/repo] [--out tests/data/independent_corpus.jsonl]

Line format (same as tests/data/pii_corpus.jsonl, plus "source"):
  {"set": "positive"|"near_miss", "source": ..., "text": ..., "spans": [{"kind","start","end"}]}
  {"set": "llm_json", "source": "llm_json", "json": {...}, "body": "<exact body>",
   "spans": [{"kind","start","end","pointer"}]}
Offsets are UTF-8 byte offsets, end exclusive.
"""

import argparse
import ast
import collections
import importlib
import ipaddress
import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import faker
import freezegun
import phonenumbers
import stdnum
from faker import Faker
from faker.config import AVAILABLE_LOCALES
from stdnum import iban as std_iban
from stdnum import luhn

PINS = {"faker": "40.63.0", "phonenumbers": "9.0.43", "python-stdnum": "2.2"}
FROZEN_NOW = "2026-01-15 12:00:00"
PRESIDIO_COMMIT = "0aa9f8e44275cb52c00fbbebe19168e934e1f076"
GITLEAKS_COMMIT = "b58d3f102cf3a2c84cb7f923d05c25c9b1aed84b"
SEED = 16

EU_EEA = ["AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
          "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
          "IS", "LI", "NO"]
REGIONS = EU_EEA + ["GB", "US", "CA"]

# kind -> stdnum modules that validate it (first one is the primary)
KIND_VALIDATORS = {
    "us_ssn": ["us.ssn"],
    "de_tax_id": ["de.idnr"],
    "fr_nir": ["fr.nir"],
    "es_dni": ["es.dni", "es.nie"],
    "it_fiscal_code": ["it.codicefiscale"],
    "nl_bsn": ["nl.bsn"],
    "pl_pesel": ["pl.pesel"],
    "be_national_number": ["be.nn"],
    "se_personnummer": ["se.personnummer"],
    "fi_hetu": ["fi.hetu"],
    "uk_nhs": ["gb.nhs"],
    "at_svnr": ["at.vnr"],
    "pt_nif": ["pt.nif"],
    "ie_pps": ["ie.pps"],
    "dk_cpr": ["dk.cpr"],
    "no_fnr": ["no.fodselsnummer"],
    "cz_rc": ["cz.rc", "sk.rc"],
    "ro_cnp": ["ro.cnp"],
    "gr_amka": ["gr.amka"],
    "ca_sin": ["ca.sin"],
    "au_tfn": ["au.tfn"],
    "iban": ["iban"],
    "crypto_wallet": ["bitcoin"],
    "mac_address": ["mac"],
}
# Validators that accept a large share of random strings of the right length (no checksum, or
# only a date): not used to call a positive value ambiguous.
WEAK_VALIDATORS = {"us.ssn", "dk.cpr"}

# Faker ssn-like providers whose output is a real identifier: (provider module, method) -> kind.
# Identified by the class that actually answers (locales without their own ssn provider fall
# back to en_US's, which is only taken from en_US itself).
FAKER_IDS = {
    ("faker.providers.ssn.en_US", "ssn"): "us_ssn",
    ("faker.providers.ssn.de_AT", "ssn"): "at_svnr",
    ("faker.providers.ssn.el_GR", "ssn"): "gr_amka",
    ("faker.providers.ssn.en_CA", "ssn"): "ca_sin",
    ("faker.providers.ssn.fi_FI", "ssn"): "fi_hetu",
    ("faker.providers.ssn.fr_FR", "ssn"): "fr_nir",
    ("faker.providers.ssn.it_IT", "ssn"): "it_fiscal_code",
    ("faker.providers.ssn.nl_BE", "ssn"): "be_national_number",
    ("faker.providers.ssn.nl_NL", "ssn"): "nl_bsn",
    ("faker.providers.ssn.no_NO", "ssn"): "no_fnr",
    ("faker.providers.ssn.pl_PL", "ssn"): "pl_pesel",
    ("faker.providers.ssn.pl_PL", "pesel"): "pl_pesel",
    ("faker.providers.ssn.ro_RO", "ssn"): "ro_cnp",
    ("faker.providers.ssn.sv_SE", "ssn"): "se_personnummer",
    ("faker.providers.ssn.es_ES", "nif"): "es_dni",
    ("faker.providers.ssn.es_ES", "nie"): "es_dni",
    ("faker.providers.ssn.cs_CZ", "birth_number"): "cz_rc",
    # Portugal's VAT number is the NIF itself (stdnum.pt.nif: "NIF ... Portuguese VAT number")
    ("faker.providers.ssn.pt_PT", "vat_id"): "pt_nif",
    ("faker.providers.ssn.sk_SK", "birth_number"): "cz_rc",
}

# stdnum modules whose docstring examples we harvest, with the kind they stand for.
DOC_MODULES = {m: k for k, ms in KIND_VALIDATORS.items() for m in ms}

# Presidio test file -> default entity type; entity type -> our kind
PRESIDIO_FILES = {
    "test_email_recognizer.py": "EMAIL_ADDRESS",
    "test_credit_card_recognizer.py": "CREDIT_CARD",
    "test_iban_recognizer.py": "IBAN_CODE",
    "test_us_ssn_recognizer.py": "US_SSN",
    "test_phone_recognizer.py": "PHONE_NUMBER",
    "test_ip_recognizer.py": "IP_ADDRESS",
    "test_mac_recognizer.py": "MAC_ADDRESS",
    "test_crypto_recognizer.py": "CRYPTO",
    "test_de_tax_id_recognizer.py": "DE_TAX_ID",
    "test_es_nif_recognizer.py": "ES_NIF",
    "test_es_nie_recognizer.py": "ES_NIE",
    "test_it_fiscal_code_recognizer.py": "IT_FISCAL_CODE",
    "test_pl_pesel_recognizer.py": "PL_PESEL",
    "test_se_personnummer_recognizer.py": "SE_PERSONNUMMER",
    "test_fi_personal_identity_code_recognizer.py": "FI_PERSONAL_IDENTITY_CODE",
    "test_uk_nino_recognizer.py": "UK_NINO",
    "test_uk_nhs_recognizer.py": "UK_NHS",
    "test_ca_sin_recognizer.py": "CA_SIN",
    "test_au_tfn_recognizer.py": "AU_TFN",
}
PRESIDIO_TO_KIND = {
    "EMAIL_ADDRESS": "email", "CREDIT_CARD": "credit_card", "IBAN_CODE": "iban",
    "US_SSN": "us_ssn", "PHONE_NUMBER": "phone", "IP_ADDRESS": "ip_address",
    "MAC_ADDRESS": "mac_address", "CRYPTO": "crypto_wallet", "DE_TAX_ID": "de_tax_id",
    "ES_NIF": "es_dni", "ES_NIE": "es_dni", "IT_FISCAL_CODE": "it_fiscal_code",
    "PL_PESEL": "pl_pesel", "SE_PERSONNUMMER": "se_personnummer",
    "FI_PERSONAL_IDENTITY_CODE": "fi_hetu", "UK_NINO": "uk_nino", "UK_NHS": "uk_nhs",
    "CA_SIN": "ca_sin", "AU_TFN": "au_tfn",
}
# Regions Presidio's phone tests use (PhoneRecognizer defaults + JP, CN), to validate its phones.
PRESIDIO_PHONE_REGIONS = ["US", "GB", "DE", "FE", "IL", "IN", "CA", "BR", "JP", "CN"]

DROPS = collections.Counter()  # reason -> count, printed at the end


def std(mod):
    return importlib.import_module("stdnum." + mod)


def std_valid(mod, value):
    try:
        if mod == "mac" and re.fullmatch(r"[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){2}", value):
            # Cisco dotted notation: stdnum.mac only reads : and - separated forms
            h = value.replace(".", "")
            value = ":".join(h[i:i + 2] for i in range(0, 12, 2))
        return std(mod).is_valid(value)
    except Exception:
        return False


# ---------------------------------------------------------------- templates (ours, not values)

CONTEXT = {
    "phone": ["Call me at {v}.", "Tel.: {v}", "Ruf mich unter {v} an.", "Appelez-moi au {v}.",
              "Llámame al {v}, por favor.", "Chiamami al numero {v}.", "Bel me op {v}.",
              "Zadzwoń pod numer {v}.", "Ring mig på {v}.", "Phone: {v}", "Telefon {v}",
              "Puhelin: {v}"],
    "email": ["Write to {v}.", "E-Mail: {v}", "Mon adresse est {v}.", "Correo: {v}",
              "Scrivimi a {v}.", "Mail mij op {v}.", "cc {v}"],
    "credit_card": ["My card number is {v}.", "Kartennummer: {v}", "Carte bancaire : {v}",
                    "Tarjeta {v}, caduca pronto.", "Numero carta {v}", "card={v}"],
    "iban": ["IBAN: {v}", "Please transfer to {v}.", "Bankverbindung {v}",
             "Il mio IBAN è {v}.", "Rekeningnummer {v}", "Numer konta: {v}"],
    "ip_address": ["Connection from {v} refused.", "peer={v}", "Server-IP: {v}",
                   "l'adresse IP {v} est bloquée", "client {v} timed out"],
    "mac_address": ["MAC address {v}", "Gerät {v} hat sich verbunden.", "hwaddr={v}",
                    "adresse MAC : {v}"],
    "us_ssn": ["SSN: {v}", "My social security number is {v}."],
    "de_tax_id": ["Steuer-ID: {v}", "Meine Steuerliche Identifikationsnummer ist {v}."],
    "fr_nir": ["Numéro de sécurité sociale : {v}", "NIR {v}"],
    "es_dni": ["DNI: {v}", "Mi NIE es {v}.", "NIF {v}"],
    "it_fiscal_code": ["Codice fiscale: {v}", "CF {v}"],
    "nl_bsn": ["BSN: {v}", "Mijn burgerservicenummer is {v}."],
    "pl_pesel": ["PESEL: {v}", "Mój numer PESEL to {v}."],
    "be_national_number": ["Rijksregisternummer: {v}", "Numéro national {v}"],
    "se_personnummer": ["Personnummer: {v}", "Mitt personnummer är {v}."],
    "fi_hetu": ["Henkilötunnus: {v}", "HETU {v}"],
    "uk_nino": ["National Insurance number: {v}", "NINO {v}"],
    "uk_nhs": ["NHS number: {v}", "My NHS no. is {v}."],
    "at_svnr": ["Sozialversicherungsnummer: {v}", "SVNR {v}"],
    "pt_nif": ["NIF: {v}", "Número de contribuinte {v}"],
    "ie_pps": ["PPS number: {v}", "My PPSN is {v}."],
    "dk_cpr": ["CPR-nummer: {v}", "CPR {v}"],
    "no_fnr": ["Fødselsnummer: {v}", "Mitt fødselsnummer er {v}."],
    "cz_rc": ["Rodné číslo: {v}", "RČ {v}"],
    "ro_cnp": ["CNP: {v}", "Codul numeric personal este {v}."],
    "gr_amka": ["ΑΜΚΑ: {v}", "AMKA {v}"],
    "ca_sin": ["SIN: {v}", "My social insurance number is {v}."],
    "au_tfn": ["TFN: {v}", "My tax file number is {v}."],
    "crypto_wallet": ["Send the BTC to {v}.", "wallet: {v}"],
}
NEUTRAL = ["{v}", "Noted: {v}", "{v} (see above)", "Updated list: {v}", "Siehe {v}.",
           "Voir {v} ci-dessous.", "Ver {v}.", "Zie {v}.", "ok, {v}", "-> {v}"]


class Builder:
    """Concatenates text pieces, tracking UTF-8 byte offsets of labelled pieces."""

    def __init__(self):
        self.parts, self.spans, self.pos = [], [], 0

    def add(self, s, kind=None):
        n = len(s.encode("utf-8"))
        if kind:
            self.spans.append({"kind": kind, "start": self.pos, "end": self.pos + n})
        self.parts.append(s)
        self.pos += n
        return self

    def text(self):
        return "".join(self.parts)


def sentence_with(value, kind, rng, filler, context_share=0.6):
    tmpl = rng.choice(CONTEXT.get(kind, NEUTRAL)) if rng.random() < context_share else rng.choice(NEUTRAL)
    before, after = tmpl.split("{v}")
    b = Builder()
    r = rng.random()
    if filler and r < 0.3:
        b.add(filler + " ")
    b.add(before).add(value, kind).add(after)
    if filler and 0.3 <= r < 0.55:
        b.add(" " + filler)
    return b.text(), b.spans


def byte_span(text, cstart, cend):
    return len(text[:cstart].encode()), len(text[:cend].encode())


# ---------------------------------------------------------------- outside validators

CARD_PREFIXES = [("4", (13, 16, 19)), ("34", (15,)), ("37", (15,)), ("5", (16,)), ("2", (16,)),
                 ("6", (16, 17, 18, 19)), ("35", (15, 16, 17, 18, 19)), ("30", (14, 15, 16, 17, 18, 19)),
                 ("36", (14, 15, 16, 17, 18, 19)), ("38", (14, 16)), ("39", (14, 16)), ("50", (12, 13, 14, 15, 16, 17, 18, 19))]


def card_like(digits):
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        return False
    if not luhn.is_valid(digits):
        return False
    return any(digits.startswith(p) and len(digits) in ls for p, ls in CARD_PREFIXES)


EMAIL_RE = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
IPISH_RE = re.compile(r"[0-9A-Fa-f:.]{2,}")
MAC_RE = re.compile(r"(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")
CAND_RE = re.compile(r"[A-Za-z0-9+](?:[A-Za-z0-9]|[ ./-](?=[A-Za-z0-9]))*")
TOKEN_RE = re.compile(r"[A-Za-z0-9+]+")
ALL_ID_MODULES = sorted(DOC_MODULES)


def id_kinds(value, weak=True):
    """Our kinds whose outside validator accepts `value` as a whole."""
    out = set()
    compact = re.sub(r"[ ./-]", "", value)
    if compact.isdigit() and card_like(compact):
        out.add("credit_card")
    for mod in ALL_ID_MODULES:
        kind = DOC_MODULES[mod]
        if kind in ("mac_address",):
            continue
        if not weak and (mod in WEAK_VALIDATORS or (mod in ("cz.rc", "sk.rc") and len(compact) == 9)):
            continue
        if mod == "us.ssn" and not re.fullmatch(r"\d{3}[- .]?\d{2}[- .]?\d{4}", value):
            continue
        if std_valid(mod, value):
            out.add(kind)
    return out


def outside_hits(text, weak=True):
    """(kind, byte_start, byte_end) for everything outside validators accept in `text`."""
    hits = []
    for m in EMAIL_RE.finditer(text):
        hits.append(("email",) + byte_span(text, m.start(), m.end()))
    for m in MAC_RE.finditer(text):
        if std_valid("mac", m.group()):
            hits.append(("mac_address",) + byte_span(text, m.start(), m.end()))
    for m in re.finditer(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.]*\d)", text):
        try:
            ipaddress.ip_address(m.group())
            hits.append(("ip_address",) + byte_span(text, m.start(), m.end()))
        except ValueError:
            pass
    for m in IPISH_RE.finditer(text):
        tok = m.group().strip(".:")
        if tok.count(".") == 3 or tok.count(":") >= 2:
            try:
                ipaddress.ip_address(tok)
                hits.append(("ip_address",) + byte_span(text, m.start(), m.end()))
            except ValueError:
                pass
    for region in REGIONS + ["IL", "IN", "BR", "JP", "CN", "AU"]:
        # A phone is "seen" when phonenumbers finds a valid number written in international form
        # (+ / 00 prefix), or written with the region's own digit grouping (EXACT_GROUPING). Bare
        # digit runs that merely parse as some region's national number are not counted.
        for pm in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            raw = pm.raw_string.lstrip("(")
            if raw.startswith("+") or raw.startswith("00"):
                hits.append(("phone",) + byte_span(text, pm.start, pm.end))
        for pm in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.EXACT_GROUPING):
            if re.search(r"\D", pm.raw_string):
                hits.append(("phone",) + byte_span(text, pm.start, pm.end))
    # Candidate identifiers: runs of 1-6 whitespace-separated words (a word is not split at
    # - . / inside it), trimmed of surrounding punctuation.
    words = [(w.start(), w.end()) for w in re.finditer(r"\S+", text)]
    for i in range(len(words)):
        for j in range(i, min(len(words), i + 6)):
            s, e = words[i][0], words[j][1]
            while s < e and not (text[s].isalnum() or text[s] == "+"):
                s += 1
            while e > s and not text[e - 1].isalnum():
                e -= 1
            sub = text[s:e]
            if True:
                if len(sub) < 6 or len(sub) > 42:
                    continue
                for k in id_kinds(sub, weak=weak):
                    hits.append((k,) + byte_span(text, s, e))
    return hits


def unlabelled_hits(text, spans):
    """Outside-validator hits that overlap none of the labelled spans."""
    out = []
    for k, s, e in outside_hits(text, weak=False):
        if k in ("email", "ip_address", "mac_address"):
            # format-defined kinds: unlabelled unless a span of the same kind covers them, even
            # inside another kind's span (e.g. user@host inside a secret-bearing URL)
            if not any(s < sp["end"] and sp["start"] < e and sp["kind"] == k for sp in spans):
                out.append((k, s, e))
        elif not any(s < sp["end"] and sp["start"] < e for sp in spans):
            out.append((k, s, e))
    return out


# ---------------------------------------------------------------- corpus accumulation

RECORDS = []
SEEN = set()


def emit(set_, source, text, spans, check=True):
    if not text or not text.strip():
        DROPS[f"{source}: empty text"] += 1
        return False
    key = (set_, text)
    if key in SEEN:
        DROPS[f"{source}: duplicate text"] += 1
        return False
    try:
        doc = json.loads(text)
        if isinstance(doc, (dict, list)):
            # `gatehouse scan` would read it as a JSON document; keep it text with a lead-in.
            prefix = "config dump:\n"
            n = len(prefix.encode())
            text = prefix + text
            spans = [dict(sp, start=sp["start"] + n, end=sp["end"] + n) for sp in spans]
    except ValueError:
        pass
    raw = text.encode("utf-8")
    trimmed = []
    for sp in spans:
        st, en = sp["start"], sp["end"]
        while st < en and raw[st:st + 1].isspace():
            st += 1
        while en > st and raw[en - 1:en].isspace():
            en -= 1
        trimmed.append(dict(sp, start=st, end=en))
    spans = trimmed
    if check:
        if set_ == "near_miss":
            hits = outside_hits(text)
            if hits:
                DROPS[f"{source}: near miss holds something an outside validator accepts ({min(hits)[0]})"] += 1
                return False
        else:
            extra = unlabelled_hits(text, spans)
            if extra:
                DROPS[f"{source}: unlabelled {min(extra)[0]} found by an outside validator"] += 1
                return False
    SEEN.add(key)
    RECORDS.append({"set": set_, "source": source, "text": text, "spans": spans})
    return True


def ambiguous_value(value, kind):
    """True when another kind's (strong) checksum validator also accepts the value."""
    others = id_kinds(value, weak=False) - {kind}
    return bool(others)


# ---------------------------------------------------------------- phonenumbers

FORMATS = [("E164", phonenumbers.PhoneNumberFormat.E164),
           ("INTERNATIONAL", phonenumbers.PhoneNumberFormat.INTERNATIONAL),
           ("NATIONAL", phonenumbers.PhoneNumberFormat.NATIONAL),
           ("RFC3966", phonenumbers.PhoneNumberFormat.RFC3966)]
PTYPES = ["FIXED_LINE", "MOBILE", "TOLL_FREE", "PREMIUM_RATE", "SHARED_COST", "VOIP",
          "PERSONAL_NUMBER", "PAGER", "UAN", "VOICEMAIL"]


def phone_ambiguous(s):
    digits = re.sub(r"\D", "", s)
    if "+" not in s and card_like(digits):
        return True
    if re.fullmatch(r"\d+", s) and ambiguous_value(s, "phone"):
        return True
    return False


def gen_phonenumbers(rng, fillers):
    n = 0
    for region in REGIONS:
        for tname in PTYPES:
            ex = phonenumbers.example_number_for_type(region, getattr(phonenumbers.PhoneNumberType, tname))
            if ex is None or not phonenumbers.is_valid_number(ex):
                continue
            for fname, fmt in FORMATS:
                s = phonenumbers.format_number(ex, fmt)
                if fname == "RFC3966":
                    s = s[len("tel:"):]
                if phone_ambiguous(s):
                    DROPS["phonenumbers: number also looks like a card / id"] += 1
                    continue
                text, spans = sentence_with(s, "phone", rng, rng.choice(fillers) if rng.random() < 0.4 else None)
                n += emit("positive", "phonenumbers", text, spans)
    return n


# ---------------------------------------------------------------- Faker

def faker_locales():
    return sorted(l for l in AVAILABLE_LOCALES if "_" in l and l.split("_")[1] in REGIONS)


def provider_module(f, method):
    return getattr(f, method).__self__.__class__.__module__


def gen_faker(rng):
    counts = collections.Counter()
    for li, loc in enumerate(faker_locales()):
        region = loc.split("_")[1]
        f = Faker(loc)
        f.seed_instance(SEED * 1000 + li)
        fillers = [f.sentence() for _ in range(12)]

        def fill():
            return rng.choice(fillers) if rng.random() < 0.5 else None

        # emails
        for method in ("email", "free_email", "company_email", "safe_email"):
            v = getattr(f, method)()
            t, sp = sentence_with(v, "email", rng, fill())
            counts["email"] += emit("positive", "faker", t, sp)
        # phones, validated for the locale's region
        for _ in range(8):
            v = f.phone_number()
            try:
                num = phonenumbers.parse(v, region)
                ok = phonenumbers.is_valid_number_for_region(num, region)
            except phonenumbers.NumberParseException:
                ok = False
            if not ok:
                DROPS["faker: phone_number not valid for the locale's region"] += 1
                continue
            if phone_ambiguous(v):
                DROPS["faker: phone also looks like a card / id"] += 1
                continue
            t, sp = sentence_with(v, "phone", rng, fill())
            counts["phone"] += emit("positive", "faker", t, sp)
        # iban (locales without their own bank provider fall back to GB; keep all valid ones)
        for _ in range(3):
            v = f.iban()
            if not std_iban.is_valid(v):
                DROPS["faker: iban rejected by stdnum"] += 1
                continue
            if rng.random() < 0.5:  # the printed, space-grouped spelling
                v = std_iban.format(v)
            t, sp = sentence_with(v, "iban", rng, fill())
            counts["iban"] += emit("positive", "faker", t, sp)
            # near miss: same IBAN, check digits altered
            compact = std_iban.compact(v)
            check = (int(compact[2:4]) + 1 + rng.randrange(90)) % 97
            bad = compact[:2] + "%02d" % (check if check >= 2 else check + 2) + compact[4:]
            if bad[2:4] != compact[2:4] and not std_iban.is_valid(bad):
                t, _ = sentence_with(bad if " " not in v else std_iban.format(bad), "iban", rng, None, 0.7)
                emit("near_miss", "faker-near-miss", t, [])
        # national identifiers the locale's provider produces
        for method in ("ssn", "pesel", "nif", "nie", "birth_number", "vat_id"):
            if not hasattr(f, method):
                continue
            kind = FAKER_IDS.get((provider_module(f, method), method))
            if kind is None:
                continue
            if kind == "us_ssn" and loc != "en_US":
                continue
            kept = 0
            for _ in range(80):
                if kept >= 14:
                    break
                v = getattr(f, method)()
                if not any(std_valid(m, v) for m in KIND_VALIDATORS[kind]):
                    DROPS[f"faker: {loc} {method} rejected by stdnum ({kind})"] += 1
                    continue
                if ambiguous_value(v, kind):
                    DROPS[f"faker: {loc} {method} also valid as another kind"] += 1
                    continue
                t, sp = sentence_with(v, kind, rng, fill(), 0.75)
                ok = emit("positive", "faker", t, sp)
                counts[kind] += ok
                kept += ok
        # network
        if li % 3 == 0:
            for v in (f.ipv4(), f.ipv4_public(), f.ipv6(), f.ipv4_private()):
                t, sp = sentence_with(v, "ip_address", rng, fill())
                counts["ip_address"] += emit("positive", "faker", t, sp)
            for _ in range(2):
                v = f.mac_address()
                t, sp = sentence_with(v, "mac_address", rng, fill())
                counts["mac_address"] += emit("positive", "faker", t, sp)
    # cards: every card type Faker offers, Luhn must pass
    f = Faker("en_US")
    f.seed_instance(SEED)
    from faker.providers.credit_card import Provider as CC
    for ctype in sorted(CC.credit_card_types):
        for i in range(14):
            v = f.credit_card_number(card_type=ctype)
            if not luhn.is_valid(v):
                DROPS["faker: card failing Luhn"] += 1
                continue
            if ambiguous_value(v, "credit_card"):
                DROPS["faker: card also valid as another kind"] += 1
                continue
            spelled = v
            if i % 3 == 1 and len(v) == 16:
                spelled = " ".join(v[k:k + 4] for k in range(0, 16, 4))
            elif i % 3 == 2 and len(v) == 16:
                spelled = "-".join(v[k:k + 4] for k in range(0, 16, 4))
            t, sp = sentence_with(spelled, "credit_card", rng, f.sentence() if i % 2 else None)
            counts["credit_card"] += emit("positive", "faker", t, sp)
            # near miss: one digit changed -> Luhn fails
            pos = rng.randrange(len(v))
            d = str((int(v[pos]) + 1 + rng.randrange(8)) % 10)
            bad = v[:pos] + d + v[pos + 1:]
            if not luhn.is_valid(bad):
                t, _ = sentence_with(bad, "credit_card", rng, None, 0.7)
                emit("near_miss", "faker-near-miss", t, [])
    return counts


NEAR_TEMPLATES = {
    "ean": ["EAN: {v}", "Barcode {v}", "Artikelnummer (EAN) {v}", "{v}"],
    "isbn": ["ISBN {v}", "Book: ISBN {v}", "{v}"],
    "uuid": ["request id {v}", "trace_id={v}", "Ticket {v} erstellt", "{v}"],
    "time": ["Created at {v}", "Zeitstempel: {v}", "last_login={v}", "{v}"],
    "version": ["version {v}", "Release {v} is out.", "v{v}"],
}


def gen_faker_near(rng):
    f = Faker("en_US")
    f.seed_instance(SEED + 1)
    gens = {
        "ean": lambda: rng.choice([f.ean13(), f.ean8()]),
        "isbn": lambda: rng.choice([f.isbn10(), f.isbn13()]),
        "uuid": lambda: f.uuid4(),
        "time": lambda: rng.choice([f.iso8601(), f.date(), f.date_time().isoformat(sep=" ")]),
        "version": lambda: f.numerify("#.##.###"),
    }
    for name, g in gens.items():
        for _ in range(45):
            v = g()
            t = rng.choice(NEAR_TEMPLATES[name]).replace("{v}", v)
            if rng.random() < 0.3:
                t = f.sentence() + " " + t
            emit("near_miss", "faker-near-miss", t, [])


# ---------------------------------------------------------------- stdnum docstrings

DOC_OK = re.compile(r">>> (validate|is_valid)\((['\"])(.*?)\2\)\s*(?:#.*)?\n(.*)\n")
DOC_BAD = re.compile(r">>> validate\((['\"])(.*?)\1\)\s*(?:#.*)?\n\s*Traceback.*?\n(?:.*\n)*?\s*(InvalidChecksum|InvalidComponent|InvalidLength|InvalidFormat)")


def gen_stdnum_doc(rng):
    n = 0
    for mod in sorted(DOC_MODULES):
        kind = DOC_MODULES[mod]
        doc = std(mod).__doc__ or ""
        for m in DOC_OK.finditer(doc):
            fn, value, result = m.group(1), m.group(3), m.group(4).strip()
            if fn == "is_valid" and result != "True":
                continue
            if fn == "validate" and (result.startswith("Traceback") or not result):
                continue
            if not std_valid(mod, value):
                DROPS["stdnum-doc: example not accepted by its own module"] += 1
                continue
            if kind == "iban" and False:
                pass
            if kind not in ("mac_address", "crypto_wallet", "iban") and ambiguous_value(value, kind):
                DROPS["stdnum-doc: example also valid as another kind"] += 1
                continue
            for _ in range(2):  # once with a context word, once neutral-ish
                t, sp = sentence_with(value, kind, rng, None, 0.5)
                n += emit("positive", "stdnum-doc", t, sp)
        for m in DOC_BAD.finditer(doc):
            value = m.group(2)
            if any(std_valid(x, value) for x in KIND_VALIDATORS.get(kind, [])):
                continue
            t, _ = sentence_with(value, kind, rng, None, 0.7)
            emit("near_miss", "stdnum-doc", t, [])
    return n


# ---------------------------------------------------------------- Presidio

def git_show(gitdir, commit, path):
    return subprocess.run(["git", "--git-dir", gitdir, "show", f"{commit}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def presidio_valid(kind, value):
    if kind == "email":
        return bool(re.fullmatch(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", value))
    if kind == "credit_card":
        d = re.sub(r"[ -]", "", value)
        return d.isdigit() and luhn.is_valid(d)
    if kind == "ip_address":  # Presidio labels CIDR blocks and scoped addresses too
        try:
            ipaddress.ip_interface(value)
            return True
        except ValueError:
            return False
    if kind == "us_ssn":  # stdnum.us.ssn reads only - as separator
        return std_valid("us.ssn", re.sub(r"[ .]", "-", value))
    if kind == "fi_hetu":  # Presidio's examples use temporary (900-999) serials
        try:
            std("fi.hetu").validate(value, allow_temporary=True)
            return True
        except Exception:
            return False
    if kind == "phone":
        for region in PRESIDIO_PHONE_REGIONS:
            try:
                if phonenumbers.is_valid_number(phonenumbers.parse(value, region)):
                    return True
            except phonenumbers.NumberParseException:
                pass
        return False
    if kind == "uk_nino":
        return None  # no outside validator: Presidio's label stands
    mods = KIND_VALIDATORS.get(kind)
    return any(std_valid(m, value) for m in mods) if mods else None


def gen_presidio(gitdir):
    counts = collections.Counter()
    base = "presidio-analyzer/tests/"
    by_text = collections.OrderedDict()  # text -> {"spans": set, "zero": bool, "pos": bool}
    for fname, default_entity in PRESIDIO_FILES.items():
        src = git_show(gitdir, PRESIDIO_COMMIT, base + fname)
        tree = ast.parse(src)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for dec in node.decorator_list:
                if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                    continue
                try:
                    names = [x.strip() for x in ast.literal_eval(dec.args[0]).split(",")]
                except Exception:
                    continue
                text_f = next((n for n in names if n in ("text", "iban")), None)
                if text_f is None or "expected_len" not in names:
                    continue
                pos_f = next((n for n in names if n in ("expected_positions", "expected_res")), None)
                if pos_f is None:
                    continue
                ranges_f = "expected_score_ranges" if "expected_score_ranges" in names else None
                for el in dec.args[1].elts:
                    try:
                        row = dict(zip(names, ast.literal_eval(el)))
                    except Exception:
                        DROPS["presidio: table row not a literal (built by a helper)"] += 1
                        continue
                    text = row[text_f]
                    if not isinstance(text, str) or not text:
                        continue
                    ents = row.get("entities") or [default_entity] * max(1, row["expected_len"])
                    positions = list(row[pos_f] or ())
                    entry = by_text.setdefault(text, {"spans": set(), "zero": False, "pos": False, "drop": False})
                    if row["expected_len"] == 0:
                        entry["zero"] = True
                        continue
                    entry["pos"] = True
                    if len(positions) < row["expected_len"]:
                        if row["expected_len"] == 1 and " " not in text.strip():
                            st = len(text) - len(text.lstrip())
                            positions = [(st, len(text.rstrip()))]
                        else:
                            DROPS["presidio: expected spans not given"] += 1
                            entry["drop"] = True
                            continue
                    ranges = list(row.get(ranges_f) or ()) if ranges_f else []
                    for i, (s, e) in enumerate(positions):
                        ent = ents[i] if i < len(ents) else default_entity
                        kind = PRESIDIO_TO_KIND.get(ent)
                        if kind is None:
                            entry["drop"] = True
                            continue
                        if i < len(ranges) and isinstance(ranges[i][1], (int, float)) and ranges[i][1] < 0.5:
                            DROPS["presidio: Presidio itself scores it below 0.5 (weak match)"] += 1
                            entry["drop"] = True
                            continue
                        entry["spans"].add((kind, s, e))
    for text, entry in by_text.items():
        if entry["drop"]:
            continue
        if not entry["pos"]:
            emit("near_miss", "presidio", text, [])
            continue
        spans, ok = [], True
        for kind, s, e in sorted(entry["spans"], key=lambda x: (x[1], x[2])):
            v = presidio_valid(kind, text[s:e])
            if v is False:
                DROPS[f"presidio: {kind} span rejected by outside validator"] += 1
                ok = False
                break
            if kind in KIND_VALIDATORS and kind not in ("iban", "mac_address", "crypto_wallet") and ambiguous_value(text[s:e], kind):
                DROPS["presidio: value also valid as another kind"] += 1
                ok = False
                break
            bs, be = byte_span(text, s, e)
            spans.append({"kind": kind, "start": bs, "end": be})
        if ok and emit("positive", "presidio", text, spans):
            for sp in spans:
                counts[sp["kind"]] += 1
    return counts


# ---------------------------------------------------------------- gitleaks

def go_string_literals(expr):
    """Evaluates a Go expression made only of string literals joined by +; None otherwise."""
    expr = expr.strip()
    out, i = [], 0
    while i < len(expr):
        c = expr[i]
        if c.isspace() or c == "+":
            i += 1
            continue
        if c == "`":
            j = expr.index("`", i + 1)
            out.append(expr[i + 1:j])
            i = j + 1
        elif c == '"':
            j = i + 1
            while expr[j] != '"':
                j += 2 if expr[j] == "\\" else 1
            try:
                out.append(ast.literal_eval(expr[i:j + 1]))
            except Exception:
                return None
            i = j + 1
        else:
            return None
    return "".join(out) if out else None


def split_top(body):
    """Splits a Go composite-literal body at top-level commas (strings respected)."""
    items, depth, cur, i = [], 0, [], 0
    while i < len(body):
        c = body[i]
        if c == "`":
            j = body.index("`", i + 1)
            cur.append(body[i:j + 1])
            i = j + 1
            continue
        if c == '"':
            j = i + 1
            while body[j] != '"':
                j += 2 if body[j] == "\\" else 1
            cur.append(body[i:j + 1])
            i = j + 1
            continue
        if c == "/" and body[i:i + 2] == "//":
            j = body.find("\n", i)
            i = len(body) if j < 0 else j
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        items.append("".join(cur))
    return [x.strip() for x in items if x.strip()]


def block_after(src, start):
    """Returns the text inside the braces that open at src[start] == '{'."""
    depth, i = 0, start
    while i < len(src):
        c = src[i]
        if c == "`":
            i = src.index("`", i + 1) + 1
            continue
        if c == '"':
            j = i + 1
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            i = j + 1
            continue
        if c == "/" and src[i:i + 2] == "//":
            i = src.find("\n", i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return src[start + 1:i]
        i += 1
    return ""


def call_args(src, start):
    """Text inside the parentheses opening at src[start] == '('."""
    depth, i = 0, start
    while i < len(src):
        c = src[i]
        if c == "`":
            i = src.index("`", i + 1) + 1
            continue
        if c == '"':
            j = i + 1
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return src[start + 1:i]
        i += 1
    return ""


IDENT_PREFIX, IDENT_CI_PREFIX = r"[\w.-]{0,50}?(?:", r"[\w.-]{0,50}?(?i:"
IDENT_SUFFIX = r")(?:[ \t\w.-]{0,20})[\s'\"]{0,3}"
OPERATOR = r"(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)"
SECRET_PREFIX, SECRET_PREFIX_UNIQUE = r"[\x60'\"\s=]{0,5}(", r"\b("
SECRET_SUFFIX = r")(?:[\x60'\"\s;]|\\[nr]|$)"


def go_regex_to_py(rx):
    rx = rx.replace(r"\z", r"\Z")
    for posix, rep in (("[:alnum:]", "a-zA-Z0-9"), ("[:alpha:]", "a-zA-Z"), ("[:digit:]", "0-9"),
                       ("[:xdigit:]", "0-9A-Fa-f"), ("[:upper:]", "A-Z"), ("[:lower:]", "a-z"),
                       ("[:space:]", r"\s"), ("[:punct:]", r"!-/:-@\[-`{-~")):
        rx = rx.replace(posix, rep)
    # Go allows (?i) anywhere; Python only at the start: move a leading-group flag out.
    if "(?i)" in rx and not rx.startswith("(?i)"):
        rx = "(?i)" + rx.replace("(?i)", "")
    return re.compile(rx)


def rule_regex(body):
    m = re.search(r"Regex:\s*", body)
    if not m:
        return None
    rest = body[m.end():]
    try:
        if rest.startswith("regexp.MustCompile("):
            lit = go_string_literals(call_args(rest, len("regexp.MustCompile")))
            return go_regex_to_py(lit) if lit else None
        if rest.startswith("utils.GenerateUniqueTokenRegex("):
            args = split_top(call_args(rest, len("utils.GenerateUniqueTokenRegex")))
            lit = go_string_literals(args[0])
            if lit is None:
                return None
            return go_regex_to_py(("(?i)" if args[1] == "true" else "") + SECRET_PREFIX_UNIQUE + lit + SECRET_SUFFIX)
        if rest.startswith("utils.GenerateSemiGenericRegex("):
            args = split_top(call_args(rest, len("utils.GenerateSemiGenericRegex")))
            ids_body = args[0][args[0].index("{") + 1:args[0].rindex("}")]
            ids = [go_string_literals(x) for x in split_top(ids_body)]
            lit = go_string_literals(args[1])
            if lit is None or any(i is None for i in ids):
                return None
            ci = args[2] == "true"
            pre = ("(?i)" + IDENT_PREFIX) if ci else IDENT_CI_PREFIX
            return go_regex_to_py(pre + "|".join(ids) + IDENT_SUFFIX + OPERATOR + SECRET_PREFIX + lit + SECRET_SUFFIX)
    except (ValueError, re.error, IndexError):
        return None
    return None


def shannon(s):
    if not s:
        return 0.0
    c = collections.Counter(s)
    return -sum(v / len(s) * math.log2(v / len(s)) for v in c.values())


def secret_spans(rx, text, secret_group):
    out = []
    for m in rx.finditer(text):
        if secret_group and secret_group <= (rx.groups or 0) and m.group(secret_group):
            s, e = m.span(secret_group)
        else:
            g = next((i for i in range(1, (rx.groups or 0) + 1) if m.group(i)), None)
            s, e = m.span(g) if g else m.span()
        if e > s:
            out.append((s, e))
    return out


def gen_gitleaks(gitdir):
    files = subprocess.run(["git", "--git-dir", gitdir, "ls-tree", "--name-only", GITLEAKS_COMMIT,
                            "cmd/generate/config/rules/"], check=True, capture_output=True, text=True).stdout.split()
    rules = []  # (rule_id, regex, entropy, keywords, secret_group, tps, fps)
    for path in sorted(files):
        if not path.endswith(".go") or path.endswith("_test.go"):
            continue
        src = git_show(gitdir, GITLEAKS_COMMIT, path)
        for fm in re.finditer(r"^func \w+\([^)]*\) \*config\.Rule \{", src, re.M):
            body = block_after(src, fm.end() - 1)
            rid = re.search(r'RuleID:\s*"([^"]+)"', body)
            rid = rid.group(1) if rid else path
            rx = rule_regex(body)
            ent = re.search(r"Entropy:\s*([\d.]+)", body)
            sg = re.search(r"SecretGroup:\s*(\d+)", body)
            kw_m = re.search(r"Keywords:\s*\[\]string\{", body)
            kws = []
            if kw_m:
                kws = [go_string_literals(x) or "" for x in split_top(block_after(body, kw_m.end() - 1))]
            lists = {"tps": [], "fps": []}
            for lm in re.finditer(r"\b(tps|fps)\s*(?::=|=)\s*(append\(\s*(?:tps|fps)\s*,\s*)?\[\]string\{", body):
                items = split_top(block_after(body, lm.end() - 1))
                for it in items:
                    lit = go_string_literals(it)
                    if lit is None:
                        gm = re.fullmatch(r"utils\.GenerateSampleSecret\((.*)\)", it, re.S)
                        if gm:
                            a = split_top(gm.group(1))
                            if len(a) == 2 and go_string_literals(a[0]) and go_string_literals(a[1]):
                                lit = '%s_api_token = "%s"' % (go_string_literals(a[0]), go_string_literals(a[1]))
                    if lit is None:
                        DROPS[f"gitleaks: {lm.group(1)} item built by a helper (not a literal)"] += 1
                        continue
                    lists[lm.group(1)].append(lit)
            rules.append((rid, rx, float(ent.group(1)) if ent else None, kws,
                          int(sg.group(1)) if sg else 0, lists["tps"], lists["fps"]))
    counts = collections.Counter()
    placed = collections.Counter()
    for rid, rx, ent, kws, sg, tps, fps in rules:
        for tp in tps:
            text = tp
            spans = secret_spans(rx, text, sg) if rx else []
            if spans:
                placed["regex"] += 1
            else:
                st = len(text) - len(text.lstrip())
                spans = [(st, len(text.rstrip()))]
                placed["whole literal"] += 1
            bspans = [dict(zip(("kind", "start", "end"), ("secret",) + byte_span(text, s, e))) for s, e in spans]
            counts["secret"] += emit("positive", "gitleaks", text, bspans)
        for fp in fps:
            flagged = False
            for rid2, rx2, ent2, kws2, sg2, _, _ in rules:
                if rid2 == rid or rx2 is None:
                    continue
                if kws2 and not any(k and k.lower() in fp.lower() for k in kws2):
                    continue
                for s, e in secret_spans(rx2, fp, sg2):
                    if ent2 is None or shannon(fp[s:e]) >= ent2:
                        flagged = True
                        break
                if flagged:
                    break
            if flagged:
                DROPS["gitleaks: fp matched by another gitleaks rule (regex+keyword+entropy)"] += 1
                continue
            emit("near_miss", "gitleaks", fp, [])
    print(f"gitleaks rules: {len(rules)}, with a Python-compilable regex: "
          f"{sum(1 for r in rules if r[1])}; tp spans placed by {dict(placed)}", file=sys.stderr)
    return counts


# ---------------------------------------------------------------- LLM JSON bodies

MODELS = ["gpt-4o", "gpt-4.1-mini", "claude-sonnet-4-5", "claude-3-5-haiku-latest", "mistral-large-latest"]


def gen_llm_json(rng, n=160):
    pool = [r for r in RECORDS if r["set"] == "positive" and r["source"] in ("faker", "phonenumbers", "stdnum-doc", "presidio")
            and "\n" not in r["text"]]
    near = [r for r in RECORDS if r["set"] == "near_miss" and r["source"] in ("faker-near-miss",) and "\n" not in r["text"]]
    made = 0
    for i in range(n):
        k = rng.randint(1, 4)
        picks = rng.sample(pool, k)
        messages, spans = [], []
        if rng.random() < 0.3:
            messages.append({"role": "system", "content": "You are a helpful assistant."})
        for j, rec in enumerate(picks):
            role = "user" if j % 2 == 0 else "assistant"
            idx = len(messages)
            messages.append({"role": role, "content": rec["text"]})
            for sp in rec["spans"]:
                spans.append(dict(sp, pointer=f"/messages/{idx}/content"))
        if near and rng.random() < 0.4:
            messages.append({"role": "user", "content": rng.choice(near)["text"]})
        doc = {"model": rng.choice(MODELS), "messages": messages,
               "max_tokens": rng.choice([256, 1024, 4096]), "temperature": rng.choice([0, 0.2, 0.7])}
        style = ("pretty", "compact", "ascii")[i % 3]
        if style == "pretty":
            body = json.dumps(doc, indent=2, ensure_ascii=False)
        elif style == "compact":
            body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        else:
            body = json.dumps(doc, ensure_ascii=True)
        RECORDS.append({"set": "llm_json", "source": "llm_json", "serialization": style,
                        "json": doc, "body": body, "spans": spans})
        made += 1
    return made


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presidio-git", default="/work/.mirror/microsoft+presidio/repo")
    ap.add_argument("--gitleaks-git", default="/work/.mirror/gitleaks+gitleaks/repo")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests/data/independent_corpus.jsonl"))
    args = ap.parse_args()
    versions = {"faker": faker.VERSION, "phonenumbers": phonenumbers.__version__, "python-stdnum": stdnum.__version__}
    if versions != PINS:
        print(f"warning: versions {versions} differ from the pins {PINS}; output will differ", file=sys.stderr)
    freezer = freezegun.freeze_time(FROZEN_NOW)
    freezer.start()
    rng = random.Random(SEED)
    Faker.seed(SEED)
    fillers = [Faker("en_US").sentence() for _ in range(10)]

    gen_phonenumbers(rng, fillers)
    gen_faker(rng)
    gen_stdnum_doc(rng)
    gen_presidio(args.presidio_git)
    gen_gitleaks(args.gitleaks_git)
    gen_faker_near(rng)
    gen_llm_json(rng)

    with open(args.out, "w", encoding="utf-8") as fh:
        for r in RECORDS:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")

    kinds, sources = collections.Counter(), collections.Counter()
    for r in RECORDS:
        sources[(r["source"], r["set"])] += 1
        for sp in r["spans"]:
            kinds[(sp["kind"], r["source"])] += 1
    print(f"wrote {len(RECORDS)} records to {args.out}", file=sys.stderr)
    print("records per source/set:", file=sys.stderr)
    for (s, st), n in sorted(sources.items()):
        print(f"  {s:16} {st:10} {n}", file=sys.stderr)
    print("labelled spans per kind (source):", file=sys.stderr)
    tot = collections.Counter()
    for (k, s), n in kinds.items():
        tot[k] += n
    for k in sorted(tot):
        detail = ", ".join(f"{s} {n}" for (kk, s), n in sorted(kinds.items()) if kk == k)
        print(f"  {k:20} {tot[k]:5}  ({detail})", file=sys.stderr)
    print("dropped:", file=sys.stderr)
    for reason, n in sorted(DROPS.items()):
        print(f"  {n:5}  {reason}", file=sys.stderr)


if __name__ == "__main__":
    main()
