#!/usr/bin/env python3
"""Ports gitleaks' default rule set (config/gitleaks.toml, MIT licence, (c) Zachary Rice) to
src/pii/secret_rules.tsv and its generic stopwords (cmd/generate/config/rules/stopwords.go) to
src/pii/secret_stopwords.txt. Patterns are ported, not code: Go RE2 and Rust's `regex` share a
syntax, so only the Perl classes are made ASCII (`\\w`, `\\s`, `\\d`, `\\b` are Unicode in Rust).

usage: gitleaks_rules.py GITLEAKS_TOML STOPWORDS_GO OUT_DIR
"""
import re
import sys
import tomllib

# Rules that need what a request body does not have (a file path, a whole file as the
# prefilter), with the reason; the report lists them.
SKIP = {
    "facebook-access-token": "document-wide keyword; ported in EXTRA with the keyword before it",
    "hashicorp-tf-password": "path-scoped (*.tf, *.hcl)",
    "kubernetes-secret-yaml": "path-scoped (*.yaml) multi-line document rule",
    "nuget-config-password": "path-scoped (nuget.config)",
    "freemius-secret-key": "path-scoped (*.php)",
    "pkcs12-file": "file-name rule, no content pattern",
    "openai-api-key": "covered by the built-in openai shape (a superset)",
    "private-key": "ported by hand in anchors.rs (bounded window)",
}

# Prefix rules whose anchor is not where the secret starts: (anchors, bytes back, pattern).
SPECIAL = {
    "azure-ad-client-secret": (["q~"], 4,
        r"""([a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.-]{31,34})(?:$|[\\'"\x60\s<),])"""),
    "hashicorp-tf-api-token": ([".atlasv1."], 14,
        r"(?i)[a-z0-9]{14}\.(?-i:atlasv1)\.[a-z0-9\-_=]{60,70}"),
    "maxmind-license-key": (["_mmk"], 36,
        r"""([A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk)(?:[\x60'"\s;]|\\[nr]|$)"""),
    "microsoft-teams-webhook": (["webhook.office.com/webhookb2/"], 0,
        r"webhook\.office\.com/webhookb2/[a-z0-9]{8}-([a-z0-9]{4}-){3}[a-z0-9]{12}@[a-z0-9]{8}-([a-z0-9]{4}-){3}[a-z0-9]{12}/IncomingWebhook/[a-z0-9]{32}/[a-z0-9]{8}-([a-z0-9]{4}-){3}[a-z0-9]{12}"),
    "sidekiq-sensitive-url": (["@gems.contribsys.com", "@enterprise.contribsys.com"], 17,
        r"(?i)([a-f0-9]{8}:[a-f0-9]{8})@(?:gems.contribsys.com|enterprise.contribsys.com)(?:[\/|\#|\?|:]|$)"),
    "sourcegraph-access-token": (["sgp_"], 0,
        r"""(?i)(sgp_(?:[a-fA-F0-9]{16}|local)_[a-fA-F0-9]{40}|sgp_[a-fA-F0-9]{40})\b(?:[\x60'"\s;]|\\[nr]|$)"""),
    "airtable-personnal-access-token": (["pat"], 0, r"(pat[[:alnum:]]{14}\.[a-f0-9]{64})\b"),
    "cloudflare-origin-ca-key": (["v1.0-"], 0, None),
    "intra42-client-secret": (["s-s4t2ud-", "s-s4t2af-"], 0, None),
}

# Keyed rules whose anchors are not plain keywords of the identifier.
KEYED_ANCHORS = {
    "lob-api-key": ["lob"],
    "lob-pub-api-key": ["lob"],
    "new-relic-browser-api-token": ["new-relic", "newrelic", "new_relic"],
    "new-relic-insert-key": ["new-relic", "newrelic", "new_relic"],
    "new-relic-user-api-key": ["new-relic", "newrelic", "new_relic"],
    "typeform-api-token": ["typeform"],
    "gocardless-api-token": ["gocardless"],
    "nytimes-access-token": ["nytimes", "new-york-times", "newyorktimes"],
}

# Rules of our own, in the same format (not from gitleaks): an AWS secret access key named by a
# credential word, and the account keys of Azure connection strings.
EXTRA = r"""
# Not from gitleaks: Gatehouse's own rules in the same format (the last line: the Azure storage
# emulator's published development key, a documented example like AWS's EXAMPLE key).
keyed	aws-secret-access-key	4	0	secret aws credential creds	(?i)[[:word:].-]{0,50}?(?:secret|aws|credential|creds)(?:[ \t[:word:].-]{0,20})[[:space:]'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)[\x60'"[:space:]=]{0,5}((?-i:[A-Za-z0-9/+]{40}))(?:[\x60'"[:space:];]|\\[nr]|$)
allow	aws-secret-access-key	EXAMPLE
allow	aws-secret-access-key	^[^A-Z]*$
allow	aws-secret-access-key	^[^a-z]*$
allow	aws-secret-access-key	^[^0-9]*$
prefix	azure-storage-account-key	4	0	accountkey= sharedaccesskey=	(?i)(?:AccountKey|SharedAccessKey)=((?-i:[A-Za-z0-9+/]{40,}={0,2}))(?:[;\x60'"[:space:]]|\\[nr]|$)
allow	*	^Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==$
# gitleaks' facebook-access-token and the bare 40-hex form of sourcegraph-access-token fire
# when their keyword is anywhere in a file; here the keyword must come first on the same line.
prefix	facebook-access-token	3	0	facebook	(?i)facebook[^\n]{0,40}?(?-u:\b)([0-9]{15,16}(?:\||%)[0-9a-z\-_]{27,40})(?:[\x60'"[:space:];]|\\[nr]|$)
prefix	sourcegraph-access-token	3	0	sourcegraph	(?i)sourcegraph[^\n]{0,40}?(?-u:\b)([a-f0-9]{40})(?-u:\b)(?:[\x60'"[:space:];]|\\[nr]|$)
"""

