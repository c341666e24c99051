//! The rules `lethe lint` checks, with the explanation each finding carries.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A soft entity's table is read without its deleted marker filtered.
    UnfilteredRead,
    /// A soft entity's unique columns are looked up without the marker filter.
    UniqueLookup,
    /// `DELETE` or `TRUNCATE` on a managed table.
    RawDelete,
    /// `UPDATE` writing `deleted_at` or the deletion id directly.
    MarkerWrite,
    /// `lethe: include-deleted` without a reason.
    SuppressionWithoutReason,
}

pub const ALL: [Rule; 5] = [
    Rule::UnfilteredRead,
    Rule::UniqueLookup,
    Rule::RawDelete,
    Rule::MarkerWrite,
    Rule::SuppressionWithoutReason,
];

impl Rule {
    pub fn id(self) -> &'static str {
        match self {
            Rule::UnfilteredRead => "unfiltered-read",
            Rule::UniqueLookup => "unique-lookup",
            Rule::RawDelete => "raw-delete",
            Rule::MarkerWrite => "marker-write",
            Rule::SuppressionWithoutReason => "suppression-without-reason",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Rule::UnfilteredRead => "Read of a soft-deleted table without the deleted filter",
            Rule::UniqueLookup => "Unique lookup that can find a deleted row",
            Rule::RawDelete => "DELETE that bypasses Lethe",
            Rule::MarkerWrite => "UPDATE that writes Lethe's deletion markers",
            Rule::SuppressionWithoutReason => "include-deleted suppression without a reason",
        }
    }

    /// Why the rule exists and what to do: the same for every finding of
    /// the rule; the finding's message says what this query does.
    pub fn help(self) -> &'static str {
        match self {
            Rule::UnfilteredRead => {
                "Deleting a row of a soft entity only marks it (deleted_at and the deletion id); the row stays in the table. \
A query that reads the table must keep `<alias>.deleted_at IS NULL` in its WHERE clause (or in the ON clause of an \
outer join), or read the `<table>_active` view that `lethe migrate` installs; otherwise deleted rows come back to the \
caller. A background job that forgot this filter once released seats that were already paid for, and sold them again. \
If the query means to read deleted rows, say so: `-- lethe: include-deleted <reason>` on or above it."
            }
            Rule::UniqueLookup => {
                "The entity's unique columns are unique among active rows only (lethe migrate installs a partial unique index \
WHERE deleted_at IS NULL), so a deleted row can share the value with an active one, and a lookup without the marker \
filter can find the deleted row first: a re-registered e-mail address logs into the deleted account."
            }
            Rule::RawDelete => {
                "A raw DELETE (or TRUNCATE) on a table Lethe manages skips everything a deletion must do: no cascade to \
related rows, no audit entry, no outbox event for caches, search indexes and other services, and no undo. The guard \
`lethe migrate` installs refuses it at run time; use Lethe instead."
            }
            Rule::MarkerWrite => {
                "deleted_at and the deletion id are written by Lethe only: a row marked by hand has no deletion record, so it \
is not audited, nobody downstream hears of it, and it cannot be restored as a unit; clearing the markers by hand \
brings a row back without its cascade and without checking unique conflicts."
            }
            Rule::SuppressionWithoutReason => {
                "`lethe: include-deleted` says the query reads deleted rows on purpose. The reason is what a reviewer checks \
later; a suppression without one does not take effect."
            }
        }
    }

    /// SARIF level: every rule is an error except the missing reason.
    pub fn level(self) -> &'static str {
        match self {
            Rule::SuppressionWithoutReason => "warning",
            _ => "error",
        }
    }
}
