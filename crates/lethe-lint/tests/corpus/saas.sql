-- case: project-dashboard
-- expect: clean
SELECT p.id, p.name, p.slug,
       count(t.id) FILTER (WHERE t.status = 'open') AS open_tasks,
       count(t.id) FILTER (WHERE t.status = 'done') AS done_tasks
FROM projects p
LEFT JOIN tasks t
  ON t.project_id = p.id
 AND t.tenant_id = p.tenant_id
 AND t.deleted_at IS NULL
WHERE p.tenant_id = $1
  AND p.deleted_at IS NULL
GROUP BY p.id, p.name, p.slug
ORDER BY p.name;

-- case: project-dashboard-tasks-unfiltered
-- expect: unfiltered-read tasks
SELECT p.id, p.name,
       count(t.id) FILTER (WHERE t.status = 'open') AS open_tasks
FROM projects p
LEFT JOIN tasks t ON t.project_id = p.id AND t.tenant_id = p.tenant_id
WHERE p.tenant_id = $1
  AND p.deleted_at IS NULL
GROUP BY p.id, p.name
ORDER BY p.name;

-- case: project-by-tenant-and-slug
-- expect: unique-lookup projects
SELECT id, name, settings
FROM projects
WHERE tenant_id = $1
  AND slug = $2;

-- case: project-by-tenant-and-slug-filtered
-- expect: clean
SELECT id, name, settings
FROM projects
WHERE tenant_id = $1
  AND slug = $2
  AND deleted_at IS NULL;

-- case: project-by-slug-missing-tenant-scope
-- expect: unfiltered-read projects
SELECT id, tenant_id, name FROM projects WHERE slug = $1;

-- case: tenant-by-slug
-- expect: unique-lookup tenants
SELECT id, name, plan FROM tenants WHERE slug = $1;

-- case: tenant-and-project-by-slugs-tenant-unfiltered
-- expect: unique-lookup tenants
SELECT p.id, p.name, p.settings
FROM projects p
JOIN tenants t ON t.id = p.tenant_id
WHERE t.slug = $1
  AND p.slug = $2
  AND p.deleted_at IS NULL;

-- case: tenant-and-project-by-slugs
-- expect: clean
SELECT p.id, p.name, p.settings
FROM projects p
JOIN tenants t ON t.id = p.tenant_id AND t.deleted_at IS NULL
WHERE t.slug = $1
  AND p.slug = $2
  AND p.deleted_at IS NULL;

-- case: tenant-members
-- expect: clean
SELECT u.id, u.email, u.name, m.role
FROM memberships m
JOIN users u ON u.id = m.user_id
WHERE m.tenant_id = $1
  AND u.deleted_at IS NULL
ORDER BY u.email;

-- case: workspace-switcher-tenants-unfiltered
-- expect: unfiltered-read tenants
SELECT t.id, t.name, t.slug, m.role
FROM memberships m
JOIN tenants t ON t.id = m.tenant_id
WHERE m.user_id = $1
ORDER BY t.name;

-- case: my-tasks-rls-style
-- expect: clean
SELECT t.id, t.title, t.status, t.due_on
FROM tasks t
WHERE t.tenant_id = current_setting('app.tenant_id')::uuid
  AND t.deleted_at IS NULL
  AND t.assignee_id = $1
ORDER BY t.due_on NULLS LAST;

-- case: my-tasks-rls-style-unfiltered
-- expect: unfiltered-read tasks
SELECT t.id, t.title, t.status
FROM tasks t
WHERE t.tenant_id = current_setting('app.tenant_id')::uuid
  AND t.assignee_id = $1;

-- case: tenant-by-billing-email-json
-- expect: unfiltered-read tenants
SELECT t.id, t.name, t.settings ->> 'plan' AS plan
FROM tenants t
WHERE t.settings ->> 'billing_email' = $1;

-- case: high-priority-tasks-json
-- expect: clean
SELECT t.id, t.title, t.metadata ->> 'priority' AS priority
FROM tasks t
WHERE t.tenant_id = $1
  AND t.metadata ->> 'priority' = 'high'
  AND t.deleted_at IS NULL
ORDER BY t.created_at DESC;

-- case: project-documents
-- expect: clean
SELECT d.id, d.title, d.updated_at
FROM app.documents d
WHERE d.tenant_id = $1
  AND d.project_id = $2
  AND d.deleted_at IS NULL
ORDER BY d.updated_at DESC
LIMIT 25;

-- case: document-by-id-unqualified-unfiltered
-- expect: unfiltered-read documents
SELECT id, title, body FROM documents WHERE id = $1 AND tenant_id = $2;

-- case: document-search-active-view
-- expect: clean
SELECT id, title
FROM app.documents_active
WHERE tenant_id = $1
  AND title ILIKE '%' || $2 || '%'
ORDER BY updated_at DESC;

-- case: document-full-text-search
-- expect: clean
SELECT d.id, d.title,
       ts_rank(to_tsvector('english', d.body), plainto_tsquery('english', $2)) AS rank
FROM app.documents d
WHERE d.tenant_id = $1
  AND d.deleted_at IS NULL
  AND to_tsvector('english', d.body) @@ plainto_tsquery('english', $2)
