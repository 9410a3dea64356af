#!/usr/bin/env python3
"""Generates the labelled PII corpus at tests/data/pii_corpus.jsonl with a fixed seed.

Every value is fictional: Faker for names, emails, IBANs and locale identifiers, python-stdnum to
check the identifiers it produces (invalid ones are regenerated), and small generators here for
what neither offers (payment cards with real IIN ranges, phone numbers in the formats people
write, wallets, API keys). Three sets:

  positive   English and EU-locale sentences, each with the span of every item it carries
  llm_json   LLM-request JSON documents; spans are in the decoded string at a JSON pointer
  near_miss  strings that look like personal data but are not (must yield no finding)

Run: python3 -m venv /tmp/corpus && /tmp/corpus/bin/pip install faker==40.63.0 python-stdnum==2.2 phonenumbers==9.0.43
     /tmp/corpus/bin/python scripts/pii_corpus.py > tests/data/pii_corpus.jsonl
"""

import hashlib
import json
import random
import string
import sys
import uuid

import phonenumbers

from faker import Faker
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.be import nn as be_nn
from stdnum.de import idnr as de_idnr
from stdnum.es import dni as es_dni, nie as es_nie
from stdnum.fi import hetu as fi_hetu
from stdnum.fr import nir as fr_nir
from stdnum.gb import nhs as gb_nhs
from stdnum.it import codicefiscale as it_cf
from stdnum.nl import bsn as nl_bsn
from stdnum.pl import pesel as pl_pesel
from stdnum.se import personnummer as se_pnr

SEED = 20261125
rng = random.Random(SEED)
Faker.seed(SEED)
LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "sv_SE", "fi_FI"]
fakers = {loc: Faker(loc) for loc in LOCALES}


def digits(n):
    return "".join(rng.choice(string.digits) for _ in range(n))


def until_valid(make, valid):
    for _ in range(10000):
        value = make()
        if valid(value):
            return value
    raise RuntimeError("no valid value generated")


def grouped(value, size=4, sep=" "):
    return sep.join(value[i:i + size] for i in range(0, len(value), size))


# --- generators: each returns the value as it appears in text ---------------------------------

CARD_PREFIXES = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16),
                 ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("3528", 16), ("3589", 16),
                 ("36", 14), ("300", 14), ("62", 16), ("6304", 12), ("5018", 12), ("6759", 18)]


def card():
    prefix, length = rng.choice(CARD_PREFIXES)
    body = prefix + digits(length - len(prefix) - 1)
    number = body + luhn.calc_check_digit(body)
    style = rng.random()
    if length == 16 and style < 0.4:
        return grouped(number, 4, " ")
    if length == 16 and style < 0.6:
        return grouped(number, 4, "-")
    if length == 15 and style < 0.5:
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    return number


