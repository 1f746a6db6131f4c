"""Demo: what pooling buys a Django app on PostgreSQL (``python -m demo``).

It starts a throwaway PostgreSQL (see ``demo.server``), configures Django in
this process with a one-model app, migrates and seeds it, and then serves the
same number of requests through Django's real WSGI request cycle from many
threads, once per scenario:

a. ``django.db.backends.postgresql`` with ``CONN_MAX_AGE=0``: Django opens a
   new server connection for every request and closes it at the end.
b. ``pool_postgresql`` with ``POOL_SIZE=4, MAX_OVERFLOW=4``: every request
   checks a connection out of the alias's pool and gives it back at the end;
   at most 8 connections exist, and the other threads wait for one.

Each request does one ORM read and one small write in a transaction. For each
scenario it prints throughput, p50/p99 latency, the peak number of server
connections (sampled from ``pg_stat_activity`` by a separate connection), the
number of connections the server accepted (``pg_stat_database.sessions``) and,
pooled, ``pool_core.stats()``; then a comparison table. Everything it creates
is removed at exit, also on Ctrl-C.

Options: ``--requests N`` (per scenario, default 2000), ``--workers N``
(default 32). Env: ``DEMO_DATABASE_URL`` to use an existing server (a scratch
database is created there and dropped at exit).
"""