def ascii_classes(p):
    """`\\w \\s \\d \\b \\B` as their ASCII meaning (RE2's), in and out of brackets."""
    out, i, depth = [], 0, 0
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            e = p[i + 1]
            inside = depth > 0
            rep = {
                "w": ("[:word:]", "[[:word:]]"), "s": ("[:space:]", "[[:space:]]"),
                "d": ("0-9", "[0-9]"), "b": (None, "(?-u:\\b)"), "B": (None, "(?-u:\\B)"),
            }.get(e)
            if rep and (rep[1 if not inside else 0] is not None):
                out.append(rep[0] if inside else rep[1])
            else:
                out.append(p[i:i + 2])
            i += 2
            continue
        if c == "{" and depth == 0:
            m = re.match(r"\{[0-9]+(,[0-9]*)?\}", p[i:])
            if m:
                out.append(m.group(0)); i += len(m.group(0)); continue
            out.append("\\{"); i += 1; continue
        if c == "}" and depth == 0:
            out.append("\\}"); i += 1; continue
        if c == "[":
            if p.startswith("[:", i) and depth > 0:
                j = p.index(":]", i) + 2
                out.append(p[i:j]); i = j; continue
            depth += 1
            out.append(c); i += 1
            if p.startswith("^", i):
                out.append("^"); i += 1
            if p.startswith("]", i):
                out.append("]"); i += 1
            continue
        if c == "]" and depth > 0:
            depth -= 1
        out.append(c); i += 1
    return "".join(out)

def strip_leading_boundary(p):
    for lead in ("(?i)\\b", "\\b"):
        if p.startswith(lead):
            return lead[:-2] + p[len(lead):]
    return p

def main():
    toml_path, stop_path, out_dir = sys.argv[1:4]
    cfg = tomllib.load(open(toml_path, "rb"))
    lines = [
        "# Ported from gitleaks' default rule set (config/gitleaks.toml), MIT licence,",
        "# Copyright (c) 2019 Zachary Rice; generated by scripts/gitleaks_rules.py.",
        "# kind<TAB>id<TAB>entropy<TAB>back<TAB>anchors (space-separated)<TAB>pattern",
        "# allow|allow_match|allow_line<TAB>id<TAB>pattern; stopwords<TAB>id",
    ]
    skipped = []
    for r in cfg["rules"]:
        rid, rx = r["id"], r.get("regex")
        if rid in SKIP or rx is None or r.get("path"):
            skipped.append((rid, SKIP.get(rid, "path-scoped")))
            continue
        entropy = r.get("entropy", 0)
        kws = r.get("keywords", [])
        if "[\\w.-]{0,50}?" in rx and rid != "atlassian-api-token":
            kind, back = "keyed", 0
            ident = rx.lower()
            anchors = KEYED_ANCHORS.get(rid) or ([k for k in kws if k in ident] if rid != "generic-api-key" else kws) or kws
            pattern = rx
        elif rid == "atlassian-api-token":
            keyed, prefixed = rx.split("|\\b(ATATT3")
            lines.append("\t".join(["keyed", rid, str(entropy), "0", "atlassian confluence jira", ascii_classes(keyed)]))
            kind, back, anchors = "prefix", 0, ["atatt3"]
            pattern = "(ATATT3" + prefixed
        else:
            kind = "prefix"
            anchors, back, pattern = SPECIAL.get(rid, (kws, 0, None))
            pattern = strip_leading_boundary(pattern or rx)
        if not anchors:
            raise SystemExit(f"no anchor for {rid}")
        lines.append("\t".join([kind, rid, str(entropy), str(back), " ".join(anchors), ascii_classes(pattern)]))
        for a in r.get("allowlists", []):
            if a.get("paths"):
                continue
            if a.get("stopwords"):
                lines.append("\t".join(["stopwords", rid]))
            target = {"match": "allow_match", "line": "allow_line"}.get(a.get("regexTarget"), "allow")
            for allow in a.get("regexes", []):
                lines.append("\t".join([target, rid, ascii_classes(allow)]))
    for allow in cfg["allowlist"]["regexes"]:
        lines.append("\t".join(["allow", "*", ascii_classes(allow)]))
    for word in cfg["allowlist"]["stopwords"]:
        lines.append("\t".join(["stopword", "*", word]))
    lines.extend(EXTRA.strip("\n").split("\n"))
    open(f"{out_dir}/secret_rules.tsv", "w").write("\n".join(lines) + "\n")
    words = re.findall(r'"([^"]*)"', open(stop_path).read().split("DefaultStopWords", 1)[1])
    # The generic rule adds one word to the default list.
    words = sorted(set(w.lower() for w in words) | {"6fe4476ee5a1832882e326b506d14126"})
    out, line = ["# gitleaks' generic-rule stopwords (MIT, (c) Zachary Rice), lower case."], ""
    for w in words:
        if len(line) + len(w) + 1 > 99:
            out.append(line); line = ""
        line = f"{line} {w}".strip()
    out.append(line)
    open(f"{out_dir}/secret_stopwords.txt", "w").write("\n".join(out) + "\n")
    for rid, why in skipped:
        print(f"skipped {rid}: {why}", file=sys.stderr)

main()
