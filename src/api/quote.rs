//! The quote page a renewed row links to: `{base}DoQuote/SelectInsuranceNew?Token=…&RenewalToken=…`,
//! and the base URL every endpoint joins under.

use url::Url;

/// The quote page's path under the base URL.
pub const QUOTE_PATH: &str = "DoQuote/SelectInsuranceNew";

/// Makes sure a base URL ends in `/`, so that endpoint paths join under it.
pub fn normalise_base(mut base: Url) -> Url {
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base
}

/// `{base}DoQuote/SelectInsuranceNew?Token=…&RenewalToken=…`, values percent-encoded.
pub fn quote_url(base: &Url, token: &str, renewal_token: &str) -> String {
    QuotePage::new(base).url(token, renewal_token)
}

/// The quote page of one base URL, joined once: a run builds a URL for every renewed row.
#[derive(Debug, Clone)]
pub struct QuotePage {
    /// `{base}DoQuote/SelectInsuranceNew?Token=`: everything before the first value.
    prefix: String,
}

impl QuotePage {
    pub fn new(base: &Url) -> QuotePage {
        let page = normalise_base(base.clone())
            .join(QUOTE_PATH)
            .expect("a constant relative path joins");
        QuotePage {
            prefix: format!("{page}?Token="),
        }
    }

    /// The page for one renewal; values percent-encoded as a form would encode them.
    pub fn url(&self, token: &str, renewal_token: &str) -> String {
        const SECOND: &str = "&RenewalToken=";
        let len =
            self.prefix.len() + form_encoded_len(token) + SECOND.len() + form_encoded_len(renewal_token);
        let mut url = String::with_capacity(len);
        url.push_str(&self.prefix);
        push_form_encoded(&mut url, token);
        url.push_str(SECOND);
        push_form_encoded(&mut url, renewal_token);
        url
    }
}

/// The bytes that form encoding keeps as they are, as `url::form_urlencoded` encodes:
/// letters, digits and `*-._`. A space becomes `+`, any other byte `%XX`.
const FORM_UNCHANGED: [bool; 256] = {
    let mut unchanged = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        unchanged[byte] =
            (byte as u8).is_ascii_alphanumeric() || matches!(byte as u8, b'*' | b'-' | b'.' | b'_');
        byte += 1;
    }
    unchanged
};

fn form_encoded_len(value: &str) -> usize {
    value
        .bytes()
        .map(|byte| {
            if FORM_UNCHANGED[usize::from(byte)] || byte == b' ' {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Appends `value` form-encoded, copying runs of unchanged bytes whole: a value is a token,
/// which has nothing to escape.
fn push_form_encoded(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut rest = value;
    while let Some(at) = rest.bytes().position(|byte| !FORM_UNCHANGED[usize::from(byte)]) {
        // Unchanged bytes are ASCII: `at` starts a char, and the char is changed whole.
        out.push_str(&rest[..at]);
        let char_len = rest[at..].chars().next().map_or(1, char::len_utf8);
        for &byte in &rest.as_bytes()[at..at + char_len] {
            if byte == b' ' {
                out.push('+');
            } else {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
        }
        rest = &rest[at + char_len..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_url_is_encoded_and_joined() {
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            quote_url(&base, "TOK EN&", "R/T+1"),
            "http://127.0.0.1:8080/DoQuote/SelectInsuranceNew?Token=TOK+EN%26&RenewalToken=R%2FT%2B1"
        );
        let nested = Url::parse("http://h/api").unwrap();
        assert!(quote_url(&nested, "T", "R").starts_with("http://h/api/DoQuote/"));
    }

    #[test]
    fn quote_url_encodes_as_url_form_urlencoded_does() {
        let page = QuotePage::new(&Url::parse("http://h:1/base/").unwrap());
        let every_ascii: String = (0..128u8).map(char::from).collect();
        let values = [
            "",
            " ",
            "4773EEC3EE9B572851C11DF730DCE827",
            "a b  c",
            "*-._~!'()%+&=/?#",
            "京J97896 é\u{10FFFF}x",
            "é",
            every_ascii.as_str(),
        ];
        for token in values {
            for renewal_token in values {
                let expected = format!(
                    "http://h:1/base/DoQuote/SelectInsuranceNew?Token={}&RenewalToken={}",
                    url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>(),
                    url::form_urlencoded::byte_serialize(renewal_token.as_bytes()).collect::<String>(),
                );
                let url = page.url(token, renewal_token);
                assert_eq!(url, expected);
                assert_eq!(url.len(), url.capacity(), "the length is worked out exactly");
            }
        }
    }
}
