-- case: catalog-listing-by-category
-- expect: clean
SELECT p.id, p.name, p.price, c.name AS category
FROM products p
JOIN categories c ON c.id = p.category_id AND c.deleted_at IS NULL
WHERE p.deleted_at IS NULL
  AND c.slug = $1
ORDER BY p.name
LIMIT 24 OFFSET $2;

-- case: catalog-listing-category-join-unfiltered
-- expect: unfiltered-read categories
SELECT p.id, p.name, p.price
FROM products p
JOIN categories c ON c.id = p.category_id
WHERE p.deleted_at IS NULL
  AND c.slug = $1
ORDER BY p.created_at DESC
LIMIT 24;

-- case: product-detail-by-id
-- expect: clean
SELECT * FROM products WHERE id = $1 AND deleted_at IS NULL;

-- case: product-detail-missing-filter
-- expect: unfiltered-read products
SELECT id, name, description, price, stock
FROM products
WHERE id = $1;

-- case: product-by-sku
-- expect: unique-lookup products
SELECT id, name, price, stock FROM products WHERE sku = $1;

-- case: product-by-sku-filtered
-- expect: clean
SELECT p.id, p.name, p.price
FROM products p
WHERE p.sku = $1
  AND p.deleted_at IS NULL;

-- case: search-ilike
-- expect: clean
SELECT p.id, p.name, p.price
FROM products p
WHERE p.deleted_at IS NULL
  AND (p.name ILIKE '%' || $1 || '%' OR p.description ILIKE '%' || $1 || '%')
ORDER BY p.name
LIMIT 20 OFFSET $2;

-- case: search-ilike-precedence-bug
-- expect: unfiltered-read products
-- AND binds tighter than OR: the marker filter only guards the sku branch
SELECT p.id, p.name, p.price
FROM products p
WHERE p.name ILIKE '%' || $1 || '%'
   OR p.sku = $1 AND p.deleted_at IS NULL
LIMIT 20;

-- case: catalog-keyset-pagination
-- expect: clean
SELECT p.id, p.name, p.price, p.created_at
FROM products p
WHERE p.deleted_at IS NULL
  AND (p.created_at, p.id) < ($1, $2)
ORDER BY p.created_at DESC, p.id DESC
LIMIT 50;

-- case: order-history-keyset-unfiltered
-- expect: unfiltered-read orders
SELECT o.id, o.total, o.status, o.created_at
FROM orders o
WHERE o.user_id = $1
  AND o.id < $2
ORDER BY o.id DESC
LIMIT 20;

-- case: cart-contents
-- expect: clean
SELECT ci.id, ci.quantity, p.name, p.price, ci.quantity * p.price AS line_total
FROM cart_items ci
JOIN products p ON p.id = ci.product_id
WHERE ci.user_id = $1
  AND p.deleted_at IS NULL
ORDER BY ci.added_at;

-- case: cart-contents-product-unfiltered
-- expect: unfiltered-read products
SELECT ci.product_id, ci.quantity, p.name, p.price, p.stock
FROM cart_items ci
JOIN products p ON p.id = ci.product_id
WHERE ci.user_id = $1;

