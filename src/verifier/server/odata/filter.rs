//! OData `$filter` syntax: a hand-written recursive-descent parser for the subset the admin API
//! evaluates (comparisons, `in`, `startswith`, `not`, `and`/`or`, parentheses, and the `any`
//! lambda over a string collection). Syntax only: which property takes which operator is
//! [`super::eval`]'s to check.

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Int(i64),
    Bool(bool),
    Null,
    DateTime(OffsetDateTime),
}

/// What the `any` lambda tests each member of the collection with.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyTest {
    Eq(String),
    StartsWith(String),
}

/// A parsed filter expression; paths are `/`-separated property names.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        path: String,
        op: Op,
        value: Literal,
    },
    In {
        path: String,
        values: Vec<Literal>,
    },
    /// `startswith(path, 'prefix')`; `endswith` is parsed so that it can be refused by name.
    Function {
        name: String,
        path: String,
        argument: Literal,
    },
    Any {
        path: String,
        test: AnyTest,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    /// A bare number, date or date-time.
    Bare(String),
    Open,
    Close,
    Comma,
    Slash,
    Colon,
}

fn lex(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' | '/' | ':' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    ',' => Token::Comma,
                    '/' => Token::Slash,
                    _ => Token::Colon,
                });
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        // '' is one quote inside a literal.
                        Some((_, '\'')) if chars.peek().map(|&(_, c)| c) == Some('\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, c)) => text.push(c),
                        None => return Err(format!("the string starting at {at} is not closed")),
                    }
                }
                tokens.push(Token::Text(text));
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '$' => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.' {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut bare = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+') {
                        bare.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Bare(bare));
            }
            other => return Err(format!("unexpected character '{other}' at {at}")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

/// Parses a whole `$filter` value.
pub fn parse(input: &str) -> Result<Expr, String> {
    let mut parser = Parser {
        tokens: lex(input)?,
        at: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(format!(
            "unexpected {} after the expression",
            describe(token)
        )),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) | Token::Bare(w) => format!("'{w}'"),
        Token::Text(t) => format!("'{}'", t.replace('\'', "''")),
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
        Token::Comma => "','".into(),
        Token::Slash => "'/'".into(),
        Token::Colon => "':'".into(),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect(&mut self, wanted: Token) -> Result<(), String> {
        match self.next() {
            Some(token) if token == wanted => Ok(()),
            Some(token) => Err(format!(
                "expected {} but found {}",
                describe(&wanted),
                describe(&token)
            )),
            None => Err(format!(
                "expected {} but the expression ended",
                describe(&wanted)
            )),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.next();
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.next();
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("not") {
            self.next();
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.next();
            let inner = self.or()?;
            self.expect(Token::Close)?;
            return Ok(inner);
        }
        self.term()
    }

    /// A comparison, `in`, a function call or an `any` lambda.
    fn term(&mut self) -> Result<Expr, String> {
        let first = match self.next() {
            Some(Token::Word(w)) => w,
            Some(token) => return Err(format!("expected a property, found {}", describe(&token))),
            None => return Err("the expression ended early".into()),
        };
        if self.peek() == Some(&Token::Open) {
            self.next();
            let path = self.path()?;
            self.expect(Token::Comma)?;
            let argument = self.literal()?;
            self.expect(Token::Close)?;
            return Ok(Expr::Function {
                name: first.to_ascii_lowercase(),
                path,
                argument,
            });
        }
        let mut path = first;
        while self.peek() == Some(&Token::Slash) {
            self.next();
            match self.next() {
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("any") => {
                    return self.any(path);
                }
                Some(Token::Word(w)) => {
                    path.push('/');
                    path.push_str(&w);
                }
                _ => return Err(format!("'{path}/' must be followed by a property name")),
            }
        }
        match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => {
                self.expect(Token::Open)?;
                let mut values = vec![self.literal()?];
                while self.peek() == Some(&Token::Comma) {
                    self.next();
                    values.push(self.literal()?);
                }
                self.expect(Token::Close)?;
                Ok(Expr::In { path, values })
            }
            Some(Token::Word(w)) => match Op::parse(&w) {
                Some(op) => Ok(Expr::Compare {
                    path,
                    op,
                    value: self.literal()?,
                }),
                None => Err(format!("'{w}' is not an operator")),
            },
            Some(token) => Err(format!(
                "expected an operator after '{path}', found {}",
                describe(&token)
            )),
            None => Err(format!("expected an operator after '{path}'")),
        }
    }

    fn path(&mut self) -> Result<String, String> {
        let mut path = match self.next() {
            Some(Token::Word(w)) => w,
            _ => return Err("expected a property name".into()),
        };
        while self.peek() == Some(&Token::Slash) {
            self.next();
            match self.next() {
                Some(Token::Word(w)) => {
                    path.push('/');
                    path.push_str(&w);
                }
                _ => return Err(format!("'{path}/' must be followed by a property name")),
            }
        }
        Ok(path)
    }

    /// `any(x: x eq 'v')` or `any(x: startswith(x, 'v'))`, after `path/any`.
    fn any(&mut self, path: String) -> Result<Expr, String> {
        self.expect(Token::Open)?;
        let var = match self.next() {
            Some(Token::Word(w)) => w,
            _ => return Err("any() needs a variable: any(x: x eq '...')".into()),
        };
        self.expect(Token::Colon)?;
        let is_var = |token: Option<Token>| matches!(token, Some(Token::Word(w)) if w == var);
        let test = match self.next() {
            Some(Token::Word(w)) if w == var => {
                if !self.peek_word("eq") {
                    return Err(format!(
                        "inside any(), only '{var} eq' and startswith({var}, ...) are supported"
                    ));
                }
                self.next();
                AnyTest::Eq(self.text()?)
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("startswith") => {
                self.expect(Token::Open)?;
                if !is_var(self.next()) {
                    return Err(format!("startswith inside any() must test '{var}'"));
                }
                self.expect(Token::Comma)?;
                let prefix = self.text()?;
                self.expect(Token::Close)?;
                AnyTest::StartsWith(prefix)
            }
            _ => {
                return Err(format!(
                    "inside any(), only '{var} eq' and startswith({var}, ...) are supported"
                ))
            }
        };
        self.expect(Token::Close)?;
        Ok(Expr::Any { path, test })
    }

    fn text(&mut self) -> Result<String, String> {
        match self.literal()? {
            Literal::Text(text) => Ok(text),
            _ => Err("expected a string literal ('...')".into()),
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Literal::Text(text)),
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Ok(Literal::Bool(true)),
                "false" => Ok(Literal::Bool(false)),
                "null" => Ok(Literal::Null),
                _ => Err(format!("'{w}' is not a value; strings are quoted: '{w}'")),
            },
            Some(Token::Bare(bare)) => bare_literal(&bare),
            Some(token) => Err(format!("expected a value, found {}", describe(&token))),
            None => Err("expected a value, but the expression ended".into()),
        }
    }
}

