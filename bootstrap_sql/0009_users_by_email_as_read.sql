-- The session models join every observation to its user's directory row by lower(email) (staging lower-cases, as
-- adopted rows may not be): without an index on that expression, each hour and session that a collection touches
-- read the whole users table once (at 4,000 users, about 0.5 s of every 5-minute build).
create index if not exists users_lower_email_idx on users (lower(email));
