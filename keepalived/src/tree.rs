//! The token stream as a tree of statements and blocks.
//!
//! keepalived puts every `{` and `}` on a line of its own (`read_line`'s
//! residue) and then lets a `{` open the block of the statement just before
//! it, on the same line or the next. The same rule here: a statement followed
//! by `{` owns the block up to the matching `}`. A `{` after no statement, a
//! `}` with no open block, and a block still open at the end are refused,
//! naming the line.

use crate::reader::{Pos, Token};
use crate::Error;

/// A statement: its words (the keyword first) and its block, if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub at: Pos,
    pub words: Vec<String>,
    pub block: Option<Vec<Node>>,
}

impl Node {
    /// The keyword: the statement's first word.
    pub fn keyword(&self) -> &str {
        &self.words[0]
    }
}

/// Builds the tree of a whole configuration.
pub fn build(tokens: Vec<(Pos, Token)>) -> Result<Vec<Node>, Error> {
    // Each level: the statements so far and the statement that opened it.
    let mut stack: Vec<(Vec<Node>, Option<Node>)> = vec![(Vec::new(), None)];
    let mut last_file = None;
    for (at, token) in tokens {
        last_file = Some(at.clone());
        match token {
            Token::Words(words) => stack.last_mut().expect("the top level is never popped").0.push(Node {
                at,
                words,
                block: None,
            }),
            Token::Open => {
                let level = &mut stack.last_mut().expect("the top level is never popped").0;
                match level.pop() {
                    Some(owner) if owner.block.is_none() => stack.push((Vec::new(), Some(owner))),
                    other => {
                        level.extend(other);
                        return Err(at.error("Unexpected '{'"));
                    }
                }
            }
            Token::Close => {
                if stack.len() == 1 {
                    return Err(at.error("Extra '}' found"));
                }
                let (children, owner) = stack.pop().expect("more than one level");
                let mut owner = owner.expect("an inner level has an owner");
                owner.block = Some(children);
                stack.last_mut().expect("the top level stays").0.push(owner);
            }
        }
    }
    if stack.len() > 1 {
        let (_, owner) = stack.pop().expect("more than one level");
        let owner = owner.expect("an inner level has an owner");
        let end = last_file.map(|p| format!(" (the last line read is {p})")).unwrap_or_default();
        return Err(owner
            .at
            .error(format!("Missing '}}': the block of '{}' is not closed{end}", owner.keyword())));
    }
    Ok(stack.pop().map(|l| l.0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::reader::read_str;

    fn tree(text: &str) -> Result<Vec<Node>, Error> {
        build(read_str(Path::new("k.conf"), text)?)
    }

    fn shape(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| match &n.block {
                Some(b) => format!("{}@{}{{{}}}", n.words.join(" "), n.at.line, shape(b)),
                None => format!("{}@{}", n.words.join(" "), n.at.line),
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn blocks_open_on_the_same_line_or_the_next() {
        let t = tree("a 1 {\n b\n c\n {\n d\n }\n}\ne {}\nf\n").unwrap();
        assert_eq!(shape(&t), "a 1@1{b@2;c@3{d@5}};e@8{};f@9");
    }

    #[test]
    fn unbalanced_braces_name_their_line() {
        assert_eq!(tree("a {\n}\n}\n").unwrap_err().to_string(), "(k.conf: Line 3) Extra '}' found");
        assert_eq!(tree("{\n").unwrap_err().to_string(), "(k.conf: Line 1) Unexpected '{'");
        assert_eq!(tree("a {\n}\n{\n").unwrap_err().line, 3);
        let e = tree("a {\n b {\n  c\n }\n\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "(k.conf: Line 1) Missing '}': the block of 'a' is not closed (the last line read is k.conf: Line 4)"
        );
    }
}
