//! What kind of address an event came from: whether a principal that always calls from inside
//! the network suddenly calls from the internet is a question of class, not of the exact address.

use std::net::IpAddr;

/// The class of a source address (CloudTrail `sourceIPAddress`, an agent's `source_ip`).
pub fn address_class(address: Option<&str>) -> &'static str {
    let Some(text) = address.map(str::trim).filter(|a| !a.is_empty()) else {
        return "none";
    };
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_loopback() => "loopback",
        Ok(IpAddr::V4(ip)) if ip.is_private() => "private",
        Ok(IpAddr::V4(ip)) if ip.is_link_local() => "link-local",
        Ok(IpAddr::V4(_)) => "public-v4",
        Ok(IpAddr::V6(ip)) if ip.is_loopback() => "loopback",
        // fc00::/7, unique local.
        Ok(IpAddr::V6(ip)) if ip.segments()[0] & 0xfe00 == 0xfc00 => "private",
        // fe80::/10.
        Ok(IpAddr::V6(ip)) if ip.segments()[0] & 0xffc0 == 0xfe80 => "link-local",
        Ok(IpAddr::V6(_)) => "public-v6",
        // CloudTrail puts a service's name here when a service acted (`ec2.amazonaws.com`).
        Err(_) if text.ends_with(".amazonaws.com") || text == "AWS Internal" => "aws-service",
        Err(_) => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        for (address, class) in [
            (None, "none"),
            (Some("127.0.0.1"), "loopback"),
            (Some("10.1.2.3"), "private"),
            (Some("172.20.0.9"), "private"),
            (Some("192.168.1.1"), "private"),
            (Some("169.254.169.254"), "link-local"),
            (Some("203.0.113.7"), "public-v4"),
            (Some("::1"), "loopback"),
            (Some("fd12:3456::1"), "private"),
            (Some("fe80::1"), "link-local"),
            (Some("2001:db8::1"), "public-v6"),
            (Some("ec2.amazonaws.com"), "aws-service"),
            (Some("AWS Internal"), "aws-service"),
            (Some("not an address"), "other"),
        ] {
            assert_eq!(address_class(address), class, "{address:?}");
        }
    }
}
