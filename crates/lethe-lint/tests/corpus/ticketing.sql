-- case: upcoming-events-in-city
-- expect: clean
SELECT e.id, e.title, e.starts_at, v.name AS venue, v.city
FROM events e
JOIN venues v ON v.id = e.venue_id
WHERE e.deleted_at IS NULL
  AND e.starts_at > now()
  AND v.city = $1
ORDER BY e.starts_at
LIMIT 20 OFFSET $2;

-- case: upcoming-events-in-city-unfiltered
-- expect: unfiltered-read events
SELECT e.id, e.title, e.starts_at, v.name AS venue
FROM events e
JOIN venues v ON v.id = e.venue_id
WHERE e.starts_at > now()
  AND v.city = $1
ORDER BY e.starts_at
LIMIT 20;

-- case: venue-page-events
-- expect: clean
SELECT v.name, e.id, e.title, e.starts_at
FROM venues v
JOIN events e ON e.venue_id = v.id
WHERE v.id = $1
  AND e.deleted_at IS NULL
ORDER BY e.starts_at;

-- case: event-search-ilike-unfiltered
-- expect: unfiltered-read events
SELECT e.id, e.title, e.starts_at
FROM events e
WHERE e.title ILIKE '%' || $1 || '%'
ORDER BY e.starts_at
LIMIT 10;

-- case: seat-map
-- expect: clean
SELECT s.id, s.label, s.section, s.price_cents,
       EXISTS (
         SELECT 1 FROM seat_claims sc
         WHERE sc.seat_id = s.id
           AND sc.deleted_at IS NULL
           AND sc.expires_at > now()
       ) AS held,
       EXISTS (
         SELECT 1 FROM tickets t
         WHERE t.seat_id = s.id
           AND t.deleted_at IS NULL
       ) AS sold
FROM seats s
WHERE s.event_id = $1
  AND s.deleted_at IS NULL
ORDER BY s.section, s.label;

-- case: seat-map-sold-check-unfiltered
-- expect: unfiltered-read tickets
SELECT s.id, s.label, s.section,
       EXISTS (
         SELECT 1 FROM seat_claims sc
         WHERE sc.seat_id = s.id
           AND sc.deleted_at IS NULL
           AND sc.expires_at > now()
       ) AS held,
       EXISTS (SELECT 1 FROM tickets t WHERE t.seat_id = s.id) AS sold
FROM seats s
WHERE s.event_id = $1
  AND s.deleted_at IS NULL
ORDER BY s.section, s.label;

-- case: available-seats-not-exists
-- expect: clean
SELECT s.id, s.label, s.section, s.price_cents
FROM seats s
WHERE s.event_id = $1
  AND s.deleted_at IS NULL
  AND NOT EXISTS (
    SELECT 1
    FROM seat_claims sc
    WHERE sc.seat_id = s.id
      AND sc.deleted_at IS NULL
      AND (sc.expires_at > now() OR sc.paid_at IS NOT NULL)
  )
ORDER BY s.section, s.label;

-- case: available-seats-not-exists-unfiltered
-- expect: unfiltered-read seat_claims
SELECT s.id, s.label
FROM seats s
WHERE s.event_id = $1
  AND s.deleted_at IS NULL
  AND NOT EXISTS (
    SELECT 1
    FROM seat_claims sc
    WHERE sc.seat_id = s.id
      AND (sc.expires_at > now() OR sc.paid_at IS NOT NULL)
  );

-- case: available-seat-count-per-section
-- expect: clean
SELECT s.section, count(*) AS free_seats
FROM seats s
LEFT JOIN seat_claims sc
  ON sc.seat_id = s.id
 AND sc.deleted_at IS NULL
 AND (sc.expires_at > now() OR sc.paid_at IS NOT NULL)
WHERE s.event_id = $1
  AND s.deleted_at IS NULL
  AND sc.id IS NULL
GROUP BY s.section
ORDER BY s.section;

-- case: expired-claims-job-incident
-- expect: unfiltered-read seat_claims
-- background job: collect holds whose 5 minutes ran out and release the seats
SELECT sc.id, sc.seat_id, sc.user_id
FROM seat_claims sc
WHERE sc.expires_at < now()
ORDER BY sc.expires_at
LIMIT 500
FOR UPDATE SKIP LOCKED;

-- case: expired-claims-job-fixed
-- expect: clean
SELECT sc.id, sc.seat_id, sc.user_id
FROM seat_claims sc
WHERE sc.expires_at < now()
  AND sc.paid_at IS NULL
  AND sc.deleted_at IS NULL