-- case: cart-add-upsert
-- expect: clean
INSERT INTO cart_items (user_id, product_id, quantity, added_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (user_id, product_id)
DO UPDATE SET quantity = cart_items.quantity + EXCLUDED.quantity
RETURNING id, quantity;

-- case: cart-remove-item
-- expect: raw-delete cart_items
DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2;

-- case: cart-drop-deleted-products
-- expect: raw-delete cart_items
DELETE FROM cart_items ci
USING products p
WHERE p.id = ci.product_id
  AND p.deleted_at IS NOT NULL;

-- case: cart-drop-out-of-stock-using-unfiltered
-- expect: raw-delete cart_items
-- expect: unfiltered-read products
DELETE FROM cart_items ci
USING products p
WHERE p.id = ci.product_id
  AND p.stock = 0;

-- case: checkout-copy-cart-unfiltered
-- expect: unfiltered-read products
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT $1, ci.product_id, ci.quantity, p.price
FROM cart_items ci
JOIN products p ON p.id = ci.product_id
WHERE ci.user_id = $2;

-- case: checkout-copy-cart
-- expect: clean
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT $1, ci.product_id, ci.quantity, p.price
FROM cart_items ci
JOIN products p ON p.id = ci.product_id AND p.deleted_at IS NULL
WHERE ci.user_id = $2;

-- case: checkout-create-order
-- expect: clean
INSERT INTO orders (user_id, status, total, shipping_address, created_at)
VALUES ($1, 'pending', $2, $3::jsonb, now())
RETURNING id, created_at;

-- case: checkout-decrement-stock
-- expect: clean
UPDATE products
SET stock = stock - $2
WHERE id = $1 AND stock >= $2
RETURNING stock;

-- case: recompute-order-total-from-derived
-- expect: unfiltered-read order_items
UPDATE orders o
SET total = s.total
FROM (
  SELECT oi.order_id, sum(oi.quantity * oi.unit_price) AS total
  FROM order_items oi
  WHERE oi.order_id = $1
  GROUP BY oi.order_id
) s
WHERE s.order_id = o.id;

-- case: order-history-with-item-count
-- expect: clean
SELECT o.id, o.status, o.total, o.created_at, count(oi.id) AS item_count
FROM orders o
LEFT JOIN order_items oi ON oi.order_id = o.id AND oi.deleted_at IS NULL
WHERE o.user_id = $1
  AND o.deleted_at IS NULL
GROUP BY o.id, o.status, o.total, o.created_at
ORDER BY o.created_at DESC
LIMIT 20 OFFSET $2;

-- case: order-history-left-join-filter-only-left
-- expect: unfiltered-read order_items
SELECT o.id, o.status, o.total, count(oi.id) AS item_count
FROM orders o
LEFT JOIN order_items oi ON oi.order_id = o.id
WHERE o.user_id = $1
  AND o.deleted_at IS NULL
GROUP BY o.id
ORDER BY o.created_at DESC;

-- case: orders-of-user-filter-on-wrong-alias
-- expect: unfiltered-read orders
SELECT o.id, o.total, o.created_at
FROM orders o
JOIN users u ON u.id = o.user_id
WHERE u.id = $1
  AND u.deleted_at IS NULL
ORDER BY o.created_at DESC;

-- case: order-detail-all-filtered
-- expect: clean
SELECT o.id, o.status, oi.quantity, oi.unit_price, p.name, p.sku
FROM orders o
JOIN order_items oi ON oi.order_id = o.id
JOIN products p ON p.id = oi.product_id
WHERE o.id = $1
  AND o.user_id = $2
  AND o.deleted_at IS NULL
  AND oi.deleted_at IS NULL
  AND p.deleted_at IS NULL;

-- case: order-detail-suppressed-historical-products
-- expect: clean
-- lethe: include-deleted past orders must still show products later removed from the catalog
SELECT oi.quantity, oi.unit_price, p.name, p.sku
FROM order_items oi
JOIN products p ON p.id = oi.product_id
WHERE oi.order_id = $1
  AND oi.deleted_at IS NULL;

-- case: top-sellers-this-month
-- expect: clean
SELECT p.id, p.name, sum(oi.quantity) AS units, sum(oi.quantity * oi.unit_price) AS revenue
FROM order_items oi
JOIN orders o ON o.id = oi.order_id
JOIN products p ON p.id = oi.product_id
WHERE o.status IN ('paid', 'shipped', 'delivered')
  AND o.created_at >= date_trunc('month', now())
  AND o.deleted_at IS NULL
  AND oi.deleted_at IS NULL
  AND p.deleted_at IS NULL
GROUP BY p.id, p.name
ORDER BY revenue DESC
LIMIT 10;

-- case: top-sellers-items-unfiltered
-- expect: unfiltered-read order_items
SELECT p.id, p.name, sum(oi.quantity) AS units
FROM order_items oi
JOIN orders o ON o.id = oi.order_id
JOIN products p ON p.id = oi.product_id
WHERE o.status = 'paid'
  AND o.deleted_at IS NULL
  AND p.deleted_at IS NULL
GROUP BY p.id, p.name
ORDER BY units DESC
LIMIT 10;

-- case: admin-revenue-by-month
-- expect: unfiltered-read orders
SELECT date_trunc('month', o.created_at) AS month,
       count(*) AS order_count,
       sum(o.total) AS revenue
FROM orders o
WHERE o.status <> 'cancelled'
GROUP BY 1
ORDER BY 1;

-- case: admin-revenue-by-month-active-view
-- expect: clean
SELECT date_trunc('month', created_at) AS month,
       count(*) AS order_count,
       sum(total) AS revenue
FROM orders_active
WHERE status <> 'cancelled'
GROUP BY 1
ORDER BY 1;

-- case: product-reviews-with-author
-- expect: clean
SELECT r.id, r.rating, r.body, r.created_at, u.name AS author
FROM reviews r
JOIN users u ON u.id = r.user_id AND u.deleted_at IS NULL
WHERE r.product_id = $1
  AND r.deleted_at IS NULL
ORDER BY r.created_at DESC
LIMIT 10;

-- case: product-reviews-author-left-join-unfiltered
-- expect: unfiltered-read users
SELECT r.id, r.rating, r.body, coalesce(u.name, 'Anonymous') AS author
FROM reviews r
LEFT JOIN users u ON u.id = r.user_id
WHERE r.product_id = $1
  AND r.deleted_at IS NULL
ORDER BY r.created_at DESC;

-- case: product-list-scalar-avg-rating-unfiltered
-- expect: unfiltered-read reviews
SELECT p.id, p.name,
       (SELECT avg(r.rating) FROM reviews r WHERE r.product_id = p.id) AS avg_rating,
       (SELECT count(*) FROM reviews r WHERE r.product_id = p.id AND r.deleted_at IS NULL) AS review_count
FROM products p
WHERE p.category_id = $1
  AND p.deleted_at IS NULL;

-- case: rating-rank-per-category-window
-- expect: clean
SELECT p.id, p.name, p.category_id,
       avg(r.rating) AS avg_rating,
       rank() OVER (PARTITION BY p.category_id ORDER BY avg(r.rating) DESC) AS category_rank
FROM products p
JOIN reviews r ON r.product_id = p.id
WHERE p.deleted_at IS NULL
  AND r.deleted_at IS NULL
GROUP BY p.id, p.name, p.category_id
HAVING count(r.id) >= 5;

-- case: running-total-per-customer-window
-- expect: unfiltered-read orders
SELECT o.id, o.created_at, o.total,
       sum(o.total) OVER (PARTITION BY o.user_id ORDER BY o.created_at) AS running_total,
       row_number() OVER (PARTITION BY o.user_id ORDER BY o.created_at) AS nth_order
FROM orders o
WHERE o.user_id = $1;

-- case: latest-order-per-customer-distinct-on
-- expect: clean
SELECT DISTINCT ON (o.user_id) o.user_id, o.id, o.created_at, o.total
FROM orders o
WHERE o.deleted_at IS NULL
ORDER BY o.user_id, o.created_at DESC;

-- case: category-tree-self-join
-- expect: clean
SELECT c.id, c.name, parent.name AS parent_name
FROM categories c
LEFT JOIN categories parent ON parent.id = c.parent_id AND parent.deleted_at IS NULL
WHERE c.deleted_at IS NULL
ORDER BY c.sort_order;

-- case: category-tree-recursive
-- expect: clean
WITH RECURSIVE tree AS (
  SELECT id, name, parent_id, 1 AS depth
  FROM categories
  WHERE parent_id IS NULL AND deleted_at IS NULL
  UNION ALL
  SELECT c.id, c.name, c.parent_id, t.depth + 1
  FROM categories c
  JOIN tree t ON t.id = c.parent_id
  WHERE c.deleted_at IS NULL
)
SELECT id, name, depth FROM tree ORDER BY depth, name;

-- case: category-breadcrumb-recursive-branch-unfiltered
-- expect: unfiltered-read categories
WITH RECURSIVE crumbs AS (
  SELECT id, name, parent_id
  FROM categories
  WHERE id = $1 AND deleted_at IS NULL
  UNION ALL
  SELECT c.id, c.name, c.parent_id
  FROM categories c
  JOIN crumbs ON crumbs.parent_id = c.id
)
SELECT id, name FROM crumbs;

-- case: dormant-customers-not-exists-unfiltered
-- expect: unfiltered-read orders
SELECT u.id, u.email
FROM users u
WHERE u.deleted_at IS NULL
  AND u.created_at < now() - interval '30 days'
  AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id);

