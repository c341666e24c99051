//! `check_policy`: the shop policy against a hand-built schema. The baseline
//! matches exactly (no findings); each test changes one thing and expects
//! exactly the findings that change causes.

mod common;

use common::{col, fk, shop, shop_schema, shop_schema_unindexed, unique};
use lethe_core::{Finding, Level, Policy, Schema, TableInfo, check_policy, parse_policy};

fn tweak(table: &str, f: impl FnOnce(&mut TableInfo)) -> Schema {
    let mut s = shop_schema();
    f(s.tables.get_mut(table).expect("shop table"));
    s
}

fn drop_column(t: &mut TableInfo, name: &str) {
    let before = t.columns.len();
    t.columns.retain(|c| c.name != name);
    assert_eq!(t.columns.len(), before - 1, "no column {name}");
}

/// `(level, key, line)` of each finding.
fn summary(f: &[Finding]) -> Vec<(Level, String, Option<usize>)> {
    f.iter().map(|f| (f.level, f.key.clone(), f.line)).collect()
}

fn entity_line(p: &Policy, e: &str) -> Option<usize> {
    Some(p.entities[e].line)
}

/// Index and line of the relation `child.cols -> parent`.
fn relation(p: &Policy, describe: &str) -> (usize, Option<usize>) {
    let i = p
        .relations
        .iter()
        .position(|r| r.describe() == describe)
        .unwrap_or_else(|| panic!("no relation {describe}"));
    (i, Some(p.relations[i].line))
}

