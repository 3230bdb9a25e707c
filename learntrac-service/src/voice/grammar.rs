//! The phrases a student can say, as a JSGF grammar: a question's opening, an article, a
//! topic from their concepts, a closing. Only words the recogniser's dictionary knows can
//! appear in a grammar, so each topic keeps its known words and is dropped if none remain.

use std::collections::{BTreeSet, HashSet};

const OPENINGS: &[&str] = &[
    "how do i solve",
    "how do i start",
    "how do i",
    "what is",
    "what are",
    "can you explain",
    "help me with",
    "explain",
    "why does",
    "tell me about",
    "i do not understand",
];
const CLOSINGS: &[&str] = &["with an example", "please", "again", "step by step"];

pub const MAX_TOPICS: usize = 40;
pub const MAX_TOPIC_WORDS: usize = 8;

/// Each concept's summary as a spoken topic, in the dictionary's words, with the singular
/// of a plural last word where the dictionary knows it ("linear equations" → "linear
/// equation").
/// The grammar is bounded, whatever a student owns: the first [`MAX_TOPICS`] summaries
/// (the caller puts the concept being talked about first), [`MAX_TOPIC_WORDS`] words each.
/// Recognition's time and memory grow with the grammar (2 000 topics: 13.7 s of CPU and
/// 140 MB an utterance, measured).
pub fn topics(summaries: &[String], dictionary: &HashSet<String>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for s in summaries.iter().take(MAX_TOPICS) {
        let words: Vec<String> = s
            .to_lowercase()
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty() && dictionary.contains(*w))
            .take(MAX_TOPIC_WORDS)
            .map(str::to_string)
            .collect();
        if words.is_empty() {
            continue;
        }
        if let Some(last) = words.last()
            && let Some(singular) = last.strip_suffix('s')
            && dictionary.contains(singular)
        {
            let mut one = words.clone();
            one.pop();
            one.push(singular.to_string());
            out.insert(one.join(" "));
        }
        out.insert(words.join(" "));
    }
    out.into_iter().collect()
}

/// The JSGF grammar over `topics` (each already in the dictionary's words).
pub fn jsgf(topics: &[String]) -> String {
    let topic = if topics.is_empty() {
        "<NULL>".to_string()
    } else {
        topics.join(" | ")
    };
    format!(
        "#JSGF V1.0;\ngrammar learntrac;\npublic <question> = [<opening>] [<article>] <topic> [<closing>];\n\
         <opening> = {};\n<article> = a | an | the;\n<topic> = {topic};\n<closing> = {};\n",
        OPENINGS.join(" | "),
        CLOSINGS.join(" | ")
    )
}

/// Every word the grammar's fixed parts use (they must be in the dictionary too).
pub fn fixed_words() -> impl Iterator<Item = &'static str> {
    OPENINGS
        .iter()
        .chain(CLOSINGS)
        .chain(&["a", "an", "the"])
        .flat_map(|p| p.split(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_keep_known_words_and_add_singulars() {
        let dict: HashSet<String> = [
            "linear",
            "equations",
            "equation",
            "variables",
            "and",
            "expressions",
            "limits",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let t = topics(
            &[
                "Linear equations".into(),
                "Variables and expressions".into(),
                "Zorblax".into(),
                "Limits!".into(),
            ],
            &dict,
        );
        assert_eq!(
            t,
            [
                "limits",
                "linear equation",
                "linear equations",
                "variables and expressions"
            ]
        );
        let g = jsgf(&t);
        assert!(
            g.contains(
                "<topic> = limits | linear equation | linear equations | variables and expressions;"
            ),
            "{g}"
        );
        assert!(g.starts_with("#JSGF V1.0;"));
    }

    #[test]
    fn the_grammar_is_bounded_whatever_a_student_owns() {
        let dict: HashSet<String> = ["equation", "word"].into_iter().map(String::from).collect();
        let many: Vec<String> = (0..2000)
            .map(|i| format!("equation {}", "word ".repeat(i % 50)))
            .collect();
        let t = topics(&many, &dict);
        assert!(t.len() <= 2 * MAX_TOPICS, "{} topics", t.len());
        assert!(
            t.iter().all(|p| p.split(' ').count() <= MAX_TOPIC_WORDS),
            "{t:?}"
        );
        assert!(jsgf(&t).len() < 10_000);
    }
}