-- case: buyers-of-product-in-subquery
-- expect: clean
SELECT u.id, u.email
FROM users u
WHERE u.deleted_at IS NULL
  AND u.id IN (
    SELECT o.user_id
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.id
    WHERE oi.product_id = $1
      AND o.deleted_at IS NULL
      AND oi.deleted_at IS NULL
  );

-- case: lifetime-value-cte-chain
-- expect: clean
WITH paid AS (
  SELECT o.user_id, o.total
  FROM orders o
  WHERE o.status = 'paid' AND o.deleted_at IS NULL
), totals AS (
  SELECT user_id, sum(total) AS ltv, count(*) AS n
  FROM paid
  GROUP BY user_id
)
SELECT u.email, t.ltv, t.n
FROM totals t
JOIN users u ON u.id = t.user_id
WHERE u.deleted_at IS NULL
ORDER BY t.ltv DESC
LIMIT 100;

-- case: category-page-derived-pass-through
-- expect: clean
SELECT p.id, p.name, p.price
FROM (SELECT * FROM products WHERE category_id = $1) p
WHERE p.deleted_at IS NULL
ORDER BY p.price;

-- case: cheap-products-derived-no-pass-through
-- expect: unfiltered-read products
SELECT s.id, s.name, s.price, c.name AS category
FROM (SELECT id, name, price, category_id FROM products WHERE price < $1) s
JOIN categories c ON c.id = s.category_id
WHERE c.deleted_at IS NULL
ORDER BY s.price;

