INSERT INTO chats (user_id, title)
SELECT u.id, c.title
FROM (VALUES
    ('ada@example.com', 'Analytical engine notes'),
    ('ada@example.com', 'Bernoulli numbers'),
    ('grace@example.com', 'Compiler ideas')
) AS c (email, title)
JOIN users u ON u.email = c.email
ON CONFLICT (user_id, title) DO NOTHING;
