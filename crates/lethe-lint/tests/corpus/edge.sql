-- case: skipped-typo-selec
-- expect: skipped
SELEC * FROM orders WHERE user_id = $1;

-- case: skipped-typo-form
-- expect: skipped
SELECT * FORM orders WHERE id = $1;

-- case: skipped-cut-off-after-and
-- expect: skipped
SELECT o.id, o.total FROM orders o WHERE o.user_id = $1 AND;

-- case: skipped-unbalanced-parenthesis
-- expect: skipped
SELECT * FROM products
WHERE id IN (SELECT product_id FROM order_items WHERE order_id = $1;

-- case: skipped-insert-column-list-not-closed
-- expect: skipped
INSERT INTO orders (user_id, total VALUES ($1, $2);

-- case: quoted-identifiers-filtered
-- expect: clean
SELECT "id", "total" FROM "orders" WHERE "user_id" = $1 AND "deleted_at" IS NULL;

-- case: quoted-identifiers-email-lookup
-- expect: unique-lookup users
SELECT "u"."id", "u"."password_hash" FROM "users" AS "u" WHERE "u"."email" = $1;

-- case: public-schema-alias-filtered
-- expect: clean
SELECT o.id, o.total FROM public.orders o WHERE o.deleted_at IS NULL AND o.user_id = $1;

-- case: public-schema-qualified-by-table-name
-- expect: clean
SELECT orders.id, orders.total FROM public.orders WHERE orders.deleted_at IS NULL;

-- case: app-documents-qualified-by-table-name
-- expect: clean
SELECT documents.id, documents.title FROM app.documents WHERE documents.deleted_at IS NULL;

-- case: documents-unqualified-filtered
-- expect: clean
SELECT id, title FROM documents WHERE tenant_id = $1 AND deleted_at IS NULL;

-- case: upper-case-identifiers-filtered
-- expect: clean
select ID, TOTAL from ORDERS where USER_ID = $1 and DELETED_AT is null;

-- case: mixed-case-email-lookup
-- expect: unique-lookup users
SELECT Id, PasswordHash FROM Users WHERE Email = $1;

-- case: alias-reused-in-subquery
-- expect: clean
SELECT o.id, o.total
FROM orders o
WHERE o.deleted_at IS NULL
  AND o.id IN (
    SELECT o.order_id FROM order_items o WHERE o.product_id = $1 AND o.deleted_at IS NULL
  );

-- case: alias-reused-in-subquery-inner-unfiltered
-- expect: unfiltered-read order_items
SELECT o.id, o.total
FROM orders o
WHERE o.deleted_at IS NULL
  AND o.id IN (
    SELECT o.order_id FROM order_items o WHERE o.product_id = $1
  );

-- case: cte-named-like-table-reads-active-view
-- expect: clean
WITH orders AS (
  SELECT * FROM orders_active WHERE user_id = $1
)
SELECT id, total, created_at FROM orders ORDER BY created_at DESC;

-- case: self-join-manager-unfiltered
-- expect: unfiltered-read users
SELECT u.id, u.email, m.email AS manager_email
FROM users u
JOIN users m ON m.id = u.manager_id
WHERE u.deleted_at IS NULL;

-- case: self-join-both-filtered
-- expect: clean
SELECT u.id, u.email, m.email AS manager_email
FROM users u
LEFT JOIN users m ON m.id = u.manager_id AND m.deleted_at IS NULL
WHERE u.deleted_at IS NULL;

-- case: unqualified-marker-two-soft-tables
-- expect: unfiltered-read orders
-- expect: unfiltered-read users
SELECT o.id, u.email
FROM orders o
JOIN users u ON u.id = o.user_id
WHERE deleted_at IS NULL;

-- case: unqualified-marker-single-aliased-table
-- expect: clean
SELECT o.id, o.total FROM orders o WHERE o.user_id = $1 AND deleted_at IS NULL;

-- case: marker-or-other-column
-- expect: unfiltered-read orders
SELECT o.id, o.status
FROM orders o
WHERE o.user_id = $1
  AND (o.deleted_at IS NULL OR o.status = 'archived');

-- case: marker-or-restore-window
-- expect: clean
SELECT u.id, u.email
FROM users u
WHERE u.id = $2
  AND (u.deleted_at IS NULL OR u.deleted_at > $1);

-- case: marker-recently-deleted
-- expect: clean
SELECT o.id, o.deleted_at
FROM orders o
WHERE o.deleted_at > now() - interval '30 days'
ORDER BY o.deleted_at DESC;

-- case: deletion-id-filter
-- expect: clean
SELECT oi.id, oi.quantity FROM order_items oi WHERE oi.order_id = $1 AND oi.deletion_id IS NULL;

-- case: parenthesized-conjunction
-- expect: clean
SELECT r.id, r.rating
FROM reviews r
WHERE (r.product_id = $1 AND r.deleted_at IS NULL)
ORDER BY r.created_at DESC;

-- case: derived-explicit-marker-column
-- expect: clean
SELECT x.id, x.name
FROM (SELECT p.id, p.name, p.deleted_at FROM products p WHERE p.price > 100) x
WHERE x.deleted_at IS NULL;

-- case: derived-star-outer-unfiltered
-- expect: unfiltered-read products
SELECT x.id, x.name
FROM (SELECT * FROM products WHERE price > 100) x
ORDER BY x.price DESC;

-- case: left-join-filter-for-preserved-side-in-on
-- expect: unfiltered-read users
SELECT u.id, u.email, o.id AS order_id
FROM users u
LEFT JOIN orders o
  ON o.user_id = u.id
 AND o.deleted_at IS NULL
 AND u.deleted_at IS NULL;

-- case: left-join-right-side-filtered-in-where
-- expect: clean
SELECT u.id, u.email, o.id AS order_id
FROM users u
LEFT JOIN orders o ON o.user_id = u.id
WHERE u.deleted_at IS NULL
  AND o.deleted_at IS NULL;

-- case: nested-exists-inner-unfiltered
-- expect: unfiltered-read order_items
SELECT u.id
FROM users u
WHERE u.deleted_at IS NULL
  AND EXISTS (
    SELECT 1 FROM orders o
    WHERE o.user_id = u.id
      AND o.deleted_at IS NULL
      AND EXISTS (SELECT 1 FROM order_items oi WHERE oi.order_id = o.id AND oi.product_id = $1)
  );

-- case: scalar-subquery-in-where-unfiltered
-- expect: unfiltered-read products
SELECT p.id, p.name, p.price
FROM products p
WHERE p.deleted_at IS NULL
  AND p.price > (SELECT avg(price) FROM products);

-- case: insert-values-scalar-subquery-unfiltered
-- expect: unfiltered-read products
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
VALUES ($1, $2, $3, (SELECT price FROM products WHERE id = $2));

-- case: filter-commented-out
-- expect: unfiltered-read orders
SELECT id, total
FROM orders
-- WHERE deleted_at IS NULL  (removed while debugging)
WHERE user_id = $1;

-- case: email-taken-exists
-- expect: unique-lookup users
SELECT EXISTS (SELECT 1 FROM users WHERE email = $1) AS taken;

-- case: invitations-join-users-on-email-column
-- expect: unfiltered-read users
SELECT i.id, i.email, u.id AS existing_user_id
FROM invitations i
LEFT JOIN users u ON u.email = i.email
WHERE i.tenant_id = $1;

-- case: email-or-username-login
-- expect: unfiltered-read users
SELECT id, password_hash FROM users WHERE email = $1 OR username = $1;

-- case: email-lookup-marker-in-or
-- expect: unique-lookup users
SELECT id, status
FROM users
WHERE email = $1
  AND (deleted_at IS NULL OR status = 'pending');

-- case: seat-lookup-by-literals
-- expect: unique-lookup seats
SELECT id, section FROM seats WHERE event_id = 7 AND label = 'A-12';

-- case: recent-orders-lateral-unfiltered
-- expect: unfiltered-read orders
SELECT u.id, u.email, r.id AS order_id, r.total
FROM users u
CROSS JOIN LATERAL (
  SELECT o.id, o.total FROM orders o WHERE o.user_id = u.id ORDER BY o.created_at DESC LIMIT 3
) r
WHERE u.deleted_at IS NULL;

-- case: recent-orders-lateral-filtered
-- expect: clean
SELECT u.id, u.email, r.id AS order_id, r.total
FROM users u
CROSS JOIN LATERAL (
  SELECT o.id, o.total
  FROM orders o
  WHERE o.user_id = u.id AND o.deleted_at IS NULL
  ORDER BY o.created_at DESC
  LIMIT 3
) r
WHERE u.deleted_at IS NULL;

-- case: recommendation-candidates-cross-join-unfiltered
-- expect: unfiltered-read products
SELECT u.id AS user_id, p.id AS product_id
FROM users u
CROSS JOIN products p
WHERE u.id = $1
  AND u.deleted_at IS NULL
  AND p.featured;

-- case: truncate-two-managed-tables
-- expect: raw-delete cart_items
-- expect: raw-delete sessions
TRUNCATE TABLE cart_items, sessions RESTART IDENTITY;

-- case: truncate-unmanaged-table
-- expect: clean
TRUNCATE audit_log;

-- case: delete-unmanaged-subquery-unfiltered
-- expect: unfiltered-read tenants
DELETE FROM feature_flags
WHERE tenant_id IN (SELECT id FROM tenants WHERE plan = 'free');

-- case: delete-unmanaged-using-marker-handled
-- expect: clean
DELETE FROM memberships m
USING users u
WHERE u.id = m.user_id
  AND u.deleted_at IS NOT NULL;

-- case: update-unmanaged-table-deleted-at
-- expect: clean
UPDATE payments SET deleted_at = now() WHERE order_id = $1;

-- case: update-target-where-unique-email
-- expect: clean
UPDATE users SET email_verified_at = now() WHERE email = $1;

-- case: update-tuple-assigns-both-markers
-- expect: marker-write orders
-- expect: marker-write orders
UPDATE orders SET (deleted_at, deletion_id) = (now(), $2) WHERE id = $1;

-- case: active-views-joined-by-email
-- expect: clean
SELECT o.id, o.total, u.email
FROM orders_active o
JOIN users_active u ON u.id = o.user_id
WHERE u.email = $1;

-- case: active-view-joined-to-base-table-unfiltered
-- expect: unfiltered-read order_items
SELECT o.id, oi.product_id, oi.quantity
FROM orders_active o
JOIN order_items oi ON oi.order_id = o.id
WHERE o.user_id = $1;

-- case: insert-select-from-active-view
-- expect: clean
INSERT INTO audit_log (actor_id, action, entity, entity_id, created_at)
SELECT $1, 'order.exported', 'order', o.id, now()
FROM orders_active o
WHERE o.user_id = $2;

-- case: create-view-join-one-side-unfiltered
-- expect: unfiltered-read products
CREATE VIEW order_lines AS
SELECT oi.order_id, oi.quantity, oi.unit_price, p.name, p.sku
FROM order_items oi
JOIN products p ON p.id = oi.product_id
WHERE oi.deleted_at IS NULL;

-- case: parenthesized-union-branches
-- expect: clean
(SELECT id, email FROM users WHERE deleted_at IS NULL AND role = 'admin')
UNION
(SELECT u.id, u.email FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.role = 'owner' AND u.deleted_at IS NULL);

-- case: hard-entity-read-needs-no-filter
-- expect: clean
SELECT count(*) AS items, coalesce(sum(quantity), 0) AS units FROM cart_items WHERE user_id = $1;

-- case: right-join-nullable-side-filtered-in-on
-- expect: clean
SELECT u.id, o.id
FROM orders o
RIGHT JOIN users u ON u.id = o.user_id AND o.deleted_at IS NULL
WHERE u.deleted_at IS NULL;

-- case: right-join-preserved-side-filtered-only-in-on
-- expect: unfiltered-read users
SELECT u.id, o.id
FROM orders o
RIGHT JOIN users u ON u.id = o.user_id AND u.deleted_at IS NULL
WHERE o.deleted_at IS NULL;

-- case: full-join-filters-in-on-filter-neither-side
-- expect: unfiltered-read orders
-- expect: unfiltered-read users
SELECT u.id, o.id
FROM orders o
FULL JOIN users u ON u.id = o.user_id AND u.deleted_at IS NULL AND o.deleted_at IS NULL;

-- case: upsert-restores-by-hand
-- expect: marker-write tickets
INSERT INTO tickets (id, code, seat_id)
VALUES ($1, $2, $3)
ON CONFLICT (code) DO UPDATE SET deleted_at = NULL, seat_id = excluded.seat_id;

-- case: upsert-reads-owner-in-update-half
-- expect: unique-lookup users
INSERT INTO tickets (id, code, owner_id)
VALUES ($1, $2, $3)
ON CONFLICT (code) DO UPDATE SET owner_id = (SELECT id FROM users WHERE email = $4);

-- case: update-returning-scalar-subquery
-- expect: unfiltered-read tickets
UPDATE seats SET status = 'sold' WHERE id = $1 AND deleted_at IS NULL
RETURNING id, (SELECT count(*) FROM tickets t WHERE t.seat_id = seats.id);

-- case: sqlc-style-comment-before-query
-- expect: unique-lookup users
-- name: GetUserByEmail :one
SELECT id, email FROM users WHERE email = $1;
