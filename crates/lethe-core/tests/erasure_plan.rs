//! Erasure plans: which entities hold a subject's rows, through every chain
//! of relations, with what action, in which order; and the plans refused.

use lethe_core::graph::SubjectPath;
use lethe_core::{Erase, parse_policy, plan_erasure, subject_paths};

/// A shop: reviews reach users directly and through their order; order
/// items through orders; products (a catalogue) reach no one; events name
/// the user in a column without a relation.
const SHOP: &str = r#"
[entities.users]
key = ["id"]
erase = "anonymize"
pii = { email = "fake", name = "redact" }

[entities.orders]
key = ["id"]
erase = "keep"
legal_basis = "invoices: 10 years (tax law)"

[entities.order_items]
key = ["order_id", "product_id"]

[entities.reviews]
key = ["id"]

[entities.products]
key = ["id"]

[entities.events]
key = ["id"]
subject_columns = ["user_id"]

[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "restrict"

[[relations]]
child = "order_items"
columns = ["order_id"]
parent = "orders"
on_delete = "cascade"

[[relations]]
child = "order_items"
columns = ["product_id"]
parent = "products"
on_delete = "restrict"

[[relations]]
child = "reviews"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[[relations]]
child = "reviews"
columns = ["order_id"]
parent = "orders"
on_delete = "set_null"

[erasure]
subject = "users"
"#;

fn chains(paths: &[SubjectPath]) -> Vec<String> {
    paths
        .iter()
        .map(|p| match p {
            SubjectPath::Own => "own".to_string(),
            SubjectPath::Columns(c) => format!("columns {}", c.join(",")),
            SubjectPath::Relations(rs) => rs
                .iter()
                .map(|r| r.describe())
                .collect::<Vec<_>>()
                .join(" / "),
        })
        .collect()
}

#[test]
fn every_chain_to_the_subject_is_found() {
    let p = parse_policy(SHOP, "shop.toml").unwrap();
    // A review names its author: that is its owner; its order is a
    // reference unless the policy says the relation carries ownership.
    assert_eq!(
        chains(&subject_paths(&p, "reviews")),
        ["reviews.user_id -> users"]
    );
    let both = SHOP.replace(
        "columns = [\"order_id\"]\nparent = \"orders\"\non_delete = \"set_null\"",
        "columns = [\"order_id\"]\nparent = \"orders\"\non_delete = \"set_null\"\nerasure = true",
    );
    let p2 = parse_policy(&both, "shop.toml").unwrap();
    assert_eq!(
        chains(&subject_paths(&p2, "reviews")),
        [
            "reviews.user_id -> users",
            "reviews.order_id -> orders / orders.user_id -> users"
        ]
    );
    assert_eq!(
        chains(&subject_paths(&p, "order_items")),
        ["order_items.order_id -> orders / orders.user_id -> users"]
    );
    assert_eq!(chains(&subject_paths(&p, "users")), ["own"]);
    assert_eq!(chains(&subject_paths(&p, "events")), ["columns user_id"]);
    assert!(subject_paths(&p, "products").is_empty());
}

#[test]
fn plan_has_each_entity_of_the_subject_children_first() {
    let p = parse_policy(SHOP, "shop.toml").unwrap();
    let plan = plan_erasure(&p).unwrap();
    assert_eq!(plan.subject, "users");
    let order: Vec<&str> = plan.steps.iter().map(|s| s.entity.as_str()).collect();
    let pos = |n: &str| order.iter().position(|e| *e == n).unwrap();
    assert!(!order.contains(&"products"), "{order:?}");
    assert_eq!(order.len(), 5, "{order:?}");
    assert!(pos("order_items") < pos("orders"));
    assert!(pos("reviews") < pos("orders") && pos("orders") < pos("users"));
    assert_eq!(plan.step("users").unwrap().action, Erase::Anonymize);
    assert_eq!(plan.step("reviews").unwrap().action, Erase::Delete);
    assert_eq!(plan.step("reviews").unwrap().paths.len(), 1);
    assert_eq!(
        plan.step("orders").unwrap().action,
        Erase::Keep {
            legal_basis: "invoices: 10 years (tax law)".into()
        }
    );
}

#[test]
fn a_kept_row_that_needs_a_deleted_one_is_refused() {
    // Users deleted, orders kept, and the relation restricts: the database
    // would refuse the delete (or, with cascade, take the kept orders too).
    let text = SHOP.replace(
        "erase = \"anonymize\"\npii = { email = \"fake\", name = \"redact\" }",
        "",
    );
    let p = parse_policy(&text, "shop.toml").unwrap();
    let err = plan_erasure(&p).unwrap_err().to_string();
    assert!(
        err.contains("erasure deletes the subject's \"users\" rows")
            && err.contains("\"orders\" rows are kept (invoices: 10 years (tax law))")
            && err.contains("orders.user_id -> users (on_delete = restrict)")
            && err.contains("set_null"),
        "{err}"
    );
    assert!(err.starts_with("shop.toml:"), "{err}");
    // With set_null the kept orders lose the link, and the plan stands.
    let fixed = text.replacen(
        "child = \"orders\"\ncolumns = [\"user_id\"]\nparent = \"users\"\non_delete = \"restrict\"",
        "child = \"orders\"\ncolumns = [\"user_id\"]\nparent = \"users\"\non_delete = \"set_null\"",
        1,
    );
    assert_ne!(fixed, text);
    let plan = plan_erasure(&parse_policy(&fixed, "shop.toml").unwrap()).unwrap();
    assert_eq!(plan.step("users").unwrap().action, Erase::Delete);
}

#[test]
fn no_subject_no_plan() {
    let p = parse_policy("[entities.users]\nkey = [\"id\"]\n", "p.toml").unwrap();
    let err = plan_erasure(&p).unwrap_err().to_string();
    assert!(err.contains("[erasure] subject"), "{err}");
    assert!(subject_paths(&p, "users").is_empty());
}

/// Sellers are users too: a product belongs to its seller, but a buyer's
/// order item, cart line or review only points at the product, and must
/// not be erased with the seller.
#[test]
fn references_to_a_subjects_rows_are_not_ownership() {
    let text = SHOP.replace(
        "[entities.products]\nkey = [\"id\"]",
        "[entities.products]\nkey = [\"id\"]\n\n[entities.carts]\nkey = [\"id\"]",
    ) + r#"
[[relations]]
child = "products"
columns = ["seller_id"]
parent = "users"
on_delete = "restrict"

[[relations]]
child = "carts"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[[relations]]
child = "carts"
columns = ["product_id"]
parent = "products"
on_delete = "cascade"

[[relations]]
child = "reviews"
columns = ["product_id"]
parent = "products"
on_delete = "cascade"
"#;
    let p = parse_policy(&text, "shop.toml").unwrap();
    assert_eq!(
        chains(&subject_paths(&p, "products")),
        ["products.seller_id -> users"]
    );
    // Restrict to products, cascade to orders: the item is part of its order.
    assert_eq!(
        chains(&subject_paths(&p, "order_items")),
        ["order_items.order_id -> orders / orders.user_id -> users"]
    );
    assert_eq!(
        chains(&subject_paths(&p, "carts")),
        ["carts.user_id -> users"]
    );
    assert_eq!(
        chains(&subject_paths(&p, "reviews")),
        ["reviews.user_id -> users"]
    );
    // erasure = false takes a relation out; an entity left with no owner
    // is not part of any erasure.
    let no_seller = text.replace(
        "columns = [\"seller_id\"]\nparent = \"users\"\non_delete = \"restrict\"",
        "columns = [\"seller_id\"]\nparent = \"users\"\non_delete = \"restrict\"\nerasure = false",
    );
    let p = parse_policy(&no_seller, "shop.toml").unwrap();
    assert!(subject_paths(&p, "products").is_empty());
    assert!(plan_erasure(&p).unwrap().step("products").is_none());
}
