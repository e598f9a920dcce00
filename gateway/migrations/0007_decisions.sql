-- Decisions that stick: what accepted matches taught, kept apart from CRM data; undo history.
SELECT 1;
