//! A request path as an application will see it, for policy to match: `/%61dmin//x/../users`
//! is `/admin/users`. Only unreserved characters (RFC 3986: letters, digits, `-._~`) are
//! decoded, so an encoded `/` (`%2F`) stays one segment's text, as most servers keep it.

/// Decodes percent-escapes of unreserved characters, merges repeated slashes and resolves `.`
/// and `..` segments (never above the root). A trailing slash is kept.
pub fn normalize_path(raw: &str) -> String {
    let decoded = decode_unreserved(raw);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = decoded.ends_with('/')
        || decoded.ends_with("/.")
        || decoded.ends_with("/..")
        || decoded == "."
        || decoded == "..";
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    out
}

fn decode_unreserved(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() && raw.is_char_boundary(i + 3) {
            let hex = &raw[i + 1..i + 3];
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(b as char);
                    i += 3;
                    continue;
                }
            }
        }
        // `raw` is UTF-8 (checked by the reader), so its chars are copied whole.
        let c = raw[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    #[test]
    fn paths_are_read_as_the_application_will() {
        for (raw, want) in [
            ("/", "/"),
            ("/admin/users", "/admin/users"),
            ("/%61dmin/users", "/admin/users"),
            ("//admin///users", "/admin/users"),
            ("/x/../admin/", "/admin/"),
            ("/./admin/./users", "/admin/users"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/admin/..", "/"),
            ("/a/%2E%2E/admin", "/admin"),
            ("/a%2Fb", "/a%2Fb"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/100%", "/100%"),
            ("/x%4", "/x%4"),
            ("/ünï", "/ünï"),
        ] {
            assert_eq!(normalize_path(raw), want, "{raw}");
        }
    }
}
