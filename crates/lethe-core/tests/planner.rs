//! The planner: which entities a delete touches, in which (lock) order, and
//! which side relations it checks or applies. A fixed shop policy, then a
//! property test over random acyclic policies.

use std::collections::{BTreeMap, BTreeSet};

use lethe_core::{
    CoreError, DeletePlan, OnDelete, Policy, Relation, SideRelation, parse_policy, plan_delete,
};
use proptest::prelude::*;

const SHOP: &str = include_str!("fixtures/shop.toml");

fn shop() -> Policy {
    parse_policy(SHOP, "shop.toml").expect("the shop policy parses")
}

fn names(plan: &DeletePlan) -> Vec<&str> {
    plan.nodes.iter().map(|n| n.entity.name.as_str()).collect()
}

fn rels(rs: &[Relation]) -> Vec<String> {
    rs.iter()
        .map(|r| format!("{} {}", r.describe(), r.on_delete))
        .collect()
}

/// `child.cols -> parent kind @parent_node child_node`
fn sides(plan: &DeletePlan, s: &[SideRelation]) -> Vec<String> {
    s.iter()
        .map(|s| {
            assert_eq!(s.child.name, s.relation.child);
            assert_eq!(plan.nodes[s.parent_node].entity.name, s.relation.parent);
            if let Some(ci) = s.child_node {
                assert_eq!(plan.nodes[ci].entity.name, s.relation.child);
            }
            format!(
                "{} {} child_node={:?}",
                s.relation.describe(),
                s.relation.on_delete,
                s.child_node.map(|i| plan.nodes[i].entity.name.as_str())
            )
        })
        .collect()
}

#[test]
fn delete_user_plans_the_whole_cascade_parents_first() {
    let p = shop();
    let plan = plan_delete(&p, "users").unwrap();
    assert_eq!(plan.root, "users");
    // Topological, ties broken by name: this is also the lock order.
    assert_eq!(
        names(&plan),
        [
            "users",
            "orders",
            "products",
            "cart_items",
            "order_items",
            "reviews"
        ]
    );
    assert_eq!(plan.node_index("order_items"), Some(4));
    assert_eq!(plan.node_index("invoices"), None, "restrict is not cascade");
    assert_eq!(
        plan.node_index("categories"),
        None,
        "parents are not deleted"
    );

    let node = |n: &str| &plan.nodes[plan.node_index(n).unwrap()];
    assert!(
        node("users").incoming.is_empty(),
        "the root has no incoming"
    );
    assert_eq!(
        rels(&node("orders").incoming),
        ["orders.user_id -> users cascade"],
        "the keep relation orders.referred_by is not followed"
    );
    assert_eq!(
        rels(&node("products").incoming),
        ["products.seller_id -> users cascade"],
        "products.category_id (restrict, parent not in plan) is not incoming"
    );
    // The diamond: order_items is one node with both paths as incoming.
    assert_eq!(
        rels(&node("order_items").incoming),
        [
            "order_items.order_id -> orders cascade",
            "order_items.product_id -> products cascade"
        ]
    );
    assert_eq!(
        rels(&node("cart_items").incoming),
        [
            "cart_items.user_id -> users cascade",
            "cart_items.product_id -> products cascade"
        ]
    );
    assert_eq!(
        rels(&node("reviews").incoming),
        ["reviews.product_id -> products cascade"],
        "set_null and restrict relations are not incoming"
    );
    assert!(plan.nodes.iter().all(|n| n.recursive.is_empty()));

    assert_eq!(
        sides(&plan, &plan.restricts),
        [
            "reviews.order_id -> orders restrict child_node=Some(\"reviews\")",
            "invoices.order_id -> orders restrict child_node=None"
        ]
    );
    assert_eq!(
        sides(&plan, &plan.set_nulls),
        ["reviews.user_id -> users set_null child_node=Some(\"reviews\")"]
    );
    assert!(plan.restricts.iter().all(|s| s.parent_node == 1));
    assert_eq!(plan.set_nulls[0].parent_node, 0);
}

