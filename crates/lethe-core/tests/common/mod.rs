//! Hand-built schemas for the integration tests: what introspection would find.
#![allow(dead_code)]

use lethe_core::{ColumnInfo, ForeignKeyInfo, Policy, Schema, TableInfo, UniqueInfo, parse_policy};

pub const SHOP: &str = include_str!("../fixtures/shop.toml");

pub fn shop() -> Policy {
    parse_policy(SHOP, "shop.toml").expect("the shop policy parses")
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

pub fn fk(cols: &[&str], ref_table: &str, ref_cols: &[&str], on_delete: &str) -> ForeignKeyInfo {
    ForeignKeyInfo {
        name: format!("fk_{}_{}", cols.join("_"), ref_table),
        columns: strings(cols),
        ref_table: ref_table.to_string(),
        ref_columns: strings(ref_cols),
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

pub fn schema(tables: Vec<TableInfo>) -> Schema {
    Schema {
        tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
        ..Schema::default()
    }
}

/// The shop's tables, matching `fixtures/shop.toml` exactly: every column,
/// key and foreign key the policy names, markers nullable, foreign keys
/// declared as relations.
pub fn shop_schema() -> Schema {
    let mut s = shop_schema_unindexed();
    // Foreign key columns are indexed, as a well-kept schema has them.
    for t in s.tables.values_mut() {
        let fks: Vec<Vec<String>> = t.foreign_keys.iter().map(|f| f.columns.clone()).collect();
        t.index_columns.extend(fks);
    }
    s
}

/// [`shop_schema`] without indexes on the foreign key columns.
pub fn shop_schema_unindexed() -> Schema {
    let markers = ["deleted_at timestamptz", "deletion_id uuid"];
    let with = |cols: &[&'static str]| -> Vec<&'static str> {
        cols.iter().chain(markers.iter()).copied().collect()
    };
    let mut users = table(
        "users",
        &with(&["id bigint!", "email text!", "name text"]),
        &["id"],
    );
    users.uniques.push(unique("users_email_key", &["email"]));
    let mut orders = table(
        "orders",
        &with(&[
            "id bigint!",
            "user_id bigint!",
            "referred_by bigint",
            "total numeric(10,2)",
        ]),
        &["id"],
    );
    orders.foreign_keys = vec![
        fk(&["user_id"], "users", &["id"], "cascade"),
        fk(&["referred_by"], "users", &["id"], "set null"),
    ];
    let mut order_items = table(
        "order_items",
        &with(&[
            "order_id bigint!",
            "product_id bigint!",
            "quantity integer!",
        ]),
        &["order_id", "product_id"],
    );
    order_items.foreign_keys = vec![
        fk(&["order_id"], "orders", &["id"], "cascade"),
        fk(&["product_id"], "products", &["id"], "cascade"),
    ];
    let mut products = table(
        "products",
        &with(&[
            "id bigint!",
            "seller_id bigint!",
            "category_id bigint",
            "title text!",
        ]),
        &["id"],
    );
    products.foreign_keys = vec![
        fk(&["seller_id"], "users", &["id"], "cascade"),
        fk(&["category_id"], "categories", &["id"], "restrict"),
    ];
    let mut reviews = table(
        "reviews",
        &with(&[
            "id bigint!",
            "product_id bigint!",
            "user_id bigint",
            "order_id bigint",
            "body text",
        ]),
        &["id"],
    );
    reviews.foreign_keys = vec![
        fk(&["product_id"], "products", &["id"], "cascade"),
        fk(&["user_id"], "users", &["id"], "set null"),
        fk(&["order_id"], "orders", &["id"], "no action"),
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
        fk(&["user_id"], "users", &["id"], "cascade"),
        fk(&["product_id"], "products", &["id"], "cascade"),
    ];
    let mut categories = table(
        "categories",
        &with(&["id bigint!", "parent_id bigint", "title text!"]),
        &["id"],
    );
    categories.foreign_keys = vec![fk(&["parent_id"], "categories", &["id"], "cascade")];
    let mut invoices = table(
        "invoices",
        &with(&["id uuid!", "order_id bigint!", "amount numeric!"]),
        &["id"],
    );
    invoices.foreign_keys = vec![fk(&["order_id"], "orders", &["id"], "restrict")];
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
