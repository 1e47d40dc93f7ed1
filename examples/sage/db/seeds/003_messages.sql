INSERT INTO messages (chat_id, role, content, created_at)
SELECT ch.id, m.role, m.content, now() + m.seq * interval '1 second'
FROM (VALUES
    ('ada@example.com', 'Analytical engine notes', 1, 'user', 'Can the engine compose music?'),
    ('ada@example.com', 'Analytical engine notes', 2, 'assistant', 'If pitches and harmony can be expressed as numbers, yes.'),
    ('ada@example.com', 'Bernoulli numbers', 1, 'user', 'Walk me through note G.'),
    ('grace@example.com', 'Compiler ideas', 1, 'user', 'Could programs be written in English words?'),
    ('grace@example.com', 'Compiler ideas', 2, 'assistant', 'A translator from words to machine code would make that possible.')
) AS m (email, title, seq, role, content)
JOIN users u ON u.email = m.email
JOIN chats ch ON ch.user_id = u.id AND ch.title = m.title;
