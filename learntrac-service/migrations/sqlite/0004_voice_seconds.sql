-- Seconds of speech each student sent the voice tutor per day (VOICE_DAILY_SECONDS).
ALTER TABLE learntrac_chat_usage ADD COLUMN audio_seconds BIGINT NOT NULL DEFAULT 0;