ORDER BY sc.expires_at
LIMIT 500
FOR UPDATE SKIP LOCKED;

-- case: release-seats-of-expired-claims
-- expect: unfiltered-read seat_claims
UPDATE seats
SET status = 'available', held_by = NULL
WHERE id IN (
  SELECT seat_id FROM seat_claims WHERE expires_at < now()
);

-- case: release-seats-of-expired-claims-fixed
-- expect: clean
UPDATE seats
SET status = 'available', held_by = NULL
WHERE id IN (
  SELECT seat_id
  FROM seat_claims
  WHERE expires_at < now()
    AND paid_at IS NULL
    AND deleted_at IS NULL
);

-- case: expire-claims-by-setting-marker
-- expect: marker-write seat_claims
UPDATE seat_claims
SET deleted_at = now()
WHERE expires_at < now()
  AND paid_at IS NULL
  AND deleted_at IS NULL;

-- case: hold-seat
-- expect: clean
INSERT INTO seat_claims (seat_id, user_id, expires_at)
VALUES ($1, $2, now() + interval '5 minutes')
RETURNING id, expires_at;

-- case: hold-seat-by-label-insert-select
-- expect: unique-lookup seats
INSERT INTO seat_claims (seat_id, user_id, expires_at)
SELECT s.id, $3, now() + interval '5 minutes'
FROM seats s
WHERE s.event_id = $1
  AND s.label = $2
RETURNING id;

-- case: seat-by-event-and-label
-- expect: clean
SELECT s.id, s.section, s.price_cents
FROM seats s
WHERE s.event_id = $1
  AND s.label = $2
  AND s.deleted_at IS NULL;

-- case: seat-by-label-and-section-not-unique
-- expect: unfiltered-read seats
SELECT s.id, s.price_cents
FROM seats s
WHERE s.label = $1
  AND s.section = $2;

-- case: ticket-by-code
-- expect: unique-lookup tickets
SELECT t.id, t.event_id, t.seat_id, t.holder_name
FROM tickets t
WHERE t.code = $1;

-- case: ticket-by-code-uppercased-param
-- expect: unique-lookup tickets
SELECT id, event_id, holder_name FROM tickets WHERE code = upper($1);

-- case: door-scan-ticket-lookup
-- expect: clean
SELECT t.id, t.holder_name, t.scanned_at, e.title, s.label
FROM tickets t
JOIN events e ON e.id = t.event_id AND e.deleted_at IS NULL
JOIN seats s ON s.id = t.seat_id AND s.deleted_at IS NULL
WHERE t.code = $1
  AND t.deleted_at IS NULL;

-- case: door-scan-event-unfiltered
-- expect: unfiltered-read events
SELECT t.id, t.holder_name, e.title, e.starts_at
FROM tickets t
JOIN events e ON e.id = t.event_id
WHERE t.code = $1
  AND t.deleted_at IS NULL;

-- case: mark-ticket-scanned
-- expect: clean
UPDATE tickets
SET scanned_at = now()
WHERE code = $1
  AND scanned_at IS NULL
RETURNING id, holder_name;

-- case: event-sales-left-join-unfiltered
-- expect: unfiltered-read tickets
SELECT e.id, e.title, count(t.id) AS sold, sum(t.price_cents) / 100.0 AS revenue
FROM events e
LEFT JOIN tickets t ON t.event_id = e.id
WHERE e.deleted_at IS NULL
GROUP BY e.id, e.title
ORDER BY revenue DESC NULLS LAST;

-- case: event-sales-left-join-filtered
-- expect: clean
SELECT e.id, e.title, count(t.id) AS sold, sum(t.price_cents) / 100.0 AS revenue
FROM events e
LEFT JOIN tickets t ON t.event_id = e.id AND t.deleted_at IS NULL
WHERE e.deleted_at IS NULL
GROUP BY e.id, e.title
ORDER BY revenue DESC NULLS LAST;

-- case: cancel-event-by-hand
-- expect: marker-write events
-- expect: marker-write events
UPDATE events
SET deleted_at = now(), deletion_id = $2, status = 'cancelled'
WHERE id = $1;

-- case: void-tickets-of-event
-- expect: raw-delete tickets
DELETE FROM tickets WHERE event_id = $1;

-- case: purge-expired-sessions
-- expect: raw-delete sessions
DELETE FROM sessions WHERE expires_at < now();

