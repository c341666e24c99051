//! Snapshots of the generated SQL for the shop policy (tests/fixtures/shop.toml)
//! on each dialect. Review a changed snapshot as you would review SQL written
//! by hand; accept with `cargo insta accept` (or INSTA_UPDATE=always).

mod common;

use common::{
    fresh_schema, migrated_schema, shop, shop_schema, shop_with_row_security, show_delete,
    show_restore, show_steps,
};
use lethe_core::{Entity, plan_delete};
use lethe_sql::{Dialect, Mode, RestoreEntity, plan_migration, render_delete, render_restore};

fn delete(d: Dialect, root: &str, mode: Mode) -> String {
    let p = shop();
    let plan = plan_delete(&p, root).unwrap();
    let order: Vec<&str> = plan.nodes.iter().map(|n| n.entity.name.as_str()).collect();
    format!(
        "-- {} {mode:?} delete of {root}; plan: {}\n\n{}",
        d.name(),
        order.join(", "),
        show_delete(&render_delete(d, &plan, &shop_schema(), mode))
    )
}

macro_rules! delete_snapshots {
    ($($name:ident: $d:expr, $root:expr, $mode:expr;)*) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(delete($d, $root, $mode));
        }
    )*};
}

delete_snapshots! {
    delete_postgres_execute_users: Dialect::Postgres, "users", Mode::Execute;
    delete_postgres_preview_users: Dialect::Postgres, "users", Mode::Preview;
    delete_postgres_execute_products: Dialect::Postgres, "products", Mode::Execute;
    delete_postgres_preview_products: Dialect::Postgres, "products", Mode::Preview;
    delete_postgres_execute_categories: Dialect::Postgres, "categories", Mode::Execute;
    delete_postgres_preview_categories: Dialect::Postgres, "categories", Mode::Preview;
    delete_sqlite_execute_users: Dialect::Sqlite, "users", Mode::Execute;
    delete_sqlite_preview_users: Dialect::Sqlite, "users", Mode::Preview;
    delete_sqlite_execute_products: Dialect::Sqlite, "products", Mode::Execute;
    delete_sqlite_preview_products: Dialect::Sqlite, "products", Mode::Preview;
    delete_sqlite_execute_categories: Dialect::Sqlite, "categories", Mode::Execute;
    delete_sqlite_preview_categories: Dialect::Sqlite, "categories", Mode::Preview;
}

/// The restore of a deletion of a user: every entity of the plan, and the
/// set-null children.
fn restore(d: Dialect) -> String {
    let p = shop();
    let plan = plan_delete(&p, "users").unwrap();
    let entities: Vec<RestoreEntity<'_>> = plan
        .nodes
        .iter()
        .map(|n| RestoreEntity::as_deleted(&n.entity, &shop_schema()))
        .collect();
    let mut nullified: Vec<&Entity> = Vec::new();
    for s in &plan.set_nulls {
        if !nullified.iter().any(|e| e.name == s.child.name) {
            nullified.push(&s.child);
        }
    }
    format!(
        "-- {} restore of a deletion of users; entities: {}; nullified: {}\n\n{}",
        d.name(),
        entities
            .iter()
            .map(|e| format!("{} ({})", e.entity.name, e.entity.strategy))
            .collect::<Vec<_>>()
            .join(", "),
        nullified
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        show_restore(&render_restore(
            d,
            &p,
            &shop_schema(),
            &entities,
            &nullified
        ))
    )
}

#[test]
fn restore_postgres_users() {
    insta::assert_snapshot!(restore(Dialect::Postgres));
}

#[test]
fn restore_sqlite_users() {
    insta::assert_snapshot!(restore(Dialect::Sqlite));
}

#[test]
fn migrate_postgres_fresh() {
    let p = shop_with_row_security();
    let steps = plan_migration(Dialect::Postgres, &p, &fresh_schema(), &[]);
    insta::assert_snapshot!(show_steps(&steps));
}

#[test]
fn migrate_sqlite_fresh() {
    // SQLite: a unique index (not a constraint) on users.email.
    let p = shop_with_row_security();
    let mut s = fresh_schema();
    let u = &mut s.tables.get_mut("users").unwrap().uniques[0];
    u.is_constraint = false;
    u.name = "users_email_idx".into();
    let steps = plan_migration(Dialect::Sqlite, &p, &s, &[]);
    insta::assert_snapshot!(show_steps(&steps));
}

#[test]
fn migrate_is_idempotent_when_everything_exists() {
    let p = shop_with_row_security();
    let s = migrated_schema(&p);
    for d in [Dialect::Postgres, Dialect::Sqlite] {
        let steps = plan_migration(d, &p, &s, &installed());
        assert!(
            steps.is_empty(),
            "{}: a second migrate must find nothing to do, got:\n{}",
            d.name(),
            show_steps(&steps)
        );
    }
}

