-- The tutor's conversations and each student's daily use (LearnTrac's own tables).
CREATE TABLE IF NOT EXISTS learntrac_chat_conversation (
    id          BIGSERIAL PRIMARY KEY,
    concept_id  BIGINT NOT NULL,
    student     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS learntrac_chat_conversation_student_concept
    ON learntrac_chat_conversation (student, concept_id, id);

CREATE TABLE IF NOT EXISTS learntrac_chat_message (
    id              BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES learntrac_chat_conversation (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('complete', 'incomplete')),
    created_at      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS learntrac_chat_message_conversation
    ON learntrac_chat_message (conversation_id, id);

CREATE TABLE IF NOT EXISTS learntrac_chat_usage (
    student  TEXT NOT NULL,
    -- days since the epoch, UTC
    day      BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    tokens   BIGINT NOT NULL,
    PRIMARY KEY (student, day)
);