#[test]
fn delete_product_only_follows_relations_from_the_plan() {
    let p = shop();
    let plan = plan_delete(&p, "products").unwrap();
    assert_eq!(
        names(&plan),
        ["products", "cart_items", "order_items", "reviews"]
    );
    let oi = &plan.nodes[plan.node_index("order_items").unwrap()];
    assert_eq!(
        rels(&oi.incoming),
        ["order_items.product_id -> products cascade"],
        "orders is not in this plan, so its relation is not incoming"
    );
    let ci = &plan.nodes[plan.node_index("cart_items").unwrap()];
    assert_eq!(
        rels(&ci.incoming),
        ["cart_items.product_id -> products cascade"]
    );
    assert!(plan.restricts.is_empty());
    assert!(plan.set_nulls.is_empty());
}

#[test]
fn delete_category_is_recursive_and_restricted_by_products() {
    let p = shop();
    let plan = plan_delete(&p, "categories").unwrap();
    assert_eq!(names(&plan), ["categories"]);
    assert!(plan.nodes[0].incoming.is_empty());
    assert_eq!(
        rels(&plan.nodes[0].recursive),
        ["categories.parent_id -> categories cascade"]
    );
    assert_eq!(
        sides(&plan, &plan.restricts),
        ["products.category_id -> categories restrict child_node=None"]
    );
    assert!(plan.set_nulls.is_empty());
}

#[test]
fn delete_leaf_plans_one_node() {
    let p = shop();
    for leaf in ["order_items", "invoices", "cart_items"] {
        let plan = plan_delete(&p, leaf).unwrap();
        assert_eq!(names(&plan), [leaf]);
        assert!(plan.restricts.is_empty() && plan.set_nulls.is_empty());
    }
    let plan = plan_delete(&p, "reviews").unwrap();
    assert_eq!(names(&plan), ["reviews"]);
}

