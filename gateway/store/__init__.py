"""SQL, one module per table; nothing else in the gateway writes SQL for these tables.

Every function takes the connection (inside the caller's transaction) and the tenant;
every query is parameterized. Columns that will be encrypted at rest (account numbers,
names, remittance, raw files) are read and written only here.
"""