def iban():
    loc = rng.choice(["de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "fi_FI", "en_GB"])
    value = fakers[loc].iban()
    assert std_iban.is_valid(value)
    return grouped(value) if rng.random() < 0.5 else value


def ssn():
    return until_valid(lambda: f"{digits(3)}-{digits(2)}-{digits(4)}",
                       lambda v: v[:3] not in ("000", "666") and v[0] != "9"
                       and v[4:6] != "00" and v[7:] != "0000")


PHONE_FORMATS = [
    lambda: f"+1 {rng.randint(201, 989)} {rng.randint(200, 999)} {digits(4)}",
    lambda: f"+1-{rng.randint(201, 989)}-{rng.randint(200, 999)}-{digits(4)}",
    lambda: f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{digits(4)}",
    lambda: f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{digits(4)}",
    lambda: f"+44 20 {digits(4)} {digits(4)}",
    lambda: f"+44 7{digits(3)} {digits(6)}",
    lambda: f"+49 30 {digits(8)}",
    lambda: f"+49 151 {digits(8)}",
    lambda: f"+33 6 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
    lambda: f"+34 6{digits(2)} {digits(3)} {digits(3)}",
    lambda: f"+39 3{digits(2)} {digits(7)}",
    lambda: f"+31 6 {digits(8)}",
    lambda: f"+46 70 {digits(3)} {digits(2)} {digits(2)}",
    lambda: f"+48 {rng.randint(500, 899)} {digits(3)} {digits(3)}",
    lambda: f"+358 40 {digits(7)}",
]


def valid_phone(region):
    """Whether a number is valid under libphonenumber's plans (random digits often fall in
    ranges no operator holds, and a number nobody can have is not a phone number)."""
    return lambda v: phonenumbers.is_valid_number(phonenumbers.parse(v, region))


def phone():
    return until_valid(lambda: rng.choice(PHONE_FORMATS)(), valid_phone("US"))


NATIONAL_FORMATS = [
    ("DE", lambda: f"030 {digits(7)}"),
    ("GB", lambda: f"020 {digits(4)} {digits(4)}"),
    ("FR", lambda: f"06 {digits(2)} {digits(2)} {digits(2)} {digits(2)}"),
]


def national_phone():
    region, make = rng.choice(NATIONAL_FORMATS)
    return until_valid(make, valid_phone(region))


def ipv4():
    return fakers["en_US"].ipv4_public()


def ipv6():
    return fakers["en_US"].ipv6()


def mac():
    value = fakers["en_US"].mac_address()
    return value.upper() if rng.random() < 0.5 else value


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def btc():
    payload = bytes([rng.choice([0, 5])]) + bytes(rng.getrandbits(8) for _ in range(20))
    check = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(payload + check, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(payload + check) - len((payload + check).lstrip(b"\0"))) + out


def eth():
    return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))


def de_tax():
    return until_valid(lambda: str(rng.randint(1, 9)) + digits(10), de_idnr.is_valid)


def nir():
    value = fakers["fr_FR"].ssn()
    assert fr_nir.is_valid(value), value
    return f"{value[0]} {value[1:3]} {value[3:5]} {value[5:7]} {value[7:10]} {value[10:13]} {value[13:]}" if rng.random() < 0.5 else value


def dni():
    value = fakers["es_ES"].nif() if rng.random() < 0.6 else fakers["es_ES"].nie()
    assert es_dni.is_valid(value) or es_nie.is_valid(value), value
    return value


def cf():
    value = fakers["it_IT"].ssn()
    assert it_cf.is_valid(value), value
    return value


def bsn():
    value = fakers["nl_NL"].ssn()
    assert nl_bsn.is_valid(value), value
    return value


def pesel():
    value = fakers["pl_PL"].pesel()
    assert pl_pesel.is_valid(value), value
    return value


def be_number():
    def make():
        return f"{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{digits(3)}"
    base = make()
    check = 97 - int(base) % 97
    value = f"{base}{check:02d}"
    assert be_nn.is_valid(value), value
    return f"{value[:2]}.{value[2:4]}.{value[4:6]}-{value[6:9]}.{value[9:]}"


def pnr():
    value = fakers["sv_SE"].ssn()
    assert se_pnr.is_valid(value), value
    return value


def hetu():
    value = fakers["fi_FI"].ssn()
    assert fi_hetu.is_valid(value), value
    return value


def nino():
    first = rng.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
        first, second = "A", "B"
    number = digits(6)
    suffix = rng.choice("ABCD")
    if rng.random() < 0.5:
        return f"{first}{second}{number}{suffix}"
    return f"{first}{second} {number[:2]} {number[2:4]} {number[4:]} {suffix}"


def nhs():
    value = until_valid(lambda: digits(10), gb_nhs.is_valid)
    return f"{value[:3]} {value[3:6]} {value[6:]}" if rng.random() < 0.5 else value


