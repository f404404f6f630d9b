//! How user input is quoted back in error messages: bounded and on one line.

/// Longest user input echoed back in an error message, in characters.
pub const ECHO_MAX: usize = 160;

/// `input` cut to [`ECHO_MAX`] characters, with control characters escaped, so an error message
/// stays one short line whatever a client sent.
pub fn echo(input: &str) -> String {
    let mut out = String::with_capacity(input.len().min(ECHO_MAX));
    for (i, c) in input.chars().enumerate() {
        if i >= ECHO_MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::echo;

    #[test]
    fn echo_is_one_bounded_line() {
        assert_eq!(echo("a\r\nb"), "a\\r\\nb");
        assert_eq!(echo(&"x".repeat(500)).chars().count(), 161);
        assert_eq!(echo("plain"), "plain");
    }
}
