-- case: seed-user-by-id-filtered
-- expect: clean
SELECT *
FROM users
WHERE id = $1
    AND deleted_at IS NULL;

-- case: seed-user-by-id-boolean-flag-not-the-marker
-- expect: unfiltered-read users
-- the article's boolean `deleted` column is not this schema's marker
SELECT *
FROM users
WHERE id = $1
    AND deleted IS NULL;

-- case: seed-seat-claim-archive-insert
-- expect: unfiltered-read seat_claims
-- Insert the SeatClaim record into SeatClaimHistory with deletion details
INSERT INTO seat_claims_history (id, user_id, seat_id, deleted_at)
SELECT id, user_id, seat_id, NOW() FROM seat_claims WHERE id = $1;

-- case: seed-seat-claim-archive-delete
-- expect: raw-delete seat_claims
-- Delete the original SeatClaim record
DELETE FROM seat_claims WHERE id = $1;

-- case: seed-hard-delete-user
-- expect: raw-delete users
DELETE FROM users WHERE id = 42;

-- case: seed-hard-delete-product-mixed-case
-- expect: raw-delete products
DELETE FROM Products
WHERE ProductId = 1001;

-- case: seed-soft-delete-product-camel-case-columns
-- expect: clean
-- DeletedAt folds to deletedat: not the deleted_at marker
UPDATE Products
SET IsDeleted = 1,
    DeletedAt = CURRENT_TIMESTAMP
WHERE ProductId = 1001;

-- case: seed-soft-delete-user-by-hand
-- expect: marker-write users
UPDATE users SET deleted_at = NOW() WHERE id = 42;

-- case: seed-restore-user-by-hand
-- expect: marker-write users
UPDATE users SET deleted_at = NULL WHERE id = 42;

-- case: seed-active-users
-- expect: clean
SELECT * FROM users WHERE deleted_at IS NULL;

-- case: seed-lookup-by-email-before-soft-delete
-- expect: unique-lookup users
SELECT * FROM users WHERE email = 'alice@example.com';

-- case: seed-lookup-by-email-after-soft-delete
-- expect: clean
SELECT * FROM users WHERE email = 'alice@example.com' AND deleted_at IS NULL;

-- case: seed-partial-unique-index
-- expect: clean
CREATE UNIQUE INDEX unique_active_users_email ON users (email)
WHERE deleted_at IS NULL;

-- case: seed-gdpr-anonymize-and-mark
-- expect: marker-write users
UPDATE users
SET name = 'REDACTED',
    email = 'redacted-42@example.com',
    phone = NULL,
    address = NULL,
    deleted_at = NOW()
WHERE id = 42;

-- case: seed-cascade-soft-delete-orders
-- expect: marker-write orders
UPDATE orders SET deleted_at = NOW() WHERE user_id = 42;

-- case: seed-lazy-filtering-join
-- expect: clean
SELECT orders.*
FROM orders
JOIN users ON users.id = orders.user_id
WHERE users.deleted_at IS NULL
AND orders.deleted_at IS NULL;

-- case: seed-time-based-purge
-- expect: raw-delete users
-- Hard delete records soft-deleted more than 90 days ago
DELETE FROM users
WHERE deleted_at IS NOT NULL
AND deleted_at < NOW() - INTERVAL '90 days';

-- case: seed-archive-table-copy
-- expect: unfiltered-read users
INSERT INTO users_archive SELECT *, NOW() as archived_at FROM users WHERE id = 42;

-- case: seed-restore-from-archive-table
-- expect: clean
INSERT INTO users SELECT id, name, email, created_at FROM users_archive WHERE id = 42;
