//! The plan of an erasure: which entities hold a data subject's rows, every
//! way their rows reach the subject, what erasure does to each, and in
//! which order. Plain data; the store turns it into statements.
//!
//! A row belongs to the subject through *any* chain of relations that ends
//! at the subject, not only the shortest: a review reaches a user through
//! its own `user_id` and through its order, and erasure must find both
//! kinds of reviews (seed 004: the copies an implementation forgets are the
//! ones that leak).

use std::collections::BTreeSet;

use crate::erasure::Erase;
use crate::error::PolicyError;
use crate::graph::{self, SubjectPath};
use crate::policy::{OnDelete, Policy, Relation};

/// At most this many relation chains per entity: a policy whose graph has
/// more is refused rather than planned into a statement nobody can read.
pub const MAX_PATHS: usize = 32;

/// What erasure does to one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureStep {
    pub entity: String,
    pub action: Erase,
    /// Every way a row of the entity names the subject; a row is the
    /// subject's when any of them leads to the subject's key.
    pub paths: Vec<SubjectPath>,
}

/// The steps of an erasure, children before parents (rows are removed
/// before the rows they reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasurePlan {
    pub subject: String,
    pub steps: Vec<ErasureStep>,
}

impl ErasurePlan {
    pub fn step(&self, entity: &str) -> Option<&ErasureStep> {
        self.steps.iter().find(|s| s.entity == entity)
    }
}

/// The relations through which a row of `entity` belongs to the
/// subject's rows of their parent. A relation only *references* a parent
/// unless it carries ownership, and following references would erase other
/// people's rows (a buyer's order item references the seller's product).
/// The rule:
/// - `erasure = false` on a relation: never followed; `erasure = true`:
///   always (when its parent reaches the subject);
/// - an entity that names the subject itself (a relation to the subject,
///   or `subject_columns`) belongs to it through that alone: a review's
///   `user_id` is its author, its `product_id` leads to someone else; of
///   several relations to the subject, the `cascade` and `restrict` ones
///   when there are any (an order's buyer, not its `set_null` referrer);
/// - otherwise through the relations whose parent reaches the subject,
///   and among those only the `cascade` ones when there are any (an order
///   item is part of its order, and merely points at its product).
///
/// Self-references are never followed (a reply to the subject's comment is
/// its author's).
pub fn owning_relations<'a>(policy: &'a Policy, entity: &str) -> Vec<&'a Relation> {
    let mut seen = BTreeSet::from([entity.to_string()]);
    owning(policy, entity, &mut seen)
}

fn owning<'a>(policy: &'a Policy, entity: &str, seen: &mut BTreeSet<String>) -> Vec<&'a Relation> {
    let Some(subject) = policy.subject.as_deref() else {
        return Vec::new();
    };
    let Some(e) = policy.entity(entity) else {
        return Vec::new();
    };
    if entity == subject {
        return Vec::new();
    }
    let candidates: Vec<&Relation> = policy
        .relations
        .iter()
        .filter(|r| r.child == entity && !r.is_self_reference() && r.erasure != Some(false))
        .collect();
    let direct: Vec<&Relation> = candidates
        .iter()
        .copied()
        .filter(|r| r.parent == subject)
        .collect();
    let mut reaches = |r: &Relation| -> bool {
        if r.parent == subject {
            return true;
        }
        if !seen.insert(r.parent.clone()) {
            return false;
        }
        let p = &policy.entities[&r.parent];
        let ok = !p.subject_columns.is_empty() || !owning(policy, &r.parent, seen).is_empty();
        seen.remove(&r.parent);
        ok
    };
    let forced: Vec<&Relation> = candidates
        .iter()
        .copied()
        .filter(|r| r.erasure == Some(true) && r.parent != subject)
        .filter(|r| reaches(r))
        .collect();
    let mut out: Vec<&Relation> = if !direct.is_empty() || !e.subject_columns.is_empty() {
        // An order's buyer (restrict) owns it; its referrer (set_null)
        // does not.
        let strong: Vec<&Relation> = direct
            .iter()
            .copied()
            .filter(|r| matches!(r.on_delete, OnDelete::Cascade | OnDelete::Restrict))
            .collect();
        if strong.is_empty() { direct } else { strong }
    } else {
        let reaching: Vec<&Relation> = candidates.iter().copied().filter(|r| reaches(r)).collect();
        let cascade: Vec<&Relation> = reaching
            .iter()
            .copied()
            .filter(|r| r.on_delete == OnDelete::Cascade)
            .collect();
        if cascade.is_empty() {
            reaching
        } else {
            cascade
        }
    };
    for r in forced {
        if !out.iter().any(|o| std::ptr::eq(*o, r)) {
            out.push(r);
        }
    }
    out
}

