//! What the tutor knows: the concept as Trac holds it, the student's mastery and attempts,
//! and where each prerequisite stands — so its answers are about this student's work.

use std::fmt::Write;

use crate::learning::Mastery;
use crate::trac::{Concept, Prerequisites};

use super::model::Message;

/// The system message that grounds every answer.
pub fn system(
    concept: &Concept,
    mastery: Option<&Mastery>,
    prerequisites: &Prerequisites,
    prerequisite_mastery: &dyn Fn(i64) -> Option<f64>,
) -> Message {
    let mut s = String::from(
        "You are LearnTrac's tutor, helping one student learn one concept. Explain step by \
         step, ask a short question back to check understanding, and keep answers under 150 \
         words unless asked for more. Use only the material below and general knowledge of \
         the subject; never invent grades or course rules.\n\n",
    );
    let _ = writeln!(s, "Concept #{}: {}", concept.id, concept.summary);
    if !concept.description.trim().is_empty() {
        let _ = writeln!(s, "Description:\n{}", concept.description.trim());
    }
    let _ = writeln!(s, "Status in the course: {}", concept.status);
    match mastery {
        Some(m) => {
            let _ = writeln!(
                s,
                "The student's mastery: {:.2} after {} practice attempt(s); {:.2} counts as mastered.",
                m.mastery, m.attempts, concept.mastery_threshold
            );
        }
        None => {
            let _ = writeln!(
                s,
                "The student has not practised this concept yet; {:.2} counts as mastered.",
                concept.mastery_threshold
            );
        }
    }
    let direct: Vec<_> = prerequisites
        .prerequisites
        .iter()
        .filter(|p| p.depth == 1 && !p.missing)
        .collect();
    if direct.is_empty() {
        s.push_str("It has no prerequisites.\n");
    } else {
        s.push_str("Prerequisites:\n");
        for p in direct {
            let state = match prerequisite_mastery(p.id) {
                Some(m) => format!("mastery {m:.2}"),
                None => "not practised".into(),
            };
            let _ = writeln!(
                s,
                "- #{} {} ({}, {state})",
                p.id,
                p.summary.as_deref().unwrap_or(""),
                p.status.as_deref().unwrap_or("unknown")
            );
        }
    }
    Message {
        role: "system",
        content: s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trac::Prerequisite;

    #[test]
    fn names_the_concept_the_mastery_and_the_prerequisites() {
        let concept = Concept {
            id: 2,
            summary: "Linear equations".into(),
            description: "Solve ax + b = c.".into(),
            status: "accepted".into(),
            resolution: String::new(),
            owner: "alice".into(),
            reporter: "carol".into(),
            milestone: "algebra-1".into(),
            component: String::new(),
            priority: String::new(),
            kind: "concept".into(),
            keywords: String::new(),
            time: 0,
            changetime: 0,
            custom_fields: Default::default(),
            learning_difficulty: 0.5,
            mastery_threshold: 0.8,
            prerequisites: vec![1],
        };
        let prereqs = Prerequisites {
            concept_id: 2,
            prerequisites: vec![Prerequisite {
                id: 1,
                summary: Some("Variables and expressions".into()),
                status: Some("mastered".into()),
                depth: 1,
                missing: false,
            }],
            cycles: vec![],
        };
        let m = Mastery {
            mastery: 0.6,
            attempts: 2,
            mastered_at: None,
        };
        let msg = system(&concept, Some(&m), &prereqs, &|id| (id == 1).then_some(0.9));
        assert_eq!(msg.role, "system");
        for want in [
            "Concept #2: Linear equations",
            "Solve ax + b = c.",
            "mastery: 0.60 after 2 practice attempt(s); 0.80 counts as mastered",
            "- #1 Variables and expressions (mastered, mastery 0.90)",
        ] {
            assert!(msg.content.contains(want), "{want:?} in:\n{}", msg.content);
        }
    }
}
