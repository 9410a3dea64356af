#!/usr/bin/env bash
# Writes the seed inputs of every fuzz target into fuzz/corpus/<target> (kept out of git): one file
# per seed, in the layout the target reads. Run from the repository root before `cargo fuzz run`.
set -euo pipefail
cd "$(dirname "$0")"
seed() { mkdir -p "corpus/$1"; printf '%b' "$3" > "corpus/$1/$2"; }

# request_body: line 1 Content-Type, line 2 Content-Encoding, then the body.
seed request_body json 'application/json\n\n{"model":"gpt-4o","messages":[{"role":"user","content":"mail jane@example.com, card 4111 1111 1111 1111"}],"jane@example.com":1}'
seed request_body form 'application/x-www-form-urlencoded\n\nSSN+078-05-1121+card+4111+1111+1111+1111=&q=x'
seed request_body multipart 'multipart/form-data; boundary=XyZ\n\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n{"a":"jane@example.com"}\n\r\n--XyZ--\r\n'
seed request_body mixed 'multipart/mixed; boundary=b\n\n--b\r\nContent-Type: text/plain; charset=utf-16le\r\nContent-Transfer-Encoding: base64\r\n\r\nagBhAG4AZQBAAGUAeAAuAGMAbwBtAA==\r\n--b--\r\n'
seed request_body utf16 'text/plain; charset=utf-16\n\n\xff\xfej\x00a\x00n\x00e\x00@\x00e\x00x\x00.\x00c\x00o\x00m\x00'
seed request_body fullwidth 'text/plain\n\n\xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91 1111 1111 1111'
seed request_body sql 'application/json\n\n{"query":"DO $$BEGIN DELETE FROM users; END$$"}'
seed request_body gzip 'application/json\ngzip\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xabV\xcaM\xcc\xccQ\xb2RJ\xcdM\xcc\xcc\xd1\x01\x00\xa1\x9c\x0b\xd2\x10\x00\x00\x00'
# sql: SQL text (also read as a PostgREST path?query).
seed sql explain 'EXPLAIN ANALYZE DELETE FROM users WHERE id = 1'
seed sql cte 'WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone'
seed sql do 'DO $$BEGIN DELETE FROM users; END$$'
seed sql mysql "SELECT 'x\\\\''; DELETE FROM users; -- '"
seed sql upsert 'INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2'
seed sql postgrest 'customers?select=*,users(*)&id=gt.0'
# config_load: a config and a policy file.
mkdir -p corpus/config_load
cp ../config/gatehouse.yaml corpus/config_load/gatehouse.yaml
for f in ../config/policies/*.yaml ../config/templates/*.yaml; do cp "$f" "corpus/config_load/$(basename "$f")"; done
# request_head: line 1 CONNECT authority, line 2 request target, line 3 path.
seed request_head numeric '0x08080808:443\nhttp://134744072/x\n/a/b'
seed request_head dotted '8.8.2056:443\nhttp://[::ffff:127.0.0.1]:80/\n/a//b'
seed request_head trailing '0.10.0.10.:443\nhttps://EXAMPLE.com./p?q\n/%2e%2e/x'
seed request_head v6 '[64:ff9b::a00:1]:443\nhttp://[fe80::1%25eth0]/\n/'
# scan: any text; JSON documents are walked too. One seed per kind of the detectors.
seed scan prose 'Mail jane@example.com or call +44 20 7946 0958, Tel. 030 1234567, card 4111 1111 1111 1111.'
seed scan ids 'DNI 12.345.678-Z, BSN 1234.56.782, PESEL 44051401359, CPR 010180-1234, AMKA 01018012345, NINO ab 12 34 56 c'
seed scan secrets 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY" AKIAZ7Q3MD4XW2PLH5RK ghp_0123456789abcdefghijklmnopqrstuvwxyz'
seed scan json '{"messages":[{"content":"jane\\u0040example.com"}],"tool":{"arguments":"{\\"to\\": \\"bob@example.org\\"}"},"n":5555555555554444}'
seed scan folded '\xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91 1111 1111 1111 caf\xc3\xa9 ja\xe2\x80\x8bne@example.com'
# json_text: any bytes; JSON documents are written again.
seed json_text doc '{"b":[1,-2.5e-7,true,null],"a":"q\\"\\\\\\u0001\\n\\u00e9"}'
seed json_text text 'line one\n\ttab \\ "quote" \x01 caf\xc3\xa9'
# redact_restore: first byte the chunk size, then the text.
seed redact_restore mixed '\x07Mail jane@example.com, +44 20 7946 0958, IBAN DE89 3704 0044 0532 0130 00, card 4111 1111 1111 1111'
seed redact_restore ids '\x03SSN 078-05-1121, NIR 1 85 05 78 006 084 36, DNI x1234567l, NO 01018012345'
# redact_noted: line 1 path?query, then header lines, an empty line, then the body.
seed redact_noted json '/v1/chat?to=jane%40example.com\nx-note: mail bob@example.org\nreferer: https://a.example/?m=jane%40example.com\nx-4111111111111111: y\n\n{"messages":[{"role":"user","content":"card 4111 1111 1111 1111"}],"jane@example.com":1}'
seed redact_noted text '/u/jane%40example.com\ncontent-type: text/plain; a@b.example\n\ncall +44 20 7946 0958'
# meter: byte 0 the dialect (mod 3) and the chunk size, then an answer.
seed meter openai '\x00{"id":"x","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}}}'
seed meter responses '\x03{"type":"response.completed","response":{"model":"o3","status":"completed","usage":{"input_tokens":7,"output_tokens":3}}}'
seed meter anthropic '\x01{"type":"message","model":"claude","stop_reason":"end_turn","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":9,"cache_read_input_tokens":2,"output_tokens":1}}'
seed meter gemini '\x02{"modelVersion":"gemini-2.0-flash","candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":2,"thoughtsTokenCount":1}}'