/// An integer, an RFC 3339 date-time, or a date (midnight UTC).
fn bare_literal(bare: &str) -> Result<Literal, String> {
    if let Ok(n) = bare.parse::<i64>() {
        return Ok(Literal::Int(n));
    }
    if let Ok(at) = OffsetDateTime::parse(bare, &Rfc3339) {
        return Ok(Literal::DateTime(at));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = Date::parse(bare, &date_format) {
        return Ok(Literal::DateTime(date.midnight().assume_utc()));
    }
    Err(format!(
        "'{bare}' is not a number, an RFC 3339 date-time or a date"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(path: &str, op: Op, value: Literal) -> Expr {
        Expr::Compare {
            path: path.into(),
            op,
            value,
        }
    }

    #[test]
    fn comparisons_and_quotes() {
        assert_eq!(
            parse("userPrincipalName eq 'o''brien@w.com'").unwrap(),
            cmp(
                "userPrincipalName",
                Op::Eq,
                Literal::Text("o'brien@w.com".into())
            )
        );
        assert_eq!(
            parse("status/errorCode NE 0").unwrap(),
            cmp("status/errorCode", Op::Ne, Literal::Int(0))
        );
        assert_eq!(
            parse("displayName eq null").unwrap(),
            cmp("displayName", Op::Eq, Literal::Null)
        );
        let Expr::Compare {
            value: Literal::DateTime(at),
            ..
        } = parse("createdDateTime ge 2026-01-02").unwrap()
        else {
            panic!()
        };
        assert_eq!(at.unix_timestamp(), 1_767_312_000);
        assert!(matches!(
            parse("createdDateTime lt 2026-01-02T03:04:05.5Z").unwrap(),
            Expr::Compare {
                op: Op::Lt,
                value: Literal::DateTime(_),
                ..
            }
        ));
    }

    #[test]
    fn precedence_parentheses_and_not() {
        // and binds tighter than or.
        let Expr::Or(left, right) = parse("id eq 'a' or id eq 'b' and id eq 'c'").unwrap() else {
            panic!()
        };
        assert_eq!(*left, cmp("id", Op::Eq, Literal::Text("a".into())));
        assert!(matches!(*right, Expr::And(..)));
        let Expr::And(left, _) = parse("(id eq 'a' or id eq 'b') and id eq 'c'").unwrap() else {
            panic!()
        };
        assert!(matches!(*left, Expr::Or(..)));
        assert!(matches!(
            parse("not(startswith(displayName,'x'))").unwrap(),
            Expr::Not(_)
        ));
    }

    #[test]
    fn in_functions_and_lambdas() {
        assert_eq!(
            parse("id in ('x', 'y')").unwrap(),
            Expr::In {
                path: "id".into(),
                values: vec![Literal::Text("x".into()), Literal::Text("y".into())]
            }
        );
        assert_eq!(
            parse("startsWith(userPrincipalName,'a')").unwrap(),
            Expr::Function {
                name: "startswith".into(),
                path: "userPrincipalName".into(),
                argument: Literal::Text("a".into())
            }
        );
        assert_eq!(
            parse("authorizationInfo/certificateUserIds/any(x:x eq 'X509:<PN>a@w.com')").unwrap(),
            Expr::Any {
                path: "authorizationInfo/certificateUserIds".into(),
                test: AnyTest::Eq("X509:<PN>a@w.com".into())
            }
        );
        assert_eq!(
            parse("authorizationInfo/certificateUserIds/any(c: startswith(c, 'X509:<SKI>'))")
                .unwrap(),
            Expr::Any {
                path: "authorizationInfo/certificateUserIds".into(),
                test: AnyTest::StartsWith("X509:<SKI>".into())
            }
        );
    }

    #[test]
    fn malformed_filters_are_named() {
        for (input, says) in [
            ("userPrincipalName eq 'open", "not closed"),
            ("userPrincipalName eq", "ended"),
            ("userPrincipalName like 'a'", "'like' is not an operator"),
            ("id eq 'a' garbage", "after the expression"),
            ("(id eq 'a'", "expected ')'"),
            ("id eq alice", "strings are quoted"),
            ("x/any(y: z eq 'a')", "only 'y eq'"),
            ("x/any(y: y ne 'a')", "only 'y eq'"),
            ("id eq 2026-13-45", "not a number"),
            ("id eq 'a' # b", "unexpected character"),
        ] {
            let error = parse(input).unwrap_err();
            assert!(error.contains(says), "{input}: {error}");
        }
    }
}