ORDER BY rank DESC
LIMIT 20;

-- case: documents-owner-sees-trash-or-bug
-- expect: unfiltered-read documents
SELECT d.id, d.title, d.deleted_at
FROM app.documents d
WHERE d.tenant_id = $1
  AND (d.deleted_at IS NULL OR d.owner_id = $2)
ORDER BY d.updated_at DESC;

-- case: tenant-invoices-archive-entity
-- expect: clean
SELECT i.id, i.amount_cents, i.status, i.issued_at
FROM invoices i
WHERE i.tenant_id = $1
ORDER BY i.issued_at DESC;

-- case: dunning-run-tenant-unfiltered
-- expect: unfiltered-read tenants
SELECT i.id, i.amount_cents, t.name, t.settings ->> 'billing_email' AS billing_email
FROM invoices i
JOIN tenants t ON t.id = i.tenant_id
WHERE i.status = 'open'
  AND i.due_at < now();

-- case: delete-draft-invoice
-- expect: raw-delete invoices
DELETE FROM invoices WHERE id = $1 AND status = 'draft';

-- case: invite-member-upsert
-- expect: clean
INSERT INTO memberships (tenant_id, user_id, role)
VALUES ($1, $2, $3)
ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = EXCLUDED.role
RETURNING *;

-- case: create-project-upsert
-- expect: clean
INSERT INTO projects (tenant_id, slug, name, settings)
VALUES ($1, $2, $3, '{}'::jsonb)
ON CONFLICT (tenant_id, slug) DO UPDATE SET name = EXCLUDED.name
RETURNING id;

-- case: task-counts-cte-chain
-- expect: clean
WITH live_projects AS (
  SELECT p.id, p.name
  FROM projects p
  WHERE p.tenant_id = $1
    AND p.deleted_at IS NULL
),
counts AS (
  SELECT t.project_id, count(*) AS n
  FROM tasks t
  JOIN live_projects lp ON lp.id = t.project_id
  WHERE t.deleted_at IS NULL
  GROUP BY t.project_id
)
SELECT lp.name, coalesce(c.n, 0) AS tasks
FROM live_projects lp
LEFT JOIN counts c ON c.project_id = lp.id
ORDER BY lp.name;

-- case: task-counts-cte-chain-second-unfiltered
-- expect: unfiltered-read tasks
WITH live_projects AS (
  SELECT p.id, p.name
  FROM projects p
  WHERE p.tenant_id = $1
    AND p.deleted_at IS NULL
),
counts AS (
  SELECT t.project_id, count(*) AS n
  FROM tasks t
  JOIN live_projects lp ON lp.id = t.project_id
  GROUP BY t.project_id
)
SELECT lp.name, coalesce(c.n, 0) AS tasks
FROM live_projects lp
LEFT JOIN counts c ON c.project_id = lp.id
ORDER BY lp.name;

-- case: overdue-tasks-cte-pass-through
-- expect: clean
WITH tenant_tasks AS (
  SELECT * FROM tasks WHERE tenant_id = $1
)
SELECT tt.id, tt.title, tt.due_on
FROM tenant_tasks tt
WHERE tt.deleted_at IS NULL
  AND tt.due_on < current_date
ORDER BY tt.due_on;

-- case: overdue-tasks-cte-pass-through-unfiltered
-- expect: unfiltered-read tasks
WITH tenant_tasks AS (
  SELECT * FROM tasks WHERE tenant_id = $1
)
SELECT tt.id, tt.title, tt.due_on
FROM tenant_tasks tt
WHERE tt.due_on < current_date
ORDER BY tt.due_on;

-- case: overdue-tasks-assignee-left-join-unfiltered
-- expect: unfiltered-read users
SELECT t.id, t.title, t.due_on, u.name AS assignee
FROM tasks t
LEFT JOIN users u ON u.id = t.assignee_id
WHERE t.tenant_id = $1
  AND t.deleted_at IS NULL
  AND t.due_on < current_date;

-- case: move-tasks-update-from-projects-unfiltered
-- expect: unfiltered-read projects
UPDATE tasks t
SET project_id = p.id
FROM projects p
WHERE p.tenant_id = t.tenant_id
  AND p.slug = $2
  AND t.id = ANY($1);

-- case: move-tasks-update-from-projects
-- expect: clean
UPDATE tasks t
SET project_id = p.id, updated_at = now()
FROM projects p
WHERE p.tenant_id = t.tenant_id
  AND p.slug = $2
  AND p.deleted_at IS NULL
  AND t.id = ANY($1);

-- case: close-tenant-by-hand
-- expect: marker-write tenants
UPDATE tenants SET deleted_at = now() WHERE id = $1;

-- case: restore-document-by-hand
-- expect: marker-write documents
-- expect: marker-write documents
UPDATE app.documents
SET deleted_at = NULL,
    deletion_id = NULL
WHERE id = $1
  AND tenant_id = $2;

-- case: rename-document
-- expect: clean
UPDATE app.documents
SET title = $3, updated_at = now()
WHERE id = $1
  AND tenant_id = $2
  AND deleted_at IS NULL
