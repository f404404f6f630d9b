//! SPDX license expressions (SPDX 2.3 Annex D) read into the choices they offer.
//!
//! Rego has no recursion, so a nested expression cannot be evaluated in the policy itself. Instead
//! the engine rewrites every expression into disjunctive normal form before evaluation: a list of
//! *choices*, each the set of licenses that must all be acceptable for that choice to be taken.
//! `MIT OR GPL-3.0-only` is `[["MIT"], ["GPL-3.0-only"]]` (either will do), `MIT AND
//! GPL-3.0-only` is `[["GPL-3.0-only", "MIT"]]` (both apply), and a policy accepts a component when
//! one of its choices lies wholly inside its allowlist.
//!
//! Grammar: license ids and `LicenseRef-`/`DocumentRef-…:LicenseRef-` references are runs of
//! letters, digits, `-`, `.`, `:` and a trailing `+`; `id WITH exception` is one license (kept as
//! the text `id WITH exception`); `WITH` binds tighter than `AND`, which binds tighter than `OR`;
//! parentheses group. Operators are matched in any case. Everything is bounded: expression length
//! [`LICENSE_EXPRESSION_MAX_LEN`], nesting [`LICENSE_EXPRESSION_MAX_DEPTH`], and the number of
//! choices [`LICENSE_CHOICES_MAX`] (`(A OR B) AND (C OR D) AND …` doubles at every step).

use std::collections::BTreeSet;

/// Longest expression read, in bytes.
pub const LICENSE_EXPRESSION_MAX_LEN: usize = 1024;
/// Deepest parenthesis nesting read.
pub const LICENSE_EXPRESSION_MAX_DEPTH: usize = 16;
/// Most choices one expression may offer once expanded.
pub const LICENSE_CHOICES_MAX: usize = 64;

/// One way to satisfy an expression: every license in the set applies.
pub type Choice = BTreeSet<String>;

/// Why an expression could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenseError {
    #[error("license expression is empty")]
    Empty,
    #[error("license expression is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("license expression nests parentheses deeper than {max}")]
    TooDeep { max: usize },
    #[error("license expression offers more than {max} choices once expanded")]
    TooManyChoices { max: usize },
    #[error("license expression has an unexpected `{token}` at word {position}")]
    Unexpected { token: String, position: usize },
    #[error("license expression ends early; an operand or `)` is missing")]
    UnexpectedEnd,
    #[error("license expression has `{text}`, which is not a license id")]
    BadId { text: String },
}

/// The choices an SPDX expression offers, sorted and without duplicates.
pub fn choices(expression: &str) -> Result<Vec<Choice>, LicenseError> {
    if expression.len() > LICENSE_EXPRESSION_MAX_LEN {
        return Err(LicenseError::TooLong { len: expression.len(), max: LICENSE_EXPRESSION_MAX_LEN });
    }
    let tokens = tokenize(expression)?;
    if tokens.is_empty() {
        return Err(LicenseError::Empty);
    }
    let mut parser = Parser { tokens, at: 0 };
    let result = parser.or(0)?;
    if let Some(token) = parser.tokens.get(parser.at) {
        return Err(LicenseError::Unexpected { token: token.text(), position: parser.at.saturating_add(1) });
    }
    Ok(normalize(result))
}

/// The choices a component offers: its `license_expression` when it has one; otherwise every
/// entry of its `licenses` applies at once (each read as an expression, or, when it is not one,
/// as an opaque license name such as `Apache License 2.0`). No licenses at all is no choice.
pub fn component_choices(expression: Option<&str>, licenses: &[&str]) -> Result<Vec<Choice>, LicenseError> {
    if let Some(expression) = expression.filter(|e| !e.trim().is_empty()) {
        return choices(expression);
    }
    let mut result: Vec<Choice> = Vec::new();
    for (i, license) in licenses.iter().enumerate() {
        let these = match choices(license) {
            Ok(these) => these,
            Err(LicenseError::TooManyChoices { max }) => return Err(LicenseError::TooManyChoices { max }),
            Err(_) => vec![BTreeSet::from([(*license).to_owned()])],
        };
        result = if i == 0 { these } else { product(&result, &these)? };
    }
    Ok(result)
}

