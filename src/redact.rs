//! Showing a URL without its password, so that URLs can be logged and printed.
//! A leaf: the configuration (printing and checking `amqp.urls`) and `amqp`
//! (logging the URL it connects to) both use it, and neither imports the other.

/// Replaces the password of a URL with `***`, even in an invalid one:
/// everything up to the last `@` is user information (a password may hold an
/// unencoded `/`, `#` or `?`), and only the user is kept.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host_and_path)) => {
            let user = userinfo
                .split([':', '/', '?', '#'])
                .next()
                .unwrap_or_default();
            format!("{scheme}://{user}:***@{host_and_path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_forms() {
        assert_eq!(
            redact_url("amqp://g:p@h:5672/%2f"),
            "amqp://g:***@h:5672/%2f"
        );
        assert_eq!(redact_url("amqp://h:5672"), "amqp://h:5672");
        assert_eq!(redact_url("amqp://u@h/"), "amqp://u:***@h/");
        assert_eq!(redact_url("garbage:pw"), "***");
        assert_eq!(
            redact_url("amqp://u:top/secret@h:5672/%2f"),
            "amqp://u:***@h:5672/%2f"
        );
    }
}
