//! HTML forms as a test sees them: the `application/x-www-form-urlencoded` body a browser would
//! send (WHATWG URL Standard §5), and the `value` of a named `<input>` in a page (a CSRF token).

/// Encodes `fields` as an `application/x-www-form-urlencoded` body, byte for byte as a browser
/// does (WHATWG URL Standard §5.2): UTF-8, ASCII letters, digits and `*-._` kept, space as `+`,
/// every other byte as `%XX` in upper case. `[("q", "حظر a&b=c")]` gives
/// `q=%D8%AD%D8%B8%D8%B1+a%26b%3Dc`.
pub fn form_urlencode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(name, &mut out);
        out.push('=');
        encode_component(value, &mut out);
    }
    out
}

fn encode_component(text: &str, out: &mut String) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
}

/// Decodes an `application/x-www-form-urlencoded` string (a body or a query) into (name, value)
/// pairs (WHATWG URL Standard §5.1): `+` is a space, `%XX` a byte, malformed `%` kept as is,
/// invalid UTF-8 replaced by U+FFFD.
pub fn form_urldecode(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `value` attribute of the first `<input>` whose `name` attribute is `name`, with the HTML
/// character references `&amp; &quot; &#39; &apos; &lt; &gt;` and numeric `&#NN;`/`&#xHH;`
/// decoded: how a test reads the CSRF token out of a form. Attributes may come in any order,
/// quoted with `"` or `'` or unquoted. `None` when no such input exists or it has no `value`.
/// This is a scanner for pages the test controls, not an HTML parser: it does not skip comments
/// or `<script>` text.
pub fn form_value(html: &str, name: &str) -> Option<String> {
    // ASCII lower-casing keeps every byte offset, so offsets into `lower` index `html`.
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("<input") {
        let start = from + found + "<input".len();
        from = start;
        if !html[start..].starts_with(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>') {
            continue;
        }
        let attributes = tag_attributes(&html[start..]);
        let value_of = |wanted: &str| attributes.iter().find(|(n, _)| n == wanted).map(|(_, v)| unescape(v));
        if value_of("name").as_deref() == Some(name) {
            return value_of("value");
        }
    }
    None
}

/// The attributes (lower-case name, raw value) of a start tag, from just after its name up to
/// its `>`. Every delimiter is ASCII, so the slices fall on character boundaries.
fn tag_attributes(tag: &str) -> Vec<(String, &str)> {
    let bytes = tag.as_bytes();
    let skip = |mut i: usize, while_: &dyn Fn(u8) -> bool| {
        while i < bytes.len() && while_(bytes[i]) {
            i += 1;
        }
        i
    };
    let mut attributes = Vec::new();
    let mut i = 0;
    loop {
        i = skip(i, &|b| b.is_ascii_whitespace() || b == b'/');
        if i >= bytes.len() || bytes[i] == b'>' {
            return attributes;
        }
        let name_start = i;
        i = skip(i + 1, &|b| !(b.is_ascii_whitespace() || b == b'=' || b == b'>' || b == b'/'));
        let name = tag[name_start..i].to_ascii_lowercase();
        i = skip(i, &|b| b.is_ascii_whitespace());
        let mut value = "";
        if bytes.get(i) == Some(&b'=') {
            i = skip(i + 1, &|b| b.is_ascii_whitespace());
            match bytes.get(i) {
                Some(&quote) if quote == b'"' || quote == b'\'' => {
                    let end = skip(i + 1, &|b| b != quote);
                    value = &tag[i + 1..end];
                    i = (end + 1).min(bytes.len());
                }
                _ => {
                    let end = skip(i, &|b| !(b.is_ascii_whitespace() || b == b'>'));
                    value = &tag[i..end];
                    i = end;
                }
            }
        }
        attributes.push((name, value));
    }
}

/// Decodes the named references `&amp; &quot; &#39; &apos; &lt; &gt;` and numeric ones; any
/// other `&` is kept as is.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let entity = &rest[1..semi];
            let ch = match entity {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                _ => match entity.strip_prefix('#') {
                    Some(hex) if hex.starts_with(['x', 'X']) => {
                        u32::from_str_radix(&hex[1..], 16).ok().and_then(char::from_u32)
                    }
                    Some(decimal) => decimal.parse().ok().and_then(char::from_u32),
                    None => None,
                },
            };
            ch.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((ch, len)) => {
                out.push(ch);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_matches_what_a_browser_sends() {
        let body = form_urlencode(&[("action", "حظر"), ("note", "a&b=c d"), ("k~!*'()", "-._+/%")]);
        assert_eq!(body, "action=%D8%AD%D8%B8%D8%B1&note=a%26b%3Dc+d&k%7E%21*%27%28%29=-._%2B%2F%25");
        let back = form_urldecode(&body);
        assert_eq!(back[0], ("action".to_string(), "حظر".to_string()));
        assert_eq!(back[1], ("note".to_string(), "a&b=c d".to_string()));
        assert_eq!(back[2], ("k~!*'()".to_string(), "-._+/%".to_string()));
        assert_eq!(
            form_urldecode("a=%zz&b&c=%4"),
            [("a".into(), "%zz".into()), ("b".into(), "".into()), ("c".into(), "%4".into())]
        );
    }

    #[test]
    fn form_value_reads_an_input_in_any_attribute_order() {
        let html = r#"<form><INPUT type=hidden Value="t&amp;o&quot;k&#39;&lt;&gt;&#x62;&#1581;" NAME='csrf'>
            <input name="csrf_other" value="no"><input/name=bare value=unquoted>
            <input value='1 > 0' name="q" /><inputx name="fake" value="no"><input name="empty"></form>"#;
        assert_eq!(form_value(html, "csrf").as_deref(), Some("t&o\"k'<>bح"));
        assert_eq!(form_value(html, "bare").as_deref(), Some("unquoted"));
        assert_eq!(form_value(html, "q").as_deref(), Some("1 > 0"));
        assert_eq!(form_value(html, "fake"), None);
        assert_eq!(form_value(html, "empty"), None);
        assert_eq!(form_value(html, "missing"), None);
        assert_eq!(form_value("<input name=\"cut\" value=\"unterminated", "cut").as_deref(), Some("unterminated"));
        assert_eq!(unescape("a & b &amp c &unknown; &#xZZ;"), "a & b &amp c &unknown; &#xZZ;");
    }
}
