//! `policy_from_schema` (`lethe init`): what it writes must parse, and must say
//! what the schema says.

mod common;

use common::{fk, schema, strings, table, unique};
use lethe_core::{OnDelete, Policy, Schema, Strategy, parse_policy, policy_from_schema};

const URL: &str = "postgres://app@localhost/shop";

fn shop_like() -> Schema {
    let mut users = table(
        "users",
        &["id bigint!", "email text!", "name text", "phone text"],
        &["id"],
    );
    users.uniques.push(unique("users_email_key", &["email"]));
    let mut teams = table("teams", &["id bigint!", "slug text!"], &["id"]);
    // A unique index that is partial is not a key and not a unique set.
    let mut partial = unique("teams_slug_live", &["slug"]);
    partial.partial = true;
    teams.uniques.push(partial);
    let mut memberships = table(
        "memberships",
        &[
            "team_id bigint!",
            "user_id bigint!",
            "role text!",
            "invited_by bigint",
            "removed_at timestamptz",
        ],
        &["team_id", "user_id"],
    );
    memberships.foreign_keys = vec![
        fk(&["team_id"], "teams", &["id"], "cascade"),
        fk(&["user_id"], "users", &["id"], "restrict"),
        fk(&["invited_by"], "users", &["id"], "set null"),
    ];
    // A child of the composite key, with each remaining ON DELETE action.
    let mut grants = table(
        "grants",
        &[
            "id bigint!",
            "team_id bigint!",
            "user_id bigint!",
            "scope text!",
            "granted_by bigint",
            "deleted_at timestamptz",
        ],
        &["id"],
    );
    grants
        .uniques
        .push(unique("grants_scope_key", &["team_id", "user_id", "scope"]));
    grants.foreign_keys = vec![
        fk(
            &["team_id", "user_id"],
            "memberships",
            &["team_id", "user_id"],
            "no action",
        ),
        fk(&["granted_by"], "users", &["id"], "set default"),
    ];
    let mut notes = table(
        "notes",
        &["id bigint!", "parent_id bigint", "body text"],
        &["id"],
    );
    notes.foreign_keys = vec![fk(&["parent_id"], "notes", &["id"], "cascade")];
    // Lethe's own tables are skipped, and so are foreign keys to them.
    let lethe_outbox = table("lethe_outbox", &["id bigint!"], &["id"]);
    let mut audit_refs = table("audit_refs", &["id bigint!", "outbox_id bigint"], &[]);
    audit_refs
        .uniques
        .push(unique("audit_refs_id_key", &["id"]));
    audit_refs.foreign_keys = vec![fk(&["outbox_id"], "lethe_outbox", &["id"], "cascade")];
    schema(vec![
        users,
        teams,
        memberships,
        grants,
        notes,
        lethe_outbox,
        audit_refs,
    ])
}

fn init(s: &Schema) -> (String, Policy) {
    let text = policy_from_schema(s, URL);
    match parse_policy(&text, "lethe.toml") {
        Ok(p) => (text, p),
        Err(e) => panic!("lethe init wrote a policy that does not parse: {e}\n{text}"),
    }
}

#[test]
fn init_output_parses_and_describes_the_schema() {
    let (text, p) = init(&shop_like());
    assert_eq!(p.database.url.as_deref(), Some(URL));
    assert!(!p.database.row_security);

    let names: Vec<&str> = p.entities.keys().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "audit_refs",
            "grants",
            "memberships",
            "notes",
            "teams",
            "users"
        ],
        "every table but Lethe's own"
    );
    for e in p.entities.values() {
        assert_eq!(e.table, e.name);
        assert_eq!(e.strategy, Strategy::Soft);
        assert_eq!(e.deletion_id, "deletion_id");
        assert!(e.pii.is_empty(), "PII is only suggested, commented out");
    }
    assert_eq!(
        p.entities["memberships"].key,
        strings(&["team_id", "user_id"])
    );
    assert_eq!(
        p.entities["audit_refs"].key,
        strings(&["id"]),
        "no primary key: the first full unique constraint is the key"
    );
    // An existing marker column is adopted.
    assert_eq!(p.entities["memberships"].deleted_at, "removed_at");
    assert_eq!(p.entities["grants"].deleted_at, "deleted_at");
    assert_eq!(p.entities["users"].deleted_at, "deleted_at");
    // Unique constraints other than the key become active-only unique sets.
    assert_eq!(p.entities["users"].unique, vec![strings(&["email"])]);
    assert_eq!(
        p.entities["grants"].unique,
        vec![strings(&["team_id", "user_id", "scope"])]
    );
    assert!(
        p.entities["teams"].unique.is_empty(),
        "partial unique skipped"
    );
    assert!(
        p.entities["audit_refs"].unique.is_empty(),
        "the key is not repeated"
    );

    let rels: Vec<String> = p
        .relations
        .iter()
        .map(|r| format!("{} {}", r.describe(), r.on_delete))
        .collect();
    let mut sorted = rels.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "grants.granted_by -> users keep",
            "grants.team_id,user_id -> memberships restrict",
            "memberships.invited_by -> users set_null",
            "memberships.team_id -> teams cascade",
            "memberships.user_id -> users restrict",
            "notes.parent_id -> notes cascade",
        ],
        "each ON DELETE action mapped; the foreign key to lethe_outbox skipped"
    );
    assert!(text.contains("on_delete = \"restrict\"   # ON DELETE NO ACTION"));
    assert!(text.contains("on_delete = \"keep\"   # was ON DELETE SET DEFAULT: review"));
    assert!(text.contains("# pii = { email = \"hash\", phone = \"null\", name = \"redact\" }"));
    assert!(
        p.relations
            .iter()
            .any(|r| r.on_delete == OnDelete::Cascade && r.is_self_reference())
    );
}

