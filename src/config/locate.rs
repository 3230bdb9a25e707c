//! Where each key and value of a YAML file sits, so that errors found after deserializing
//! (which loses positions) can still name `file:line:col`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

pub use crate::diagnostic::Position;

fn from_marker(m: Marker) -> Position {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Position {
        line: m.line(),
        col: m.col() + 1,
    }
}

#[derive(Debug, Clone, Copy)]
struct Node {
    key: Option<Position>,
    value: Position,
}

/// Paths use serde_path_to_error's spelling: `services.trac.cpu`, `routing[2].paths[0]`.
#[derive(Debug, Default)]
pub struct Locations {
    nodes: HashMap<String, Node>,
}

impl Locations {
    /// Indexes a document. Syntax errors are reported by the deserializer, so they are
    /// ignored here and leave the index partial.
    pub fn index(source: &str) -> Self {
        let mut builder = Builder::default();
        let _ = Parser::new_from_str(source).load(&mut builder, false);
        Locations {
            nodes: builder.nodes,
        }
    }

    /// Position of the value at `path`, or of its nearest ancestor that exists.
    pub fn value(&self, path: &str) -> Position {
        self.find(path, |n| n.value)
    }

    /// Position of the key that introduces `path` (its value for sequence items).
    pub fn key(&self, path: &str) -> Position {
        self.find(path, |n| n.key.unwrap_or(n.value))
    }

    fn find(&self, path: &str, pick: impl Fn(&Node) -> Position) -> Position {
        let mut p = path;
        loop {
            if let Some(n) = self.nodes.get(p) {
                return pick(n);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return Position::START,
            }
        }
    }
}

enum Frame {
    Mapping {
        path: String,
        pending_key: Option<(String, Position)>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    nodes: HashMap<String, Node>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Builder {
    /// Registers a node; returns its path, or `None` when the node is a mapping key.
    fn node(&mut self, key_text: Option<&str>, at: Position) -> Option<String> {
        let (path, key) = match self.stack.last_mut() {
            None => (String::new(), None),
            Some(Frame::Mapping { path, pending_key }) => match pending_key.take() {
                None => {
                    *pending_key = Some((key_text.unwrap_or("?").to_string(), at));
                    return None;
                }
                Some((k, kpos)) => (join(path, &k), Some(kpos)),
            },
            Some(Frame::Sequence { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                (p, None)
            }
        };
        self.nodes.insert(path.clone(), Node { key, value: at });
        Some(path)
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = from_marker(mark);
        match ev {
            Event::Scalar(text, ..) => {
                self.node(Some(&text), at);
            }
            Event::Alias(_) => {
                self.node(None, at);
            }
            Event::MappingStart(..) => {
                if let Some(path) = self.node(None, at) {
                    self.stack.push(Frame::Mapping {
                        path,
                        pending_key: None,
                    });
                } else {
                    // A complex key: track it so its end event balances the stack.
                    self.stack.push(Frame::Mapping {
                        path: "?".into(),
                        pending_key: None,
                    });
                }
            }
            Event::SequenceStart(..) => {
                let path = self.node(None, at).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_values_and_sequence_items() {
        let src = "a: 1\nb:\n  c: x\n  d:\n    - p: 1\n    - q: [1, 2]\n";
        let l = Locations::index(src);
        assert_eq!(l.key("a"), Position { line: 1, col: 1 });
        assert_eq!(l.value("a"), Position { line: 1, col: 4 });
        assert_eq!(l.key("b.c"), Position { line: 3, col: 3 });
        assert_eq!(l.value("b.d[0].p"), Position { line: 5, col: 10 });
        assert_eq!(l.value("b.d[1].q[1]"), Position { line: 6, col: 14 });
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(l.key("b.c.zz"), Position { line: 3, col: 3 });
        assert_eq!(l.value("nothing"), Position::START);
    }
}