RETURNING id, title, updated_at;

-- case: purge-trashed-documents
-- expect: raw-delete documents
DELETE FROM app.documents
WHERE tenant_id = $1
  AND deleted_at < now() - interval '30 days';

-- case: truncate-sessions
-- expect: raw-delete sessions
TRUNCATE sessions;

-- case: session-user-unfiltered
-- expect: unfiltered-read users
SELECT u.id, u.email, m.tenant_id, m.role
FROM sessions s
JOIN users u ON u.id = s.user_id
LEFT JOIN memberships m ON m.user_id = u.id
WHERE s.token = $1
  AND s.expires_at > now();

-- case: session-user
-- expect: clean
SELECT u.id, u.email, m.tenant_id, m.role
FROM sessions s
JOIN users u ON u.id = s.user_id AND u.deleted_at IS NULL
LEFT JOIN memberships m ON m.user_id = u.id
WHERE s.token = $1
  AND s.expires_at > now();

-- case: feature-flags-of-tenant-slug
-- expect: clean
SELECT f.name, f.enabled
FROM feature_flags f
JOIN tenants t ON t.id = f.tenant_id
WHERE t.slug = $1
  AND t.deleted_at IS NULL;

-- case: audit-task-reopened-insert-select
-- expect: unfiltered-read tasks
INSERT INTO audit_log (tenant_id, actor_id, action, entity, entity_id, created_at)
SELECT t.tenant_id, $2, 'task.reopened', 'task', t.id, now()
FROM tasks t
WHERE t.id = $1;

-- case: copy-template-tasks-insert-select
-- expect: clean
INSERT INTO tasks (tenant_id, project_id, title, status)
SELECT $1, $2, tt.title, 'open'
FROM tasks tt
WHERE tt.project_id = $3
  AND tt.deleted_at IS NULL
RETURNING id;

-- case: admin-tenant-overview-scalar-subqueries
-- expect: clean
SELECT t.id, t.name,
       (SELECT count(*) FROM projects p WHERE p.tenant_id = t.id AND p.deleted_at IS NULL) AS projects,
       (SELECT count(*) FROM memberships m WHERE m.tenant_id = t.id) AS members
FROM tenants t
WHERE t.deleted_at IS NULL
ORDER BY t.created_at DESC
LIMIT 50;

-- case: user-directory-self-join-inviter-unfiltered
-- expect: unfiltered-read users
SELECT u.id, u.email, inviter.email AS invited_by
FROM users u
LEFT JOIN users inviter ON inviter.id = u.invited_by
WHERE u.deleted_at IS NULL
ORDER BY u.created_at DESC;

-- case: document-access-check-exists
-- expect: clean
SELECT d.*
FROM app.documents d
WHERE d.id = $1
  AND d.deleted_at IS NULL
  AND EXISTS (
    SELECT 1 FROM memberships m
    WHERE m.tenant_id = d.tenant_id
      AND m.user_id = $2
  );

-- case: gdpr-export-documents-suppressed
-- expect: clean
-- lethe: include-deleted GDPR export must include the user's deleted documents
SELECT d.id, d.title, d.body, d.deleted_at
FROM app.documents d
WHERE d.owner_id = $1;

-- case: delete-project-tasks-suppression-without-reason
-- expect: suppression-without-reason -
-- expect: raw-delete tasks
-- lethe: include-deleted
DELETE FROM tasks WHERE project_id = $1;

-- case: task-trash-suppressed-inline
-- expect: clean
SELECT t.id, t.title, t.deleted_at
FROM tasks t -- lethe: include-deleted trash view lists deleted tasks so they can be restored
WHERE t.project_id = $1
ORDER BY t.deleted_at DESC;

-- case: tasks-created-per-day-cumulative
-- expect: clean
SELECT date_trunc('day', t.created_at) AS day,
       count(*) AS created,
       sum(count(*)) OVER (ORDER BY date_trunc('day', t.created_at)) AS cumulative
FROM tasks t
WHERE t.tenant_id = $1
  AND t.deleted_at IS NULL
GROUP BY 1
ORDER BY 1;

-- case: archived-projects-or-bug
-- expect: unfiltered-read projects
SELECT p.id, p.name
FROM projects p
WHERE p.tenant_id = $1
  AND (p.deleted_at IS NULL OR p.archived)
ORDER BY p.name;

-- case: projects-active-view-keyset
-- expect: clean
SELECT id, name, created_at
FROM projects_active
WHERE tenant_id = $1
  AND (created_at, id) > ($2, $3)
ORDER BY created_at, id
LIMIT 50;

-- case: open-tasks-per-assignee
-- expect: clean
SELECT u.id, u.name, count(t.id) AS open_tasks
FROM users u
JOIN memberships m ON m.user_id = u.id AND m.tenant_id = $1
JOIN tasks t ON t.assignee_id = u.id AND t.tenant_id = m.tenant_id
WHERE u.deleted_at IS NULL
  AND t.deleted_at IS NULL
  AND t.status <> 'done'
GROUP BY u.id, u.name
ORDER BY open_tasks DESC;
