//! What kind of client made a CloudTrail call, from its `userAgent`: a handful of families, so
//! that a principal's usual tool and a rare one can be told apart without every version string
//! being a value of its own.

/// The family of a CloudTrail `userAgent`.
pub fn client_family(user_agent: Option<&str>) -> &'static str {
    let Some(ua) = user_agent.map(str::trim).filter(|u| !u.is_empty()) else {
        return "none";
    };
    let lower = ua.to_ascii_lowercase();
    if lower == "aws internal"
        || lower.contains("console.amazonaws.com")
        || lower.contains("signin.amazonaws.com")
    {
        "console"
    } else if lower.starts_with("aws-cli") {
        "aws-cli"
    } else if lower.contains("boto3") || lower.contains("botocore") {
        "boto"
    } else if lower.starts_with("aws-sdk-") || lower.contains(" aws-sdk-") {
        "aws-sdk"
    } else if lower.contains("terraform") {
        "terraform"
    } else if lower.ends_with(".amazonaws.com") {
        "aws-service"
    } else if lower.starts_with("mozilla/") {
        "browser"
    } else if lower.contains("curl/")
        || lower.contains("python-requests")
        || lower.contains("go-http-client")
    {
        "http-library"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        for (ua, family) in [
            (None, "none"),
            (Some("  "), "none"),
            (Some("AWS Internal"), "console"),
            (Some("signin.amazonaws.com"), "console"),
            (
                Some("aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64"),
                "aws-cli",
            ),
            (
                Some("Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux"),
                "boto",
            ),
            (
                Some("aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21"),
                "aws-sdk",
            ),
            (Some("APN/1.0 HashiCorp/1.0 Terraform/1.6.0"), "terraform"),
            (Some("ec2.amazonaws.com"), "aws-service"),
            (Some("Mozilla/5.0 (X11; Linux x86_64)"), "browser"),
            (Some("curl/8.5.0"), "http-library"),
            (Some("evil-scanner/0.1"), "other"),
        ] {
            assert_eq!(client_family(ua), family, "{ua:?}");
        }
    }
}
