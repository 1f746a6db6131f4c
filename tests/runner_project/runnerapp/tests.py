import threading

from django.db import IntegrityError, connection, connections, transaction
from django.test import TestCase, TransactionTestCase

import pool_core

from .models import Entry


class PooledTestCase(TestCase):
    databases = {"default", "other"}

    def test_runs_on_the_test_database(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        self.assertTrue(connection.settings_dict["NAME"].startswith("test_"))
        Entry.objects.create(name="a")
        self.assertEqual(Entry.objects.count(), 1)

    def test_isolation_between_tests(self):
        self.assertEqual(Entry.objects.count(), 0)
        Entry.objects.create(name="a")

    def test_integrity_error_inside_atomic(self):
        Entry.objects.create(name="dup")
        with self.assertRaises(IntegrityError), transaction.atomic():
            Entry.objects.create(name="dup")
        self.assertEqual(Entry.objects.count(), 1)

    def test_pool_is_in_use(self):
        Entry.objects.count()
        self.assertIsNotNone(pool_core.stats("default"))


class PooledTransactionTestCase(TransactionTestCase):
    available_apps = ["tests.runner_project.runnerapp"]

    def test_commits_are_visible_to_other_threads(self):
        Entry.objects.create(name="committed")
        seen = []

        def read():
            seen.append(Entry.objects.filter(name="committed").count())
            connections.close_all()

        t = threading.Thread(target=read)
        t.start()
        t.join()
        self.assertEqual(seen, [1])

    def test_flushed_between_tests(self):
        self.assertFalse(Entry.objects.filter(name="committed").exists())
        Entry.objects.create(name="other")
