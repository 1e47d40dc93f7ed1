-- A conversation belongs to one user; deleting the user deletes their chats.
CREATE TABLE chats (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, title)
);

CREATE INDEX chats_user_id_idx ON chats (user_id);