#[test]
fn init_output_for_an_empty_schema_parses() {
    let (_, p) = init(&Schema::default());
    assert!(p.entities.is_empty() && p.relations.is_empty());
}

#[test]
fn url_is_quoted() {
    let s = Schema::default();
    let url = r#"sqlite:C:\data\shop "main".db"#;
    let text = policy_from_schema(&s, url);
    let p = parse_policy(&text, "lethe.toml").unwrap();
    assert_eq!(p.database.url.as_deref(), Some(url));
}

#[test]
fn table_without_any_key_is_left_for_the_user() {
    // `key = []` with a comment: the policy is refused until the user names it.
    let s = schema(vec![table(
        "events",
        &["at timestamptz", "payload text"],
        &[],
    )]);
    let text = policy_from_schema(&s, URL);
    assert!(text.contains("# no primary key or unique constraint found"));
    let err = parse_policy(&text, "lethe.toml").unwrap_err();
    assert_eq!(err.key, "entities.events.key");
    let line = text.lines().position(|l| l == "key = []").unwrap() + 1;
    assert_eq!(err.line, Some(line));
}

#[test]
fn foreign_key_to_a_non_key_column_is_skipped_with_a_note() {
    let mut orders = table("orders", &["id bigint!", "user_email text!"], &["id"]);
    orders.foreign_keys = vec![fk(&["user_email"], "users", &["email"], "cascade")];
    let mut users = table("users", &["id bigint!", "email text!"], &["id"]);
    users.uniques.push(unique("users_email_key", &["email"]));
    let text = policy_from_schema(&schema(vec![orders, users]), URL);
    assert!(
        text.contains(
            "# skipped: orders.(user_email) references users(email), which is not its key (id)"
        ),
        "{text}"
    );
    assert!(!text.contains("[[relations]]"), "{text}");
    parse_policy(&text, "lethe.toml").unwrap();
}

#[test]
fn composite_foreign_key_columns_are_written_in_the_parent_key_order() {
    let mut parent = table("post", &["tenant bigint!", "no bigint!"], &["tenant", "no"]);
    parent.foreign_keys = vec![];
    let mut child = table(
        "cmt",
        &["id bigint!", "post_no bigint!", "tenant bigint!"],
        &["id"],
    );
    child.foreign_keys = vec![fk(
        &["post_no", "tenant"],
        "post",
        &["no", "tenant"],
        "cascade",
    )];
    let text = policy_from_schema(&schema(vec![parent, child]), URL);
    assert!(
        text.contains("columns = [\"tenant\", \"post_no\"]"),
        "{text}"
    );
    parse_policy(&text, "lethe.toml").unwrap();
}

#[test]
fn init_output_parses_for_schema_qualified_tables() {
    // Introspection names tables outside the current schema `schema.table`.
    let accounts = table("billing.accounts", &["id bigint!"], &["id"]);
    let mut orders = table("orders", &["id bigint!", "account_id bigint"], &["id"]);
    orders.foreign_keys = vec![fk(&["account_id"], "billing.accounts", &["id"], "cascade")];
    let (_, p) = init(&schema(vec![accounts, orders]));
    let e = p
        .entities
        .values()
        .find(|e| e.table == "billing.accounts")
        .expect("an entity for billing.accounts");
    assert_eq!(p.relations[0].parent, e.name);
}
