//! Plans as data: what a delete of one root row will do, per table, before any
//! SQL exists. `lethe-sql` renders a plan per dialect; `lethe-store` runs it.

use crate::error::CoreError;
use crate::graph;
use crate::policy::{Entity, OnDelete, Policy, Relation};

/// One entity in a delete plan: the set of its rows to delete is computed from
/// the root key (for the root) or from the deleted rows of its parents through
/// `incoming` cascade relations, then closed over `recursive` self-references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanNode {
    pub entity: Entity,
    /// Cascade relations from parents earlier in the plan.
    pub incoming: Vec<Relation>,
    /// Self-referencing cascade relations (walked with a recursive query).
    pub recursive: Vec<Relation>,
}

/// A relation checked or applied because its parent is in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideRelation {
    pub relation: Relation,
    /// The child entity.
    pub child: Entity,
    /// Index of the parent in [`DeletePlan::nodes`].
    pub parent_node: usize,
    /// Index of the child in [`DeletePlan::nodes`] when the child is deleted by
    /// the same plan (its rows being deleted are then not counted or changed).
    pub child_node: Option<usize>,
}

/// A delete of one root row: nodes in topological (= lock) order, root first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePlan {
    pub root: String,
    pub nodes: Vec<PlanNode>,
    /// `restrict` relations whose parent is in the plan: active children that
    /// are not deleted by the plan block it.
    pub restricts: Vec<SideRelation>,
    /// `set_null` relations whose parent is in the plan.
    pub set_nulls: Vec<SideRelation>,
}

impl DeletePlan {
    pub fn node_index(&self, entity: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.entity.name == entity)
    }
}

/// Builds the plan for deleting a row of `root`.
pub fn plan_delete(policy: &Policy, root: &str) -> Result<DeletePlan, CoreError> {
    let root_entity = policy
        .entity(root)
        .ok_or_else(|| unknown_entity(policy, root))?;
    let order = graph::cascade_order(policy, &root_entity.name);
    let mut nodes = Vec::new();
    for name in &order {
        let entity = policy.entities[name].clone();
        let incoming = policy
            .parents_of(name)
            .filter(|r| {
                r.on_delete == OnDelete::Cascade
                    && !r.is_self_reference()
                    && order.contains(&r.parent)
            })
            .cloned()
            .collect();
        let recursive = policy
            .parents_of(name)
            .filter(|r| r.on_delete == OnDelete::Cascade && r.is_self_reference())
            .cloned()
            .collect();
        nodes.push(PlanNode {
            entity,
            incoming,
            recursive,
        });
    }
    let mut restricts = Vec::new();
    let mut set_nulls = Vec::new();
    for (pi, node) in nodes.iter().enumerate() {
        for r in policy.children_of(&node.entity.name) {
            let side = || SideRelation {
                relation: r.clone(),
                child: policy.entities[&r.child].clone(),
                parent_node: pi,
                child_node: order.iter().position(|n| *n == r.child),
            };
            match r.on_delete {
                OnDelete::Restrict => restricts.push(side()),
                OnDelete::SetNull => set_nulls.push(side()),
                OnDelete::Cascade | OnDelete::Keep => {}
            }
        }
    }
    Ok(DeletePlan {
        root: root_entity.name.clone(),
        nodes,
        restricts,
        set_nulls,
    })
}

pub fn unknown_entity(policy: &Policy, name: &str) -> CoreError {
    CoreError::UnknownEntity(
        name.to_string(),
        policy
            .entities
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    )
}
