//! Form bodies: `application/x-www-form-urlencoded` fields, and the text parts of
//! `multipart/form-data` (file parts that are not text are left out).

use std::collections::BTreeMap;

/// Text fields and text contents found in a form body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FormText {
    /// Field name → value.
    pub fields: BTreeMap<String, String>,
    /// Every text value, in order (including text files).
    pub texts: Vec<String>,
}

/// Parses `body` according to `content_type`; empty for other types.
pub fn parse(content_type: &str, body: &[u8]) -> FormText {
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("application/x-www-form-urlencoded") {
        let fields = crate::policy::fields_of(body);
        let texts = fields.values().cloned().collect();
        return FormText { fields, texts };
    }
    if lower.starts_with("multipart/form-data")
        && let Some(boundary) = boundary(content_type)
    {
        return multipart(body, &boundary);
    }
    FormText::default()
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

fn multipart(body: &[u8], boundary: &str) -> FormText {
    let delimiter = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut form = FormText::default();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let head_lower = head.to_ascii_lowercase();
        let is_text = match head_lower
            .lines()
            .find_map(|l| l.strip_prefix("content-type:"))
        {
            Some(kind) => {
                kind.trim().starts_with("text/") || kind.trim().starts_with("application/json")
            }
            None => true,
        };
        if !is_text {
            continue;
        }
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .and_then(|l| l.split(';').find_map(|p| p.trim().strip_prefix("name=")))
            .map(|n| n.trim_matches('"').to_string());
        if let Some(name) = name {
            form.fields.insert(name, content.to_string());
        }
        form.texts.push(content.to_string());
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_and_multipart_table() {
        let url = parse(
            "application/x-www-form-urlencoded; charset=utf-8",
            b"amount=5000&note=hi+there",
        );
        assert_eq!(url.fields["amount"], "5000");
        assert_eq!(url.fields["note"], "hi there");
        let repeated = parse("application/x-www-form-urlencoded", b"amount=5&amount=5000");
        assert_eq!(repeated.fields["amount"], "5, 5000");

        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\nContent-Type: text/plain\r\n\r\n{\"prompt\": \"x\"}\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\u{89}PNG\r\n\
                    --XyZ--\r\n";
        let multi = parse("multipart/form-data; boundary=\"XyZ\"", body.as_bytes());
        assert_eq!(multi.fields["purpose"], "fine-tune");
        assert_eq!(multi.fields["file"], "{\"prompt\": \"x\"}");
        assert!(
            !multi.fields.contains_key("image"),
            "binary parts are left out"
        );
        assert_eq!(multi.texts.len(), 2);

        assert_eq!(
            parse("application/octet-stream", b"a=b"),
            FormText::default()
        );
    }
}