#[test]
fn unknown_root_lists_the_managed_entities() {
    let err = plan_delete(&shop(), "user").unwrap_err();
    match &err {
        CoreError::UnknownEntity(name, known) => {
            assert_eq!(name, "user");
            assert!(known.contains("users") && known.contains("order_items"));
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("unknown entity \"user\""));
}

#[test]
fn plan_order_does_not_depend_on_relation_order_in_the_file() {
    // The same policy with [[relations]] blocks reversed.
    let (head, rest) = SHOP.split_once("[[relations]]").unwrap();
    let mut blocks: Vec<&str> = rest.split("[[relations]]").collect();
    blocks.reverse();
    let reversed = format!(
        "{head}{}",
        blocks
            .iter()
            .map(|b| format!("[[relations]]\n{}\n", b.trim()))
            .collect::<String>()
    );
    let a = shop();
    let b = parse_policy(&reversed, "reversed.toml").unwrap();
    for root in a.entities.keys() {
        assert_eq!(
            names(&plan_delete(&a, root).unwrap()),
            names(&plan_delete(&b, root).unwrap()),
            "root {root}"
        );
    }
}

// ---------------------------------------------------------------------------
// Property: random acyclic policies.

const POOL: [&str; 8] = [
    "accounts", "bills", "carts", "deals", "events", "files", "groups", "hosts",
];
const RULES: [&str; 4] = ["cascade", "restrict", "set_null", "keep"];

#[derive(Debug, Clone)]
struct Spec {
    /// Entity i is named POOL[perm[i]]: names are shuffled so the name order
    /// (the planner's tie-break) is unrelated to the graph order.
    perm: Vec<usize>,
    hard: Vec<bool>,
    /// For each pair i < j (row-major): rule of relation child j -> parent i.
    edges: Vec<Option<usize>>,
    /// Self-reference rule per entity.
    selfs: Vec<Option<usize>>,
    root: usize,
}

impl Spec {
    fn n(&self) -> usize {
        self.perm.len()
    }
    fn name(&self, i: usize) -> &'static str {
        POOL[self.perm[i]]
    }
    fn text(&self) -> String {
        let mut s = String::new();
        for i in 0..self.n() {
            s += &format!("[entities.{}]\nkey = [\"id\"]\n", self.name(i));
            if self.hard[i] {
                s += "strategy = \"hard\"\n";
            }
            s += "\n";
        }
        let mut k = 0;
        for i in 0..self.n() {
            for j in i + 1..self.n() {
                if let Some(rule) = self.edges[k] {
                    s += &format!(
                        "[[relations]]\nchild = \"{}\"\ncolumns = [\"{}_id\"]\nparent = \"{}\"\non_delete = \"{}\"\n\n",
                        self.name(j),
                        self.name(i),
                        self.name(i),
                        RULES[rule]
                    );
                }
                k += 1;
            }
            if let Some(rule) = self.selfs[i] {
                s += &format!(
                    "[[relations]]\nchild = \"{0}\"\ncolumns = [\"parent_id\"]\nparent = \"{0}\"\non_delete = \"{1}\"\n\n",
                    self.name(i),
                    RULES[rule]
                );
            }
        }
        s
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (2usize..=8).prop_flat_map(|n| {
        (
            Just((0..POOL.len()).collect::<Vec<_>>()).prop_shuffle(),
            proptest::collection::vec(any::<bool>(), n),
            proptest::collection::vec(proptest::option::weighted(0.5, 0usize..4), n * (n - 1) / 2),
            proptest::collection::vec(proptest::option::weighted(0.25, 0usize..4), n),
            0..n,
        )
            .prop_map(move |(perm, hard, edges, selfs, root)| Spec {
                perm: perm[..n].to_vec(),
                hard,
                edges,
                selfs,
                root,
            })
    })
}

fn is_cascade_edge(r: &Relation) -> bool {
    r.on_delete == OnDelete::Cascade && !r.is_self_reference()
}

fn key(r: &Relation) -> String {
    format!("{} {}", r.describe(), r.on_delete)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_dag_policies_plan_a_valid_topological_order(spec in spec()) {
        let text = spec.text();
        let policy = match parse_policy(&text, "gen.toml") {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        let root = spec.name(spec.root);
        let plan = plan_delete(&policy, root).unwrap();
        let order: Vec<&str> = names(&plan);

        // Reachable via cascade, computed independently.
        let mut reach = BTreeSet::from([root]);
        let mut todo = vec![root];
        while let Some(n) = todo.pop() {
            for r in policy.relations.iter().filter(|r| is_cascade_edge(r) && r.parent == n) {
                if reach.insert(r.child.as_str()) {
                    todo.push(r.child.as_str());
                }
            }
        }
        prop_assert_eq!(order[0], root, "root first");
        let as_set: BTreeSet<&str> = order.iter().copied().collect();
        prop_assert_eq!(as_set.len(), order.len(), "no entity twice: {:?}", order);
        prop_assert_eq!(&as_set, &reach, "exactly the cascade-reachable entities");

        let pos: BTreeMap<&str, usize> =
            order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        for r in policy.relations.iter().filter(|r| is_cascade_edge(r)) {
            if let (Some(p), Some(c)) = (pos.get(r.parent.as_str()), pos.get(r.child.as_str())) {
                prop_assert!(p < c, "{} planned child first: {:?}", r.describe(), order);
            }
        }

        // The fixed lock order: among the entities whose planned parents are
        // all placed, the smallest name comes next.
        let mut placed: Vec<&str> = Vec::new();
        while placed.len() < order.len() {
            let next = reach
                .iter()
                .copied()
                .filter(|n| !placed.contains(n))
                .filter(|n| {
                    policy.relations.iter().all(|r| {
                        !(is_cascade_edge(r) && r.child == *n && reach.contains(r.parent.as_str()))
                            || placed.contains(&r.parent.as_str())
                    })
                })
                .min()
                .unwrap();
            placed.push(next);
        }
        prop_assert_eq!(&placed, &order, "ties are broken by name");

        for node in &plan.nodes {
            let e = node.entity.name.as_str();
            let want_in: Vec<String> = policy
                .relations
                .iter()
                .filter(|r| is_cascade_edge(r) && r.child == e && reach.contains(r.parent.as_str()))
                .map(key)
                .collect();
            prop_assert_eq!(node.incoming.iter().map(key).collect::<Vec<_>>(), want_in);
            let want_rec: Vec<String> = policy
                .relations
                .iter()
                .filter(|r| r.on_delete == OnDelete::Cascade && r.is_self_reference() && r.child == e)
                .map(key)
                .collect();
            prop_assert_eq!(node.recursive.iter().map(key).collect::<Vec<_>>(), want_rec);
            prop_assert_eq!(&node.entity, &policy.entities[e]);
        }

        for (rule, got) in [(OnDelete::Restrict, &plan.restricts), (OnDelete::SetNull, &plan.set_nulls)] {
            let mut want: Vec<String> = policy
                .relations
                .iter()
                .filter(|r| r.on_delete == rule && reach.contains(r.parent.as_str()))
                .map(key)
                .collect();
            let mut have: Vec<String> = got.iter().map(|s| key(&s.relation)).collect();
            want.sort();
            have.sort();
            prop_assert_eq!(have, want, "{} side relations", rule);
            for s in got.iter() {
                prop_assert_eq!(order[s.parent_node], s.relation.parent.as_str());
                prop_assert_eq!(s.child_node, pos.get(s.relation.child.as_str()).copied());
                prop_assert_eq!(&s.child.name, &s.relation.child);
            }
        }
    }
}

#[test]
fn removal_order_puts_children_before_parents() {
    let p = lethe_core::parse_policy(
        r#"
[entities.users]
key = ["id"]
[entities.orders]
key = ["id"]
[entities.items]
key = ["id"]
[entities.products]
key = ["id"]
[entities.tags]
key = ["id"]
[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"
[[relations]]
child = "items"
columns = ["order_id"]
parent = "orders"
on_delete = "cascade"
[[relations]]
child = "items"
columns = ["product_id"]
parent = "products"
on_delete = "keep"
[[relations]]
child = "tags"
columns = ["parent_id"]
parent = "tags"
on_delete = "cascade"
"#,
        "t.toml",
    )
    .unwrap();
    let order = lethe_core::graph::removal_order(&p);
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert_eq!(order.len(), 5);
    assert!(pos("items") < pos("orders") && pos("orders") < pos("users"));
    assert!(pos("items") < pos("products"), "keep relations count too");
}

#[test]
fn subject_paths_lead_to_the_subject_by_the_shortest_way() {
    use lethe_core::graph::{SubjectPath, subject_path};
    let p = lethe_core::parse_policy(
        r#"
[erasure]
subject = "users"
[entities.users]
key = ["id"]
[entities.orders]
key = ["id"]
[entities.items]
key = ["id"]
[entities.notes]
key = ["id"]
subject_columns = ["author"]
[entities.tags]
key = ["id"]
[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"
[[relations]]
child = "items"
columns = ["order_id"]
parent = "orders"
on_delete = "cascade"
"#,
        "t.toml",
    )
    .unwrap();
    assert_eq!(subject_path(&p, "users"), Some(SubjectPath::Own));
    assert_eq!(
        subject_path(&p, "notes"),
        Some(SubjectPath::Columns(vec!["author".into()]))
    );
    let Some(SubjectPath::Relations(path)) = subject_path(&p, "items") else {
        panic!("items reach users through orders");
    };
    assert_eq!(
        path.iter().map(|r| r.describe()).collect::<Vec<_>>(),
        ["items.order_id -> orders", "orders.user_id -> users"]
    );
    assert_eq!(subject_path(&p, "tags"), None);
}
