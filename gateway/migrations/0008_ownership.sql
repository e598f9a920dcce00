-- Ownership of what each CRM key pushed.
SELECT 1;