#[test]
fn matching_schema_has_no_findings() {
    let f = check_policy(&shop(), &shop_schema());
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn unknown_table() {
    let p = shop();
    let mut s = shop_schema();
    s.tables.remove("invoices");
    let f = check_policy(&p, &s);
    assert_eq!(
        summary(&f),
        [(
            Level::Error,
            "entities.invoices".to_string(),
            entity_line(&p, "invoices")
        )]
    );
    assert!(
        f[0].message.contains("unknown table \"invoices\""),
        "{}",
        f[0]
    );
    // Line from the fixture: [entities.invoices] is at this line.
    let header = common::SHOP
        .lines()
        .position(|l| l == "[entities.invoices]")
        .unwrap()
        + 1;
    assert_eq!(f[0].line, Some(header));
    assert_eq!(
        f[0].to_string(),
        format!("error: line {header}: entities.invoices: {}", f[0].message)
    );
}

#[test]
fn unknown_key_column() {
    let p = shop();
    let f = check_policy(&p, &tweak("orders", |t| drop_column(t, "id")));
    // The key is missing, so the "not unique" warning is not also given.
    assert_eq!(
        summary(&f),
        [(
            Level::Error,
            "entities.orders.key".to_string(),
            entity_line(&p, "orders")
        )]
    );
    assert!(
        f[0].message.contains("unknown column \"orders.id\""),
        "{}",
        f[0]
    );
}

#[test]
fn unknown_unique_and_pii_column() {
    let p = shop();
    let f = check_policy(
        &p,
        &tweak("users", |t| {
            drop_column(t, "email");
            t.uniques.clear();
        }),
    );
    let line = entity_line(&p, "users");
    assert_eq!(
        summary(&f),
        [
            (Level::Error, "entities.users.unique".to_string(), line),
            (Level::Error, "entities.users.pii".to_string(), line),
        ]
    );
    assert!(f.iter().all(|f| f.message.contains("\"users.email\"")));
}

#[test]
fn unknown_pii_column_alone() {
    let p = shop();
    let f = check_policy(&p, &tweak("users", |t| drop_column(t, "name")));
    assert_eq!(
        summary(&f),
        [(
            Level::Error,
            "entities.users.pii".to_string(),
            entity_line(&p, "users")
        )]
    );
    assert!(f[0].message.contains("unknown column \"users.name\""));
}

#[test]
fn unknown_relation_column() {
    let p = shop();
    let f = check_policy(
        &p,
        &tweak("reviews", |t| {
            drop_column(t, "order_id");
            t.foreign_keys.retain(|f| f.columns != ["order_id"]);
        }),
    );
    let (i, line) = relation(&p, "reviews.order_id -> orders");
    assert_eq!(
        summary(&f),
        [(Level::Error, format!("relations[{i}].columns"), line)]
    );
    assert!(f[0].message.contains("unknown column \"reviews.order_id\""));
}

#[test]
fn set_null_on_not_null_column() {
    let p = shop();
    let f = check_policy(
        &p,
        &tweak("reviews", |t| {
            t.columns
                .iter_mut()
                .find(|c| c.name == "user_id")
                .unwrap()
                .not_null = true
        }),
    );
    let (i, line) = relation(&p, "reviews.user_id -> users");
    assert_eq!(
        summary(&f),
        [(Level::Error, format!("relations[{i}].on_delete"), line)]
    );
    assert!(
        f[0].message
            .contains("set_null on NOT NULL column \"reviews.user_id\"")
    );
}

#[test]
fn not_null_is_fine_for_other_rules() {
    // orders.user_id is NOT NULL and cascade: no finding (baseline covers it),
    // and a nullable set_null column is fine (reviews.user_id).
    let s = shop_schema();
    assert!(s.tables["orders"].column("user_id").unwrap().not_null);
    assert!(check_policy(&shop(), &s).is_empty());
}

#[test]
fn key_not_unique_is_a_warning() {
    let p = shop();
    let f = check_policy(&p, &tweak("order_items", |t| t.primary_key.clear()));
    assert_eq!(
        summary(&f),
        [(
            Level::Warning,
            "entities.order_items.key".to_string(),
            entity_line(&p, "order_items")
        )]
    );
    assert!(f[0].message.contains("(order_id, product_id)"));
    assert!(f[0].to_string().starts_with("warning: line "));

    // A primary key in another column order is the same key.
    let f = check_policy(&p, &tweak("order_items", |t| t.primary_key.reverse()));
    assert!(f.is_empty(), "{f:#?}");

    // A primary key on a subset is not the key.
    let f = check_policy(&p, &tweak("order_items", |t| t.primary_key.truncate(1)));
    assert_eq!(f.len(), 1);

    // A full unique constraint counts; a partial unique index does not.
    let f = check_policy(
        &p,
        &tweak("products", |t| {
            t.primary_key.clear();
            t.uniques.push(unique("products_id_key", &["id"]));
        }),
    );
    assert!(f.is_empty(), "{f:#?}");
    let f = check_policy(
        &p,
        &tweak("products", |t| {
            t.primary_key.clear();
            let mut u = unique("products_id_active", &["id"]);
            u.partial = true;
            t.uniques.push(u);
        }),
    );
    assert_eq!(summary(&f).len(), 1);
    assert_eq!(f[0].level, Level::Warning);
}

#[test]
fn marker_column_not_null_is_an_error() {
    let p = shop();
    let f = check_policy(
        &p,
        &tweak("users", |t| {
            t.columns
                .iter_mut()
                .find(|c| c.name == "deleted_at")
                .unwrap()
                .not_null = true
        }),
    );
    assert_eq!(
        summary(&f),
        [(
            Level::Error,
            "entities.users.deleted_at".to_string(),
            entity_line(&p, "users")
        )]
    );
    assert!(f[0].message.contains("\"deleted_at\" is NOT NULL"));

    // A hard entity's columns are no markers.
    let f = check_policy(
        &p,
        &tweak("cart_items", |t| {
            t.columns.push(col("deleted_at timestamptz!"))
        }),
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn missing_marker_columns_are_no_finding() {
    // `lethe migrate` adds them.
    let f = check_policy(
        &shop(),
        &tweak("users", |t| {
            drop_column(t, "deleted_at");
            drop_column(t, "deletion_id");
        }),
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn undeclared_foreign_key_is_a_warning() {
    let p = shop();
    let f = check_policy(
        &p,
        &tweak("reviews", |t| {
            t.columns.push(col("editor_id bigint"));
            t.foreign_keys
                .push(fk(&["editor_id"], "users", &["id"], "set null"));
        }),
    );
    assert_eq!(
        summary(&f),
        [(
            Level::Warning,
            "entities.reviews".to_string(),
            entity_line(&p, "reviews")
        )]
    );
    assert!(f[0].message.contains("reviews.(editor_id) -> users"));
    assert!(f[0].message.contains("ON DELETE SET NULL"));

    // A foreign key to an unmanaged table is none of Lethe's business.
    let f = check_policy(
        &p,
        &tweak("reviews", |t| {
            t.columns.push(col("locale_id bigint"));
            t.foreign_keys
                .push(fk(&["locale_id"], "locales", &["id"], "restrict"));
        }),
    );
    assert!(f.is_empty(), "{f:#?}");
}

fn with_hard_products() -> Policy {
    let text = common::SHOP.replace(
        "[entities.products]\nkey = [\"id\"]\n",
        "[entities.products]\nkey = [\"id\"]\nstrategy = \"hard\"\n",
    );
    assert_ne!(text, common::SHOP);
    parse_policy(&text, "shop.toml").unwrap()
}

#[test]
fn hard_parent_with_soft_cascade_child_and_foreign_key_is_an_error() {
    let p = with_hard_products();
    let f = check_policy(&p, &shop_schema());
    let (oi, oi_line) = relation(&p, "order_items.product_id -> products");
    let (rv, rv_line) = relation(&p, "reviews.product_id -> products");
    // cart_items is hard itself: its rows leave with the parent, no error.
    assert_eq!(
        summary(&f),
        [
            (Level::Error, format!("relations[{oi}]"), oi_line),
            (Level::Error, format!("relations[{rv}]"), rv_line),
        ]
    );
    assert!(
        f[0].message.contains("\"products\" is hard-deleted"),
        "{}",
        f[0]
    );
    assert!(f[0].message.contains("order_items.(product_id)"));

    // Without the database foreign key, nothing refuses the delete.
    let s = tweak("reviews", |t| {
        t.foreign_keys.retain(|f| f.columns != ["product_id"])
    });
    let f = check_policy(&p, &s);
    assert_eq!(
        summary(&f),
        [(Level::Error, format!("relations[{oi}]"), oi_line)]
    );
}

#[test]
fn hard_parent_with_soft_children_and_foreign_keys_is_an_error() {
    let text = common::SHOP
        .replace(
            "[entities.orders]\nkey = [\"id\"]\n",
            "[entities.orders]\nkey = [\"id\"]\nstrategy = \"hard\"\n",
        )
        .replace(
            "child = \"order_items\"\ncolumns = [\"order_id\"]\nparent = \"orders\"\non_delete = \"cascade\"",
            "child = \"order_items\"\ncolumns = [\"order_id\"]\nparent = \"orders\"\non_delete = \"keep\"",
        );
    let p = parse_policy(&text, "shop.toml").unwrap();
    assert!(!p.entities["orders"].is_soft());
    let f = check_policy(&p, &shop_schema());
    let (i, line) = relation(&p, "order_items.order_id -> orders");
    // reviews.order_id and invoices.order_id are restrict, but their children
    // are soft: rows soft-deleted earlier keep referencing the order, so the
    // database would still refuse to remove it.
    let (rv, rv_line) = relation(&p, "reviews.order_id -> orders");
    let (inv, inv_line) = relation(&p, "invoices.order_id -> orders");
    assert_eq!(
        summary(&f),
        [
            (Level::Error, format!("relations[{i}]"), line),
            (Level::Error, format!("relations[{rv}]"), rv_line),
            (Level::Error, format!("relations[{inv}]"), inv_line),
        ]
    );
    assert!(f[0].message.contains("(soft keep;"), "{}", f[0]);
    assert!(f[1].message.contains("(soft restrict;"), "{}", f[1]);
}

#[test]
fn errors_come_before_warnings() {
    let p = shop();
    let mut s = tweak("order_items", |t| t.primary_key.clear());
    s.tables.remove("invoices");
    let f = check_policy(&p, &s);
    let levels: Vec<Level> = f.iter().map(|f| f.level).collect();
    assert_eq!(levels, [Level::Error, Level::Warning]);
}

#[test]
fn hard_entity_with_unique_is_a_warning() {
    let text = common::SHOP.replace(
        "[entities.cart_items]\nkey = [\"id\"]\n",
        "[entities.cart_items]\nkey = [\"id\"]\nunique = [[\"user_id\", \"product_id\"]]\n",
    );
    let p = parse_policy(&text, "shop.toml").unwrap();
    let f = check_policy(&p, &shop_schema());
    assert_eq!(
        summary(&f),
        [(
            Level::Warning,
            "entities.cart_items.unique".to_string(),
            entity_line(&p, "cart_items")
        )]
    );
}

#[test]
fn unindexed_relation_columns_are_a_warning() {
    let p = shop();
    let mut schema = shop_schema();
    schema
        .tables
        .get_mut("reviews")
        .unwrap()
        .index_columns
        .clear();
    let f = check_policy(&p, &schema);
    let (i, line) = relation(&p, "reviews.product_id -> products");
    let hit = f
        .iter()
        .find(|f| {
            f.key == format!("relations[{i}]")
                && f.message.contains("no index on reviews(product_id)")
        })
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!((hit.level, hit.line), (Level::Warning, line));
    assert!(f.iter().all(|f| f.level == Level::Warning));
    // A composite primary key that starts with the columns counts as an index.
    let mut schema = shop_schema_unindexed();
    schema
        .tables
        .values_mut()
        .for_each(|t| t.index_columns.clear());
    let f = check_policy(&p, &schema);
    assert!(
        !f.iter()
            .any(|f| f.message.contains("no index on order_items(order_id)")),
        "{f:#?}"
    );
}

#[test]
fn adopted_marker_columns_must_hold_what_lethe_writes() {
    let p = shop();
    let schema = tweak("users", |t| {
        for c in &mut t.columns {
            match c.name.as_str() {
                "deleted_at" => c.data_type = "boolean".into(),
                "deletion_id" => c.data_type = "integer".into(),
                _ => {}
            }
        }
    });
    let f = check_policy(&p, &schema);
    let errors: Vec<&str> = f
        .iter()
        .filter(|f| f.level == Level::Error)
        .map(|f| f.key.as_str())
        .collect();
    assert_eq!(
        errors,
        vec!["entities.users.deleted_at", "entities.users.deletion_id"],
        "{f:#?}"
    );
    assert!(f[0].message.contains("boolean") && f[0].message.contains("timestamp"));
    // Text and timestamp types are fine.
    let schema = tweak("users", |t| {
        for c in &mut t.columns {
            if c.name == "deleted_at" {
                c.data_type = "timestamp without time zone".into();
            }
            if c.name == "deletion_id" {
                c.data_type = "character varying(36)".into();
            }
        }
    });
    assert!(check_policy(&p, &schema).is_empty());
}

#[test]
fn relation_columns_must_follow_the_parent_key_order() {
    // A composite key (order_id, product_id) referenced with the columns
    // listed the other way round would pair them wrongly.
    let text = common::SHOP.to_string()
        + "\n[entities.shipments]\nkey = [\"id\"]\n\n[[relations]]\nchild = \"shipments\"\ncolumns = [\"item_product\", \"item_order\"]\nparent = \"order_items\"\non_delete = \"cascade\"\n";
    let p = parse_policy(&text, "shop.toml").unwrap();
    let mut schema = shop_schema();
    let mut t = common::table(
        "shipments",
        &[
            "id bigint!",
            "item_order bigint!",
            "item_product bigint!",
            "deleted_at timestamptz",
            "deletion_id uuid",
        ],
        &["id"],
    );
    // The database's key lists them as (item_order, item_product).
    t.foreign_keys = vec![fk(
        &["item_order", "item_product"],
        "order_items",
        &["order_id", "product_id"],
        "cascade",
    )];
    t.index_columns
        .push(vec!["item_order".into(), "item_product".into()]);
    schema.tables.insert("shipments".into(), t);
    let f = check_policy(&p, &schema);
    let hit = f
        .iter()
        .find(|f| f.level == Level::Error && f.message.contains("order of the parent's key"))
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert!(
        hit.message
            .contains("columns = [\"item_order\", \"item_product\"]"),
        "{}",
        hit.message
    );
}

#[test]
fn delivery_columns_must_exist() {
    let text = common::SHOP.replace(
        "[entities.products]\nkey = [\"id\"]\n",
        "[entities.products]\nkey = [\"id\"]\ncache_keys = [\"product:{sku}\"]\nsearch = { sink = \"search\", index = \"products\", fields = [\"blurb\"] }\n",
    ) + "\n[sinks.cache]\nkind = \"redis\"\nurl = \"redis://127.0.0.1/\"\n\n[sinks.search]\nkind = \"tantivy\"\npath = \"idx\"\n";
    let p = lethe_core::parse_policy(&text, "shop.toml").unwrap_or_else(|e| panic!("{e}"));
    let f = check_policy(&p, &shop_schema());
    let msgs: Vec<String> = f
        .iter()
        .map(|f| format!("{}: {}", f.key, f.message))
        .collect();
    assert_eq!(
        msgs,
        vec![
            "entities.products.cache_keys: unknown column \"products.sku\"".to_string(),
            "entities.products.search: unknown column \"products.blurb\"".to_string(),
        ]
    );
}

#[test]
fn unknown_subject_column() {
    let text = common::SHOP.replace(
        "[entities.reviews]\nkey = [\"id\"]",
        "[entities.reviews]\nkey = [\"id\"]\nsubject_columns = [\"author\"]",
    );
    let p = parse_policy(
        &format!("[erasure]\nsubject = \"users\"\n{text}"),
        "shop.toml",
    )
    .unwrap();
    let f = check_policy(&p, &shop_schema());
    assert_eq!(
        summary(&f),
        [(
            Level::Error,
            "entities.reviews.subject_columns".to_string(),
            entity_line(&p, "reviews")
        )]
    );
    assert!(
        f[0].message.contains("unknown column \"reviews.author\""),
        "{}",
        f[0]
    );
}
