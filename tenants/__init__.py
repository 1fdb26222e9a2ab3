"""The admin app and the only owner of the SQL schema: tenants, users, roles, collectors, keys.

Nothing is imported here: ingest imports ``tenants.keys`` alone to verify collector keys.
"""