#[test]
fn migrate_redoes_only_what_is_missing() {
    let p = shop_with_row_security();
    let mut s = migrated_schema(&p);
    s.views.remove("orders_active");
    s.tables
        .get_mut("users")
        .unwrap()
        .triggers
        .remove("lethe_guard_users");
    let ids: Vec<String> = plan_migration(Dialect::Postgres, &p, &s, &installed())
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["orders:view:active", "users:guard"]);

    // A marker column added later: the view (SELECT *) is recreated with it.
    let mut s = migrated_schema(&p);
    s.tables
        .get_mut("reviews")
        .unwrap()
        .columns
        .retain(|c| c.name != "deletion_id");
    let steps = plan_migration(Dialect::Postgres, &p, &s, &installed());
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["reviews:column:deletion_id", "reviews:view:active"]);
    assert_eq!(
        steps[1].statements,
        [
            "DROP VIEW \"reviews_active\"",
            "CREATE VIEW \"reviews_active\" AS SELECT * FROM \"reviews\" WHERE \"deleted_at\" IS NULL"
        ]
    );
}

/// Every version of Lethe's own tables, as in a migrated database.
fn installed() -> Vec<String> {
    lethe_sql::INTERNAL_VERSIONS
        .iter()
        .map(|v| v.to_string())
        .collect()
}

/// The shop's policy for erasure: users anonymized (a hash and a
/// redaction), orders kept, everything else deleted.
fn erasure_policy() -> (lethe_core::Policy, lethe_core::ErasurePlan) {
    let text = common::SHOP
        .replace(
            "pii = { email = \"hash\", name = \"redact\" }",
            "pii = { email = \"hash\", name = \"redact\" }\nerase = \"anonymize\"",
        )
        .replace(
            "[entities.orders]\nkey = [\"id\"]",
            "[entities.orders]\nkey = [\"id\"]\nerase = \"keep\"\nlegal_basis = \"invoices\"",
        )
        + "\n[erasure]\nsubject = \"users\"\n";
    let p = lethe_core::parse_policy(&text, "shop.toml").unwrap();
    let plan = lethe_core::plan_erasure(&p).unwrap();
    (p, plan)
}

/// The erasure of a user in the shop: scope tables parents first, changes
/// children first, then the residue and raw-scan queries, and on
/// PostgreSQL the table step as one statement.
fn erasure(d: Dialect, by: lethe_sql::erasure::SubjectBy) -> String {
    let (p, plan) = erasure_policy();
    let sql = lethe_sql::erasure::render_erasure(d, &p, &shop_schema(), &plan, by, None);
    let show = |s: &lethe_sql::Stmt| format!("{};  -- {:?}", s.sql, s.params);
    let mut out = vec![format!("-- {} erasure of users by {by:?}", d.name())];
    out.push("-- scope".into());
    out.extend(sql.scope.iter().map(show));
    out.push("-- counts".into());
    out.push(show(&sql.counts));
    out.push("-- pii hashes".into());
    out.push(show(&sql.pii_hashes));
    out.push("-- changes".into());
    out.extend(sql.changes.iter().map(show));
    out.push("-- residue".into());
    out.push(show(&sql.residue));
    out.push("-- scan".into());
    out.extend(sql.scan.iter().map(show));
    out.push("-- the table step as one statement".into());
    out.extend(sql.step.iter().map(show));
    out.join("\n")
}

#[test]
fn erasure_postgres_by_key() {
    insta::assert_snapshot!(erasure(
        Dialect::Postgres,
        lethe_sql::erasure::SubjectBy::Key
    ));
}

/// The table step when the archive store holds rows of users only: no
/// store scope, no store branch for the other entities, and a recheck that
/// the store still holds none of theirs.
#[test]
fn erasure_postgres_step_with_users_stored_only() {
    let (p, plan) = erasure_policy();
    let stored: std::collections::BTreeSet<String> = ["users".to_string()].into();
    let sql = lethe_sql::erasure::render_erasure(
        Dialect::Postgres,
        &p,
        &shop_schema(),
        &plan,
        lethe_sql::erasure::SubjectBy::Key,
        Some(&stored),
    );
    let step = sql.step.unwrap();
    insta::assert_snapshot!(format!("{};  -- {:?}", step.sql, step.params));
}

#[test]
fn erasure_sqlite_by_key() {
    insta::assert_snapshot!(erasure(Dialect::Sqlite, lethe_sql::erasure::SubjectBy::Key));
}

#[test]
fn erasure_postgres_by_hash_scope() {
    let all = erasure(Dialect::Postgres, lethe_sql::erasure::SubjectBy::Hash);
    let scope: Vec<&str> = all
        .lines()
        .skip_while(|l| *l != "-- scope")
        .take_while(|l| *l != "-- counts")
        .collect();
    insta::assert_snapshot!(scope.join("\n"));
}
