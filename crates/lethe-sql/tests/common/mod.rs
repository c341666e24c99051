//! The shop policy and hand-built schemas (what introspection would find), and
//! text renderings of programs for snapshots.
#![allow(dead_code)]

use std::fmt::Write;

use lethe_core::{ColumnInfo, ForeignKeyInfo, Policy, Schema, TableInfo, UniqueInfo, parse_policy};
use lethe_sql::{DeleteProgram, MigrationStep, RestoreProgram, Stmt};

pub const SHOP: &str = include_str!("../fixtures/shop.toml");

pub fn shop() -> Policy {
    parse_policy(SHOP, "shop.toml").expect("the shop policy parses")
}

/// The shop with `[database] row_security = true`.
pub fn shop_with_row_security() -> Policy {
    let text = SHOP.replace(
        "url = \"sqlite:shop.db\"\n",
        "url = \"sqlite:shop.db\"\nrow_security = true\n",
    );
    assert_ne!(text, SHOP);
    let p = parse_policy(&text, "shop.toml").unwrap();
    assert!(p.database.row_security);
    p
}

/// A column: `"name type"` with an optional trailing `!` for NOT NULL.
pub fn col(spec: &str) -> ColumnInfo {
    let (spec, not_null) = match spec.strip_suffix('!') {
        Some(s) => (s, true),
        None => (spec, false),
    };
    let (name, ty) = spec.split_once(' ').expect("\"name type\"");
    ColumnInfo {
        name: name.to_string(),
        data_type: ty.to_string(),
        not_null,
        has_default: false,
        generated: false,
    }
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn table(name: &str, cols: &[&str], pk: &[&str]) -> TableInfo {
    TableInfo {
        name: name.to_string(),
        columns: cols.iter().map(|c| col(c)).collect(),
        primary_key: strings(pk),
        ..TableInfo::default()
    }
}

pub fn fk(cols: &[&str], ref_table: &str, on_delete: &str) -> ForeignKeyInfo {
    ForeignKeyInfo {
        name: format!("fk_{}_{}", cols.join("_"), ref_table),
        columns: strings(cols),
        ref_table: ref_table.to_string(),
        ref_columns: strings(&["id"]),
        on_delete: on_delete.to_string(),
    }
}

pub fn unique(name: &str, cols: &[&str]) -> UniqueInfo {
    UniqueInfo {
        name: name.to_string(),
        columns: strings(cols),
        partial: false,
        is_constraint: true,
        inline: false,
    }
}

fn schema(tables: Vec<TableInfo>) -> Schema {
    Schema {
        tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
        ..Schema::default()
    }
}

/// The shop's tables before `lethe migrate`: no marker columns except an
/// existing `orders.deleted_at`; `users.email` has a plain unique constraint.
pub fn fresh_schema() -> Schema {
    let mut users = table(
        "users",
        &["id bigint!", "email text!", "name text"],
        &["id"],
    );
    users.uniques.push(unique("users_email_key", &["email"]));
    let mut orders = table(
        "orders",
        &[
            "id bigint!",
            "user_id bigint!",
            "referred_by bigint",
            "total numeric(10,2)",
            "deleted_at timestamptz",
        ],
        &["id"],
    );
    orders.foreign_keys = vec![
        fk(&["user_id"], "users", "cascade"),
        fk(&["referred_by"], "users", "set null"),
    ];
    let mut order_items = table(
        "order_items",
        &[
            "order_id bigint!",
            "product_id bigint!",
            "quantity integer!",
        ],
        &["order_id", "product_id"],
    );
    order_items.foreign_keys = vec![
        fk(&["order_id"], "orders", "cascade"),
        fk(&["product_id"], "products", "cascade"),
    ];
    let mut products = table(
        "products",
        &[
            "id bigint!",
            "seller_id bigint!",
            "category_id bigint",
            "title text!",
        ],
        &["id"],
    );
    products.foreign_keys = vec![
        fk(&["seller_id"], "users", "cascade"),
        fk(&["category_id"], "categories", "restrict"),
    ];
    let mut reviews = table(
        "reviews",
        &[
            "id bigint!",
            "product_id bigint!",
            "user_id bigint",
            "order_id bigint",
            "body text",
        ],
        &["id"],
    );
    reviews.foreign_keys = vec![
        fk(&["product_id"], "products", "cascade"),
        fk(&["user_id"], "users", "set null"),
        fk(&["order_id"], "orders", "no action"),
    ];
    let mut cart_items = table(
        "cart_items",
        &[
            "id bigint!",
            "user_id bigint!",
            "product_id bigint!",
            "quantity integer!",
        ],
        &["id"],
    );
    cart_items.foreign_keys = vec![
        fk(&["user_id"], "users", "cascade"),
        fk(&["product_id"], "products", "cascade"),
    ];
    let mut categories = table(
        "categories",
        &["id bigint!", "parent_id bigint", "title text!"],
        &["id"],
    );
    categories.foreign_keys = vec![fk(&["parent_id"], "categories", "cascade")];
    let mut invoices = table(
        "invoices",
        &["id uuid!", "order_id bigint!", "amount numeric!"],
        &["id"],
    );
    invoices.foreign_keys = vec![fk(&["order_id"], "orders", "restrict")];
    schema(vec![
        users,
        orders,
        order_items,
        products,
        reviews,
        cart_items,
        categories,
        invoices,
    ])
}

/// The shop's tables with their marker columns (what delete and restore
/// render against).
pub fn shop_schema() -> Schema {
    let mut s = fresh_schema();
    for t in s.tables.values_mut() {
        if t.name == "cart_items" {
            continue; // hard: no markers
        }
        if !t.has_column("deleted_at") {
            t.columns.push(col("deleted_at timestamptz"));
        }
        t.columns.push(col("deletion_id uuid"));
    }
    s
}

/// The shop after a complete `lethe migrate` (PostgreSQL, row security on):
/// every object Lethe installs exists, under the names Lethe gives it.
pub fn migrated_schema(policy: &Policy) -> Schema {
    let mut s = shop_schema();
    // Every managed table has the delete guard; soft ones everything else.
    for e in policy.entities.values() {
        let t = s.tables.get_mut(&e.table).unwrap();
        t.triggers.insert(format!("lethe_guard_{}", e.table));
        t.triggers
            .insert(format!("lethe_guard_{}_truncate", e.table));
    }
    for e in policy.entities.values().filter(|e| e.is_soft()) {
        let t = s.tables.get_mut(&e.table).unwrap();
        let base = &e.table;
        t.indexes.insert(format!("lethe_{base}_deletion_id"));
        t.indexes.insert(format!("lethe_{base}_active_key"));
        for u in &e.unique {
            let name = format!("lethe_{base}_uq_{}", u.join("_"));
            t.indexes.insert(name.clone());
            t.uniques.retain(|x| x.columns != *u);
            t.uniques.push(UniqueInfo {
                name,
                columns: u.clone(),
                partial: true,
                is_constraint: false,
                inline: false,
            });
        }
        t.row_security = true;
        for p in [
            "lethe_hide_deleted",
            "lethe_allow_insert",
            "lethe_allow_update",
            "lethe_allow_delete",
        ] {
            t.policies.insert(p.to_string());
        }
        s.views.insert(format!("{base}_active"));
    }
    s
}

pub fn show_stmt(out: &mut String, label: &str, s: &Stmt) {
    let _ = writeln!(out, "-- {label} params: {:?}", s.params);
    let _ = writeln!(out, "{}\n", s.sql);
}

pub fn show_delete(p: &DeleteProgram) -> String {
    let mut out = String::new();
    for (i, s) in p.statements.iter().enumerate() {
        let label = format!("[{i}]{}", if s.reports { " reports" } else { "" });
        show_stmt(&mut out, &label, &s.stmt);
    }
    out
}

pub fn show_restore(p: &RestoreProgram) -> String {
    let mut out = String::new();
    for (i, s) in p.checks.iter().enumerate() {
        show_stmt(&mut out, &format!("check [{i}]"), s);
    }
    for (i, s) in p.apply.iter().enumerate() {
        show_stmt(&mut out, &format!("apply [{i}]"), s);
    }
    out
}

pub fn show_steps(steps: &[MigrationStep]) -> String {
    let mut out = String::new();
    for s in steps {
        let _ = writeln!(out, "== {}: {}", s.id, s.description);
        if let Some(b) = &s.blocked {
            let _ = writeln!(out, "BLOCKED: {b}");
        }
        for st in &s.statements {
            let _ = writeln!(out, "{st};");
        }
        let _ = writeln!(out);
    }
    out
}

/// `sql` with its single-quoted string literals blanked out (`''` escapes
/// included), so checks look at SQL tokens only.
pub fn strip_literals(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_lit = false;
    for ch in sql.chars() {
        if ch == '\'' {
            in_lit = !in_lit;
            out.push('\'');
        } else if in_lit {
            out.push(' ');
        } else {
            out.push(ch);
        }
    }
    assert!(!in_lit, "unterminated literal in {sql}");
    out
}