def token(alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits


def secret():
    kind = rng.randrange(9)
    if kind == 0:
        return "sk-proj-" + token(ALNUM + "_-", 48)
    if kind == 1:
        return "sk-ant-api03-" + token(ALNUM + "_-", 90)
    if kind == 2:
        return "AIza" + token(ALNUM + "_-", 35)
    if kind == 3:
        return rng.choice(["AKIA", "ASIA"]) + token(string.ascii_uppercase + "234567", 16)
    if kind == 4:
        return "ghp_" + token(ALNUM, 36)
    if kind == 5:
        return "glpat-" + token(ALNUM + "_-", 20)
    if kind == 6:
        return "xoxb-" + digits(12) + "-" + digits(12) + "-" + token(ALNUM, 24)
    if kind == 7:
        return "sk_live_" + token(ALNUM, 24)
    header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    return header + "." + "eyJ" + token(ALNUM + "_-", 40) + "." + token(ALNUM + "_-", 43)


def email():
    loc = rng.choice(LOCALES)
    f = fakers[loc]
    return rng.choice([f.email, f.company_email, f.free_email])()


# --- sentences -----------------------------------------------------------------------------------

TEMPLATES = {
    "email": ["Please send the invoice to {}.", "Schreiben Sie an {} bis Freitag.", "Mon adresse est {} si besoin.",
              "cc {} on the thread", "Contact: {}"],
    "credit_card": ["Charge the card {} for the renewal.", "Kartennummer: {}", "Mi tarjeta es {} y caduca pronto.",
                    "The customer paid with {} yesterday."],
    "iban": ["Bitte überweisen Sie auf {} bis Monatsende.", "IBAN: {}", "Wire the refund to {} please.",
             "Il mio IBAN è {}."],
    "us_ssn": ["Her SSN is {} according to the form.", "SSN: {}", "social security number {} on file"],
    "phone": ["Call me at {} after 5pm.", "Telefon: {}", "Mobile {} (WhatsApp)", "You can reach the office on {}."],
    "phone_national": ["Telefon: {}", "call the hotline on {}", "tel. {}"],
    "ip_address": ["The request came from {} this morning.", "Blocked host {} after 5 failures.", "peer={}"],
    "mac_address": ["Device MAC {} joined the network.", "mac address: {}"],
    "crypto_wallet": ["Send 0.1 BTC to {} today.", "wallet {}", "Pay to {} on mainnet."],
    "de_tax_id": ["Meine Steuer-ID ist {}.", "Steuerliche Identifikationsnummer: {}", "IdNr {}"],
    "fr_nir": ["Mon numéro de sécurité sociale est {}.", "NIR : {}"],
    "es_dni": ["Mi DNI es {} y vivo en Madrid.", "NIE {}", "Documento: {}"],
    "it_fiscal_code": ["Il mio codice fiscale è {}.", "CF: {}"],
    "nl_bsn": ["Mijn BSN is {}.", "burgerservicenummer {}"],
    "pl_pesel": ["Mój PESEL to {}.", "PESEL: {}"],
    "be_national_number": ["Rijksregisternummer {}", "Mon numéro national est {}."],
    "se_personnummer": ["Mitt personnummer är {}.", "Personnummer: {}"],
    "fi_hetu": ["Henkilötunnukseni on {}.", "HETU {}"],
    "uk_nino": ["My National Insurance number is {}.", "NINO: {}"],
    "uk_nhs": ["NHS number {} is on the referral letter.", "Patient NHS no. {}"],
    "secret": ["export OPENAI_API_KEY={}", "the token is {} do not share", "Authorization: Bearer {}",
               "use key {} for staging"],
}

GENERATORS = {
    "email": email, "credit_card": card, "iban": iban, "us_ssn": ssn, "phone": phone,
    "phone_national": national_phone, "ip_address": lambda: ipv4() if rng.random() < 0.7 else ipv6(),
    "mac_address": mac, "crypto_wallet": lambda: btc() if rng.random() < 0.6 else eth(),
    "de_tax_id": de_tax, "fr_nir": nir, "es_dni": dni, "it_fiscal_code": cf, "nl_bsn": bsn,
    "pl_pesel": pesel, "be_national_number": be_number, "se_personnummer": pnr, "fi_hetu": hetu,
    "uk_nino": nino, "uk_nhs": nhs, "secret": secret,
}

FILLER = ["Thanks for the quick reply.", "Let me know if anything else is needed.", "Best regards, the team.",
          "Vielen Dank im Voraus.", "Merci de votre retour.", "The meeting is at 3pm in room 4.",
          "Order 4471 shipped on Tuesday.", ""]


def sentence(kind):
    label = "phone" if kind == "phone_national" else kind
    value = GENERATORS[kind]()
    template = rng.choice(TEMPLATES[kind])
    before, after = template.split("{}")
    lead = rng.choice(FILLER)
    lead = lead + " " if lead else ""
    text = lead + before + value + after
    start = len((lead + before).encode())
    return text, [{"kind": label, "start": start, "end": start + len(value.encode())}]


def positive(n_per_kind):
    out = []
    for kind in GENERATORS:
        for _ in range(n_per_kind):
            text, spans = sentence(kind)
            if rng.random() < 0.3:
                other = rng.choice(["email", "phone", "credit_card", "iban"])
                more, more_spans = sentence(other)
                shift = len((text + " ").encode())
                spans += [dict(s, start=s["start"] + shift, end=s["end"] + shift) for s in more_spans]
                text = text + " " + more
            out.append({"set": "positive", "text": text, "spans": spans})
    return out


def llm_json(n):
    out = []
    for _ in range(n):
        messages, spans = [], []
        for i in range(rng.randint(1, 4)):
            kind = rng.choice(list(GENERATORS))
            text, s = sentence(kind)
            messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
            spans += [dict(x, pointer=f"/messages/{i}/content") for x in s]
        doc = {"model": rng.choice(["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro"]), "messages": messages,
               "max_tokens": rng.choice([256, 1024, 4096]), "temperature": 0.2}
        out.append({"set": "llm_json", "json": doc, "spans": spans})
    return out


def near_misses(n):
    def bad_card():
        number = card().replace(" ", "").replace("-", "")
        last = (int(number[-1]) + rng.randint(1, 9)) % 10
        return f"card {number[:-1]}{last}"

    def bad_iban():
        value = iban().replace(" ", "")
        check = int(value[2:4])
        wrong = f"{(check + rng.randint(1, 50)) % 97 + 2:02d}"
        candidate = value[:2] + wrong + value[4:]
        return "IBAN " + (candidate if not std_iban.is_valid(candidate) else value[:2] + "00" + value[4:])

    makers = [
        bad_card,
        bad_iban,
        lambda: f"SSN {rng.randint(900, 999)}-{digits(2)}-{digits(4)}",
        lambda: f"request id {uuid.UUID(int=rng.getrandbits(128))}",
        lambda: f"at {rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
        lambda: f"upgrade to v{rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
        lambda: f"version {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}-beta.{rng.randint(1, 9)}",
        lambda: f"order number {digits(rng.randint(8, 12))} shipped",
        lambda: f"invoice INV-{digits(6)} is due",
        lambda: f"commit {token('0123456789abcdef', 40)}",
        lambda: f"sha256 {token('0123456789abcdef', 64)}",
        lambda: f"the total was ${rng.randint(1, 99999)}.{digits(2)}",
        lambda: f"ZIP {digits(5)} and {digits(5)}-{digits(4)}",
        lambda: f"on {rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1990, 2030)}",
        lambda: f"tracking 1Z{token(string.ascii_uppercase + string.digits, 16)}",
        lambda: f"port {rng.randint(1024, 65535)} on localhost",
        lambda: f"{rng.randint(1, 999)} of {rng.randint(1000, 9999)} items processed in {rng.randint(1, 99)}.{digits(2)}s",
        lambda: f"max_tokens={rng.randint(1, 8192)} temperature=0.{digits(1)}",
        lambda: f"ISBN 978-{digits(1)}-{digits(3)}-{digits(5)}-{digits(1)}",
    ]
    return [{"set": "near_miss", "text": rng.choice(makers)(), "spans": []} for _ in range(n)]


def main():
    records = positive(60) + llm_json(150) + near_misses(400)
    for record in records:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