/// Every way to take one choice of `left` and one of `right` together, bounded.
fn product(left: &[Choice], right: &[Choice]) -> Result<Vec<Choice>, LicenseError> {
    let mut product = Vec::new();
    for l in left {
        for r in right {
            if product.len() >= LICENSE_CHOICES_MAX {
                return Err(LicenseError::TooManyChoices { max: LICENSE_CHOICES_MAX });
            }
            product.push(l.union(r).cloned().collect());
        }
    }
    Ok(normalize(product))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    With,
    Id(String),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Open => "(".to_owned(),
            Token::Close => ")".to_owned(),
            Token::And => "AND".to_owned(),
            Token::Or => "OR".to_owned(),
            Token::With => "WITH".to_owned(),
            Token::Id(id) => airlock_model::echo::echo(id),
        }
    }
}

fn tokenize(expression: &str) -> Result<Vec<Token>, LicenseError> {
    let spaced = expression.replace('(', " ( ").replace(')', " ) ");
    spaced
        .split_whitespace()
        .map(|word| match word {
            "(" => Ok(Token::Open),
            ")" => Ok(Token::Close),
            w if w.eq_ignore_ascii_case("AND") => Ok(Token::And),
            w if w.eq_ignore_ascii_case("OR") => Ok(Token::Or),
            w if w.eq_ignore_ascii_case("WITH") => Ok(Token::With),
            w if is_id(w) => Ok(Token::Id(w.to_owned())),
            w => Err(LicenseError::BadId { text: airlock_model::echo::echo(w) }),
        })
        .collect()
}

/// `idstring` of Annex D with the `:` of `DocumentRef-…:LicenseRef-…` and an optional final `+`.
fn is_id(word: &str) -> bool {
    let body = word.strip_suffix('+').unwrap_or(word);
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'))
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        if token.is_some() {
            self.at = self.at.saturating_add(1);
        }
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    /// `or := and ("OR" and)*`
    fn or(&mut self, depth: usize) -> Result<Vec<Choice>, LicenseError> {
        let mut result = self.and(depth)?;
        while self.peek() == Some(&Token::Or) {
            self.next();
            let right = self.and(depth)?;
            result.extend(right);
            result = normalize(result);
            if result.len() > LICENSE_CHOICES_MAX {
                return Err(LicenseError::TooManyChoices { max: LICENSE_CHOICES_MAX });
            }
        }
        Ok(result)
    }

    /// `and := primary ("AND" primary)*`
    fn and(&mut self, depth: usize) -> Result<Vec<Choice>, LicenseError> {
        let mut result = self.primary(depth)?;
        while self.peek() == Some(&Token::And) {
            self.next();
            let right = self.primary(depth)?;
            result = product(&result, &right)?;
        }
        Ok(result)
    }

    /// `primary := "(" or ")" | id ["WITH" id]`
    fn primary(&mut self, depth: usize) -> Result<Vec<Choice>, LicenseError> {
        let position = self.at.saturating_add(1);
        match self.next() {
            Some(Token::Open) => {
                let inner = depth.saturating_add(1);
                if inner > LICENSE_EXPRESSION_MAX_DEPTH {
                    return Err(LicenseError::TooDeep { max: LICENSE_EXPRESSION_MAX_DEPTH });
                }
                let result = self.or(inner)?;
                match self.next() {
                    Some(Token::Close) => Ok(result),
                    Some(other) => Err(LicenseError::Unexpected { token: other.text(), position: self.at }),
                    None => Err(LicenseError::UnexpectedEnd),
                }
            }
            Some(Token::Id(id)) => {
                let license = if self.peek() == Some(&Token::With) {
                    self.next();
                    match self.next() {
                        Some(Token::Id(exception)) => format!("{id} WITH {exception}"),
                        Some(other) => return Err(LicenseError::Unexpected { token: other.text(), position: self.at }),
                        None => return Err(LicenseError::UnexpectedEnd),
                    }
                } else {
                    id
                };
                Ok(vec![BTreeSet::from([license])])
            }
            Some(other) => Err(LicenseError::Unexpected { token: other.text(), position }),
            None => Err(LicenseError::UnexpectedEnd),
        }
    }
}

