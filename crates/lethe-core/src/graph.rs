//! The relation graph: cascade reachability, cycle detection, lock order.

use std::collections::{BTreeMap, BTreeSet};

use crate::policy::{OnDelete, Policy};

/// Finds a cascade cycle through two or more entities (self-references are
/// fine: they are walked with a recursive query). Returns the entity names along
/// the cycle, first repeated at the end.
pub fn cascade_cycle(policy: &Policy) -> Option<Vec<String>> {
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &policy.relations {
        if r.on_delete == OnDelete::Cascade && !r.is_self_reference() {
            edges
                .entry(r.parent.as_str())
                .or_default()
                .push(r.child.as_str());
        }
    }
    // Iterative DFS with colours; small graphs, so clarity over speed.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour: BTreeMap<&str, Colour> = policy
        .entities
        .keys()
        .map(|k| (k.as_str(), Colour::White))
        .collect();
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        colour: &mut BTreeMap<&'a str, Colour>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        colour.insert(n, Colour::Grey);
        stack.push(n);
        for &m in edges.get(n).map(|v| v.as_slice()).unwrap_or(&[]) {
            match colour.get(m).copied().unwrap_or(Colour::White) {
                Colour::Grey => {
                    let start = stack.iter().position(|&s| s == m).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(m.to_string());
                    return Some(cycle);
                }
                Colour::White => {
                    if let Some(c) = visit(m, edges, colour, stack) {
                        return Some(c);
                    }
                }
                Colour::Black => {}
            }
        }
        stack.pop();
        colour.insert(n, Colour::Black);
        None
    }
    let nodes: Vec<&str> = colour.keys().copied().collect();
    for n in nodes {
        if colour[n] == Colour::White {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, &edges, &mut colour, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// Entities reachable from `root` through cascade relations, in topological
/// order (parents before children, ties broken by name so the order — which is
/// also the lock order — is fixed). Requires an acyclic cascade graph apart from
/// self-references, which [`crate::parse_policy`] guarantees.
pub fn cascade_order(policy: &Policy, root: &str) -> Vec<String> {
    let mut reach: BTreeSet<&str> = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(n) = todo.pop() {
        if reach.insert(n) {
            for r in policy.children_of(n) {
                if r.on_delete == OnDelete::Cascade && !r.is_self_reference() {
                    todo.push(r.child.as_str());
                }
            }
        }
    }
    // Kahn's algorithm restricted to the reachable set.
    let mut indegree: BTreeMap<&str, usize> = reach.iter().map(|&n| (n, 0)).collect();
    for r in &policy.relations {
        if r.on_delete == OnDelete::Cascade
            && !r.is_self_reference()
            && reach.contains(r.parent.as_str())
            && reach.contains(r.child.as_str())
        {
            *indegree.get_mut(r.child.as_str()).expect("reachable") += 1;
        }
    }
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut order = Vec::new();
    while let Some(n) = ready.pop_first() {
        order.push(n.to_string());
        for r in policy.children_of(n) {
            if r.on_delete == OnDelete::Cascade
                && !r.is_self_reference()
                && reach.contains(r.child.as_str())
            {
                let d = indegree.get_mut(r.child.as_str()).expect("reachable");
                *d -= 1;
                if *d == 0 {
                    ready.insert(r.child.as_str());
                }
            }
        }
    }
    order
}

/// Every entity, children before their parents through any relation (not
/// only cascades), ties broken by name: the order in which retention removes
/// rows, so a parent's expired rows are looked at after its children's have
/// gone. Relations that form a cycle (possible outside cascades) are cut
/// where the walk meets them; the purge's own reference check keeps that
/// safe.
pub fn removal_order(policy: &Policy) -> Vec<String> {
    fn visit<'a>(
        n: &'a str,
        policy: &'a Policy,
        seen: &mut BTreeSet<&'a str>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(n) {
            return;
        }
        let mut children: Vec<&str> = policy
            .children_of(n)
            .filter(|r| !r.is_self_reference())
            .map(|r| r.child.as_str())
            .collect();
        children.sort_unstable();
        for c in children {
            visit(c, policy, seen, out);
        }
        out.push(n.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in policy.entities.keys() {
        visit(n, policy, &mut seen, &mut out);
    }
    out
}

/// How a row of `entity` names the data subject it belongs to (the
/// policy's `[erasure] subject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectPath {
    /// `entity` is the subject: a row's own key.
    Own,
    /// The row holds the subject's key in these columns (`subject_columns`).
    Columns(Vec<String>),
    /// Relations from the row up to the subject, child to parent: the first
    /// relation's columns name the parent, whose row the next relation's
    /// columns are read from, and so on; the last relation's parent is the
    /// subject.
    Relations(Vec<crate::policy::Relation>),
}

/// The first way from `entity`'s rows to the subject's key (the shortest
/// of [`crate::erasure_plan::subject_paths`], which follow only the
/// relations that carry ownership); `None` when no subject is named or none
/// leads there.
pub fn subject_path(policy: &Policy, entity: &str) -> Option<SubjectPath> {
    crate::erasure_plan::subject_paths(policy, entity)
        .into_iter()
        .next()
}