-- case: claim-rate-limit-comma-join-unfiltered
-- expect: unfiltered-read seats
SELECT count(*)
FROM seat_claims sc, seats s
WHERE s.id = sc.seat_id
  AND s.event_id = $1
  AND sc.user_id = $2
  AND sc.created_at > now() - interval '1 hour'
  AND sc.deleted_at IS NULL;

-- case: claim-rate-limit-comma-join
-- expect: clean
SELECT count(*)
FROM seat_claims sc, seats s
WHERE s.id = sc.seat_id
  AND s.event_id = $1
  AND sc.user_id = $2
  AND sc.created_at > now() - interval '1 hour'
  AND sc.deleted_at IS NULL
  AND s.deleted_at IS NULL;

-- case: my-upcoming-events-cte
-- expect: clean
WITH my_tickets AS (
  SELECT t.event_id, count(*) AS n
  FROM tickets t
  WHERE t.holder_id = $1
    AND t.deleted_at IS NULL
  GROUP BY t.event_id
)
SELECT e.id, e.title, e.starts_at, mt.n
FROM my_tickets mt
JOIN events e ON e.id = mt.event_id AND e.deleted_at IS NULL
WHERE e.starts_at > now()
ORDER BY e.starts_at;

-- case: unused-cte-still-read
-- expect: unfiltered-read tickets
WITH sold AS (
  SELECT event_id, count(*) AS n
  FROM tickets
  GROUP BY event_id
)
SELECT e.id, e.title
FROM events e
WHERE e.deleted_at IS NULL
  AND e.starts_at::date = current_date;

-- case: sold-out-check-scalar-count-unfiltered
-- expect: unfiltered-read tickets
SELECT e.id, e.capacity,
       (SELECT count(*) FROM tickets t WHERE t.event_id = e.id) AS sold
FROM events e
WHERE e.id = $1
  AND e.deleted_at IS NULL;

-- case: seat-holders-right-join-unfiltered
-- expect: unfiltered-read seat_claims
SELECT s.label, sc.user_id, sc.expires_at
FROM seat_claims sc
RIGHT JOIN seats s ON s.id = sc.seat_id
WHERE s.event_id = $1
  AND s.deleted_at IS NULL
ORDER BY s.label;

-- case: refund-audit-insert-select-unfiltered
-- expect: unfiltered-read tickets
INSERT INTO audit_log (actor_id, action, entity, entity_id, payload, created_at)
SELECT $2, 'ticket.refunded', 'ticket', t.id, jsonb_build_object('code', t.code, 'price', t.price_cents), now()
FROM tickets t
WHERE t.id = $1;

-- case: postmortem-double-bookings-suppressed
-- expect: clean
-- lethe: include-deleted postmortem counts seats claimed twice, deleted claims included
SELECT sc.seat_id, count(*) AS claims
FROM seat_claims sc
JOIN seats s ON s.id = sc.seat_id AND s.deleted_at IS NULL
WHERE s.event_id = $1
GROUP BY sc.seat_id
HAVING count(*) > 1;

-- case: stale-holds-suppression-without-reason
-- expect: suppression-without-reason -
-- expect: unfiltered-read seat_claims
-- lethe: include-deleted
SELECT sc.id, sc.seat_id
FROM seat_claims sc
WHERE sc.expires_at < now() - interval '5 minutes';

-- case: fans-of-both-events-intersect
-- expect: clean
SELECT t.holder_id FROM tickets t WHERE t.event_id = $1 AND t.deleted_at IS NULL
INTERSECT
SELECT t.holder_id FROM tickets t WHERE t.event_id = $2 AND t.deleted_at IS NULL;

-- case: lapsed-fans-except-branch-unfiltered
-- expect: unfiltered-read tickets
SELECT t.holder_id FROM tickets t WHERE t.event_id = $1 AND t.deleted_at IS NULL
EXCEPT
SELECT t.holder_id FROM tickets t WHERE t.event_id = $2;

-- case: session-lookup-hard-entity
-- expect: clean
SELECT s.user_id, s.expires_at FROM sessions s WHERE s.token = $1 AND s.expires_at > now();

-- case: events-with-venues-unqualified-marker
-- expect: clean
-- venues is not a soft entity, so the bare deleted_at can only be the event's
SELECT events.id, events.title, venues.name
FROM events
JOIN venues ON venues.id = events.venue_id
WHERE deleted_at IS NULL
  AND events.starts_at > now();
