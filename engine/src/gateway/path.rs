//! A request path as an application will see it, for policy to match: `/%61dmin//x/../users`
//! is `/admin/users`. Servers differ, so the reading is the widest of the common ones: escapes
//! of unreserved characters (RFC 3986: letters, digits, `-._~`) and of `/` are decoded (nginx
//! decodes `%2F` into a separator), `;parameters` are cut from each segment (Tomcat and Spring
//! route `/admin;x/users` to `/admin/users`), `.` and `..` segments are resolved and repeated
//! slashes merged. A path no reading can be sure of, one with a backslash (some servers take
//! it for `/`) or a NUL, is refused.

use super::GatewayError;

/// The path policy matches, or why the path is refused. A trailing slash is kept.
pub fn normalize_path(raw: &str) -> Result<String, GatewayError> {
    let decoded = decode(raw);
    if decoded.contains('\\') || decoded.contains('\0') || has_escape(&decoded, &["5C", "00"]) {
        return Err(GatewayError::AmbiguousPath(raw.to_owned()));
    }
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = decoded.split('/').collect();
    for part in &parts {
        // `a;jsessionid=1` is the segment `a`; `..;x` is `..`.
        let segment = part.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let last = parts.last().map(|p| p.split(';').next().unwrap_or(""));
    let trailing = matches!(last, Some("" | "." | ".."));
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    Ok(out)
}

/// Whether `s` holds a `%` escape of one of `hex` (upper-case pairs), in either case.
fn has_escape(s: &str, hex: &[&str]) -> bool {
    s.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && hex
                .iter()
                .any(|h| h.as_bytes().eq_ignore_ascii_case(&w[1..]))
    })
}

fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() && raw.is_char_boundary(i + 3) {
            if let Ok(b) = u8::from_str_radix(&raw[i + 1..i + 3], 16) {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
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
            ("/a/%2e%2E/admin", "/admin"),
            ("/admin%2Fusers", "/admin/users"),
            ("/public/..%2fadmin/users", "/admin/users"),
            ("/admin;x/users", "/admin/users"),
            ("/x/..;/admin/", "/admin/"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/100%", "/100%"),
            ("/x%4", "/x%4"),
            ("/ünï", "/ünï"),
        ] {
            assert_eq!(normalize_path(raw).unwrap(), want, "{raw}");
        }
        for ambiguous in ["/x\\..\\admin", "/x%5C..%5cadmin", "/a%00b"] {
            assert!(normalize_path(ambiguous).is_err(), "{ambiguous}");
        }
        // An escaped percent is text: "%2500" is the characters "%00", not a NUL.
        assert_eq!(normalize_path("/a%2500").unwrap(), "/a%2500");
    }
}
