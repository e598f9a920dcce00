-- Line identity: provisional lines, possible duplicates, statement chaining (issue: integrity).
SELECT 1;