-- case: best-sellers-derived-aggregate-unfiltered
-- expect: unfiltered-read order_items
SELECT t.product_id, t.units
FROM (
  SELECT oi.product_id, sum(oi.quantity) AS units
  FROM order_items oi
  GROUP BY oi.product_id
) t
ORDER BY t.units DESC
LIMIT 10;

-- case: activity-feed-union-both-filtered
-- expect: clean
SELECT 'order' AS kind, o.id, o.created_at
FROM orders o
WHERE o.user_id = $1 AND o.deleted_at IS NULL
UNION ALL
SELECT 'review' AS kind, r.id, r.created_at
FROM reviews r
WHERE r.user_id = $1 AND r.deleted_at IS NULL
ORDER BY created_at DESC
LIMIT 20;

-- case: activity-feed-union-one-branch-unfiltered
-- expect: unfiltered-read reviews
SELECT 'order' AS kind, o.id, o.created_at
FROM orders o
WHERE o.user_id = $1 AND o.deleted_at IS NULL
UNION ALL
SELECT 'review' AS kind, r.id, r.created_at
FROM reviews r
WHERE r.user_id = $1
ORDER BY created_at DESC
LIMIT 20;

-- case: admin-delete-product
-- expect: raw-delete products
DELETE FROM products WHERE id = $1 RETURNING id, sku;

-- case: admin-soft-delete-order-by-hand
-- expect: marker-write orders
-- expect: marker-write orders
UPDATE orders
SET deleted_at = now(),
    deletion_id = $2
