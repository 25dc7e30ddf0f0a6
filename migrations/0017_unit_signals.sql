-- Signals about a protection unit (docs/signals.md): a high or critical one holds the unit's
-- protection level up while it lasts.

ALTER TABLE trust_signals DROP CONSTRAINT trust_signals_subject_kind_check;
ALTER TABLE trust_signals ADD CONSTRAINT trust_signals_subject_kind_check
    CHECK (subject_kind IN ('principal', 'agent', 'unit'));