/// Sorted, without duplicates.
fn normalize(choices: Vec<Choice>) -> Vec<Choice> {
    choices.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(expression: &str, expect: Expect) {
        let actual = match choices(expression) {
            Ok(choices) => choices
                .iter()
                .map(|c| format!("[{}]", c.iter().cloned().collect::<Vec<_>>().join(", ")))
                .collect::<Vec<_>>()
                .join(" | "),
            Err(e) => format!("error: {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn expressions() {
        check("MIT", expect!["[MIT]"]);
        check("MIT OR GPL-3.0-only", expect!["[GPL-3.0-only] | [MIT]"]);
        check("MIT AND GPL-3.0-only", expect!["[GPL-3.0-only, MIT]"]);
        check("MIT OR Apache-2.0 AND GPL-3.0-only", expect!["[Apache-2.0, GPL-3.0-only] | [MIT]"]);
        check("(MIT OR Apache-2.0) AND GPL-3.0-only", expect!["[Apache-2.0, GPL-3.0-only] | [GPL-3.0-only, MIT]"]);
        check(
            "(MIT OR Apache-2.0) AND (BSD-2-Clause OR ISC)",
            expect!["[Apache-2.0, BSD-2-Clause] | [Apache-2.0, ISC] | [BSD-2-Clause, MIT] | [ISC, MIT]"],
        );
        check(
            "GPL-2.0-only WITH Classpath-exception-2.0 OR MIT",
            expect!["[GPL-2.0-only WITH Classpath-exception-2.0] | [MIT]"],
        );
        check("mit or apache-2.0", expect!["[apache-2.0] | [mit]"]);
        check("GPL-2.0+", expect!["[GPL-2.0+]"]);
        check(
            "DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2",
            expect!["[DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2]"],
        );
        check("((MIT))", expect!["[MIT]"]);
        check("MIT AND MIT OR MIT", expect!["[MIT]"]);
    }

    #[test]
    fn components() {
        let show = |e: Option<&str>, l: &[&str]| format!("{:?}", component_choices(e, l));
        assert_eq!(show(Some("MIT OR GPL-3.0-only"), &["MIT", "GPL-3.0-only"]), r#"Ok([{"GPL-3.0-only"}, {"MIT"}])"#);
        assert_eq!(show(None, &["MIT", "Apache License 2.0"]), r#"Ok([{"Apache License 2.0", "MIT"}])"#);
        assert_eq!(show(None, &["MIT OR Apache-2.0", "ISC"]), r#"Ok([{"Apache-2.0", "ISC"}, {"ISC", "MIT"}])"#);
        assert_eq!(show(Some(" "), &[]), "Ok([])");
        assert_eq!(show(Some("MIT OR"), &["MIT"]), "Err(UnexpectedEnd)");
    }

    #[test]
    fn refused() {
        check("", expect!["error: license expression is empty"]);
        check("MIT OR", expect!["error: license expression ends early; an operand or `)` is missing"]);
        check("(MIT", expect!["error: license expression ends early; an operand or `)` is missing"]);
        check("MIT)", expect!["error: license expression has an unexpected `)` at word 2"]);
        check("MIT Apache-2.0", expect!["error: license expression has an unexpected `Apache-2.0` at word 2"]);
        check("AND MIT", expect!["error: license expression has an unexpected `AND` at word 1"]);
        check("MIT WITH", expect!["error: license expression ends early; an operand or `)` is missing"]);
        check("Apache License 2.0/x", expect!["error: license expression has `2.0/x`, which is not a license id"]);
        check(
            &format!("{}MIT{}", "(".repeat(17), ")".repeat(17)),
            expect!["error: license expression nests parentheses deeper than 16"],
        );
        let wide = (0..7).map(|i| format!("(A{i} OR B{i})")).collect::<Vec<_>>().join(" AND ");
        check(&wide, expect!["error: license expression offers more than 64 choices once expanded"]);
        check(&"A OR ".repeat(300), expect!["error: license expression is 1500 bytes long; the limit is 1024"]);
    }
}
