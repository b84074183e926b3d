//! Mark expressions, as in pytest's `-m`: `chart_deploy and not quarantine`,
//! `(no_deploy or kafka) and not slow`. A case's tier counts as one of its marks.

use std::fmt;

/// A parsed mark expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkExpr {
    /// True when the case carries this mark.
    Mark(String),
    /// Negation.
    Not(Box<MarkExpr>),
    /// Both sides hold.
    And(Box<MarkExpr>, Box<MarkExpr>),
    /// Either side holds.
    Or(Box<MarkExpr>, Box<MarkExpr>),
}

/// Why a mark expression does not parse; `at` is a character offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {} of {expr:?}", at + 1)]
pub struct MarkExprError {
    expr: String,
    at: usize,
    message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl MarkExpr {
    /// Parses `text`.
    ///
    /// # Errors
    /// An empty expression, an unknown character, a missing operand or parenthesis.
    pub fn parse(text: &str) -> Result<Self, MarkExprError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            text,
            tokens,
            pos: 0,
        };
        let expr = parser.or()?;
        match parser.tokens.get(parser.pos) {
            None => Ok(expr),
            Some((at, t)) => {
                Err(parser.error(*at, format!("unexpected {t:?} after a complete expression")))
            }
        }
    }

    /// Evaluates the expression against a case's marks (its tier included).
    pub fn matches<S: AsRef<str>>(&self, marks: &[S]) -> bool {
        match self {
            MarkExpr::Mark(m) => marks.iter().any(|x| x.as_ref() == m),
            MarkExpr::Not(e) => !e.matches(marks),
            MarkExpr::And(a, b) => a.matches(marks) && b.matches(marks),
            MarkExpr::Or(a, b) => a.matches(marks) || b.matches(marks),
        }
    }
}

impl fmt::Display for MarkExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarkExpr::Mark(m) => f.write_str(m),
            MarkExpr::Not(e) => write!(f, "not {e}"),
            MarkExpr::And(a, b) => write!(f, "({a} and {b})"),
            MarkExpr::Or(a, b) => write!(f, "({a} or {b})"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, MarkExprError> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            tokens.push((i, if c == '(' { Token::Open } else { Token::Close }));
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '-' | '.'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let token = match word.as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                _ => Token::Ident(word),
            };
            tokens.push((start, token));
        } else {
            return Err(MarkExprError {
                expr: text.to_owned(),
                at: i,
                message: format!("unexpected character {c:?} (marks are words joined by and, or, not and parentheses)"),
            });
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, Token)>,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, at: usize, message: String) -> MarkExprError {
        MarkExprError {
            expr: self.text.to_owned(),
            at,
            message,
        }
    }

    fn eat(&mut self, token: &Token) -> bool {
        let hit = self.tokens.get(self.pos).is_some_and(|(_, t)| t == token);
        self.pos += usize::from(hit);
        hit
    }

    fn or(&mut self) -> Result<MarkExpr, MarkExprError> {
        let mut left = self.and()?;
        while self.eat(&Token::Or) {
            left = MarkExpr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<MarkExpr, MarkExprError> {
        let mut left = self.not()?;
        while self.eat(&Token::And) {
            left = MarkExpr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<MarkExpr, MarkExprError> {
        if self.eat(&Token::Not) {
            return Ok(MarkExpr::Not(Box::new(self.not()?)));
        }
        let end = self.text.chars().count();
        match self.tokens.get(self.pos).cloned() {
            Some((_, Token::Ident(m))) => {
                self.pos += 1;
                Ok(MarkExpr::Mark(m))
            }
            Some((at, Token::Open)) => {
                self.pos += 1;
                let inner = self.or()?;
                if self.eat(&Token::Close) {
                    Ok(inner)
                } else {
                    Err(self.error(at, "unclosed parenthesis".into()))
                }
            }
            Some((at, t)) => Err(self.error(at, format!("expected a mark, found {t:?}"))),
            None => Err(self.error(end, "expected a mark, found the end".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("no_deploy", &["no_deploy"], true)]
    #[case("no_deploy", &["chart_deploy"], false)]
    #[case("chart_deploy and not quarantine", &["chart_deploy"], true)]
    #[case("chart_deploy and not quarantine", &["chart_deploy", "quarantine"], false)]
    #[case("not not quarantine", &["quarantine"], true)]
    #[case("a or b and c", &["a"], true)]
    #[case("(a or b) and c", &["a"], false)]
    #[case("(a or b) and c", &["b", "c"], true)]
    #[case("full-stack.kafka", &["full-stack.kafka"], true)]
    fn expressions_select_as_pytest_does(
        #[case] expr: &str,
        #[case] marks: &[&str],
        #[case] expected: bool,
    ) {
        assert_eq!(
            MarkExpr::parse(expr).unwrap().matches(marks),
            expected,
            "{expr} on {marks:?}"
        );
    }

    #[rstest]
    #[case("", "expected a mark, found the end at column 1")]
    #[case("a and", "expected a mark, found the end at column 6")]
    #[case("(a or b", "unclosed parenthesis at column 1")]
    #[case(
        "a b",
        "unexpected Ident(\"b\") after a complete expression at column 3"
    )]
    #[case("a && b", "unexpected character '&'")]
    fn broken_expressions_say_where(#[case] expr: &str, #[case] expected: &str) {
        let err = MarkExpr::parse(expr).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{err}");
    }
}
