INSERT INTO users (email, name) VALUES
    ('ada@example.com', 'Ada Lovelace'),
    ('grace@example.com', 'Grace Hopper'),
    ('alan@example.com', 'Alan Turing')
ON CONFLICT (email) DO NOTHING;