WHERE id = $1;

-- case: record-login
-- expect: clean
UPDATE users SET last_login_at = now() WHERE id = $1;

-- case: login-by-email
-- expect: unique-lookup users
SELECT id, password_hash, email_verified_at
FROM users
WHERE email = $1;

-- case: login-by-email-lowercased
-- expect: unfiltered-read users
SELECT id, password_hash
FROM users
WHERE lower(email) = lower($1);

-- case: login-by-email-filtered
-- expect: clean
SELECT id, password_hash, email_verified_at
FROM users
WHERE email = $1
  AND deleted_at IS NULL;

-- case: password-reset-token-user-unfiltered
-- expect: unfiltered-read users
SELECT u.id, u.email
FROM password_resets pr
JOIN users u ON u.id = pr.user_id
WHERE pr.token = $1
  AND pr.expires_at > now();

-- case: invoices-of-order
-- expect: clean
SELECT id, number, amount_cents, issued_at FROM invoices WHERE order_id = $1;

-- case: payments-of-customer
-- expect: clean
SELECT pay.id, pay.amount, pay.status, pay.created_at
FROM payments pay
JOIN orders o ON o.id = pay.order_id
WHERE o.user_id = $1
  AND o.deleted_at IS NULL
ORDER BY pay.created_at DESC;

-- case: payment-reconciliation-full-join
-- expect: unfiltered-read orders
SELECT o.id AS order_id, pay.id AS payment_id, o.total, pay.amount
FROM orders o
FULL OUTER JOIN payments pay ON pay.order_id = o.id
WHERE o.created_at >= $1 OR pay.created_at >= $1;

-- case: localized-prices-cross-join
-- expect: clean
SELECT p.id, p.name, round(p.price * x.rate, 2) AS local_price
FROM products p
CROSS JOIN exchange_rates x
WHERE x.currency = $1
  AND p.deleted_at IS NULL
  AND p.category_id = $2;

-- case: admin-trash-deleted-products
-- expect: clean
SELECT id, name, sku, deleted_at
FROM products
WHERE deleted_at IS NOT NULL
ORDER BY deleted_at DESC
LIMIT 50;

-- case: category-product-counts-left-join-on-filter
-- expect: clean
SELECT c.id, c.name, count(p.id) AS product_count
FROM categories c
LEFT JOIN products p ON p.category_id = c.id AND p.deleted_at IS NULL
WHERE c.deleted_at IS NULL
GROUP BY c.id, c.name
ORDER BY c.name;

-- case: customer-email-domains
-- expect: unfiltered-read users
SELECT split_part(email, '@', 2) AS domain, count(*) AS customers
FROM users
GROUP BY 1
ORDER BY 2 DESC
LIMIT 20;

-- case: order-status-breakdown-filter-aggregate
-- expect: clean
SELECT count(*) FILTER (WHERE o.status = 'paid') AS paid,
       count(*) FILTER (WHERE o.status = 'refunded') AS refunded,
       avg(o.total) AS avg_total
FROM orders o
WHERE o.deleted_at IS NULL
  AND o.created_at >= $1;

-- case: orders-today-public-schema
-- expect: unfiltered-read orders
SELECT count(*) FROM public.orders WHERE created_at::date = current_date;

-- case: create-view-product-ratings
-- expect: unfiltered-read reviews
CREATE VIEW product_ratings AS
SELECT product_id, avg(rating) AS avg_rating, count(*) AS n
FROM reviews
GROUP BY product_id;

-- case: create-view-paid-orders
-- expect: clean
CREATE OR REPLACE VIEW paid_orders AS
SELECT o.*
FROM orders o
WHERE o.status = 'paid'
  AND o.deleted_at IS NULL;

-- case: refresh-product-rating-update-subquery
-- expect: unfiltered-read reviews
UPDATE products
SET avg_rating = (SELECT avg(r.rating) FROM reviews r WHERE r.product_id = products.id)
WHERE id = $1;