/// Every way a row of `entity` belongs to the subject: its own key (the
/// subject), its `subject_columns`, and every chain of
/// [`owning_relations`] (child to parent, no entity twice) ending at the
/// subject. Shortest first.
pub fn subject_paths(policy: &Policy, entity: &str) -> Vec<SubjectPath> {
    let Some(subject) = policy.subject.as_deref() else {
        return Vec::new();
    };
    let Some(e) = policy.entity(entity) else {
        return Vec::new();
    };
    if entity == subject {
        return vec![SubjectPath::Own];
    }
    let mut out = Vec::new();
    if !e.subject_columns.is_empty() {
        out.push(SubjectPath::Columns(e.subject_columns.clone()));
    }
    fn walk(
        policy: &Policy,
        subject: &str,
        at: &str,
        seen: &mut BTreeSet<String>,
        chain: &mut Vec<Relation>,
        out: &mut Vec<SubjectPath>,
    ) {
        for r in owning_relations(policy, at) {
            if out.len() > MAX_PATHS {
                return;
            }
            chain.push(r.clone());
            if r.parent == subject {
                out.push(SubjectPath::Relations(chain.clone()));
            } else if seen.insert(r.parent.clone()) {
                walk(policy, subject, &r.parent, seen, chain, out);
                seen.remove(&r.parent);
            }
            chain.pop();
        }
    }
    let mut seen = BTreeSet::from([entity.to_string()]);
    walk(
        policy,
        subject,
        entity,
        &mut seen,
        &mut Vec::new(),
        &mut out,
    );
    // Shortest first: the plan reads better, and cold storage seals a
    // row's values for the subject of its first path.
    out.sort_by_key(|p| match p {
        SubjectPath::Own | SubjectPath::Columns(_) => 0,
        SubjectPath::Relations(r) => r.len(),
    });
    out
}

/// Plans the erasure of a subject under `policy`: every entity whose rows
/// reach the subject, with its action. Refused when there is no subject,
/// when an entity has more than [`MAX_PATHS`] chains to it, or when a row
/// erasure deletes would be needed by one it keeps (see [`check_kept_children`]).
pub fn plan_erasure(policy: &Policy) -> Result<ErasurePlan, PolicyError> {
    let Some(subject) = policy.subject.clone() else {
        return Err(PolicyError::at(
            &policy.source,
            None,
            "erasure.subject",
            "erasure needs the subject entity: add [erasure] subject = \"users\" (the entity whose rows are people)",
        ));
    };
    let mut steps = Vec::new();
    for name in graph::removal_order(policy) {
        let paths = subject_paths(policy, &name);
        if paths.is_empty() {
            continue;
        }
        let e = &policy.entities[&name];
        if paths.len() > MAX_PATHS {
            return Err(PolicyError::at(
                &policy.source,
                Some(e.line),
                format!("entities.{name}"),
                format!(
                    "rows of \"{name}\" reach the subject \"{subject}\" through more than {MAX_PATHS} chains of relations; declare subject_columns on it, or mark relations that do not carry ownership"
                ),
            ));
        }
        steps.push(ErasureStep {
            entity: name.clone(),
            action: e.erase.clone().unwrap_or(Erase::Delete),
            paths,
        });
    }
    let plan = ErasurePlan { subject, steps };
    check_kept_children(policy, &plan)?;
    Ok(plan)
}

/// A row erasure keeps (or anonymizes) must not need a row it deletes:
/// through a `restrict` relation the database refuses the delete, through
/// a `cascade` one it may delete the kept row with it (a foreign key ON
/// DELETE CASCADE). `set_null` clears the reference, and `keep` says the
/// child may point at a parent that is gone.
fn check_kept_children(policy: &Policy, plan: &ErasurePlan) -> Result<(), PolicyError> {
    for r in &policy.relations {
        let (Some(child), Some(parent)) = (plan.step(&r.child), plan.step(&r.parent)) else {
            continue;
        };
        if parent.action != Erase::Delete
            || child.action == Erase::Delete
            || !matches!(r.on_delete, OnDelete::Restrict | OnDelete::Cascade)
        {
            continue;
        }
        let kept = match &child.action {
            Erase::Keep { legal_basis } => format!("kept ({legal_basis})"),
            _ => "anonymized, not deleted".to_string(),
        };
        return Err(PolicyError::at(
            &policy.source,
            Some(r.line),
            format!("entities.{}.erase", r.parent),
            format!(
                "erasure deletes the subject's \"{}\" rows, but their \"{}\" rows are {kept} and reference them through {} (on_delete = {}); make that relation set_null so the kept rows lose the link, or give \"{}\" erase = \"anonymize\"",
                r.parent,
                r.child,
                r.describe(),
                r.on_delete,
                r.parent
            ),
        ));
    }
    Ok(())
}
