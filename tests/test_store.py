"""The store on both engines (SQLite and a real PostgreSQL): threads, de-duplication, state, migrations,
and SQLite writes on the event loop that never wait there."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from pete_mcp.core import ConfigError, Settings, Store, StoreError
from pete_mcp.core.conversations import unseen_messages
from pete_mcp.core.property_desk import PropertyDesk
from pete_mcp.core.storage import (
    MIGRATIONS,
    Conn,
    PostgresEngine,
    SQLiteEngine,
    WouldBlock,
    engine_from_settings,
    redact_url,
    to_pyformat,
)
from pete_mcp.core.tenant_directory import TenantRow, upsert_tenants
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.anyio

RELEASE0 = Path(__file__).parent / "fixtures" / "storage" / "release0_schema.sql"


def open_store(db: dict[str, Any]) -> Store:
    store = Store(engine_from_settings(Settings(**db)))
    store.open()
    return store


def m(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content}


async def test_a_thread_keeps_messages_in_the_order_they_were_appended(db_settings: dict[str, Any]) -> None:
    store = open_store(db_settings)
    try:
        await store.append_messages("c1", [m("user", "hi"), m("assistant", "hello")], source="t", model="x")
        await store.append_messages("c1", [m("user", "bye")], source="t")
        thread = await store.thread("c1")
    finally:
        store.close()
    assert [(t["seq"], t["role"], t["content"]) for t in thread] == [
        (0, "user", "hi"),
        (1, "assistant", "hello"),
        (2, "user", "bye"),
    ]
    assert thread[1]["model"] == "x" and thread[0]["model"] is None


async def test_a_resent_conversation_stores_only_its_new_messages(db_settings: dict[str, Any]) -> None:
    store = open_store(db_settings)
    try:
        first = await store.append_unseen("c1", [m("user", "a")], source="t", unseen=unseen_messages)
        again = await store.append_unseen(
            "c1", [m("user", "a"), m("assistant", "b"), m("user", "c")], source="t", unseen=unseen_messages
        )
        thread = [t["content"] for t in await store.thread("c1")]
    finally:
        store.close()
    assert [x["content"] for x in first] == ["a"] and [x["content"] for x in again] == ["b", "c"]
    assert thread == ["a", "b", "c"]


async def test_concurrent_appends_from_two_stores_never_collide_or_duplicate(db_settings: dict[str, Any]) -> None:
    """Two stores on one database stand for two replicas (on SQLite: two connections to one file)."""
    a, b = open_store(db_settings), open_store(db_settings)
    try:
        async with anyio.create_task_group() as tg:
            for i in range(20):
                store = a if i % 2 else b
                tg.start_soon(lambda s=store, i=i: s.append_messages("c1", [m("user", f"m{i}")], source="t"))
        thread = await a.thread("c1")
    finally:
        a.close()
        b.close()
    assert [t["seq"] for t in thread] == list(range(20))
    assert sorted(t["content"] for t in thread) == sorted(f"m{i}" for i in range(20))


async def test_the_same_turn_resent_to_two_stores_at_once_is_stored_once(db_settings: dict[str, Any]) -> None:
    a, b = open_store(db_settings), open_store(db_settings)
    history = [m("user", "hello"), m("assistant", "hi, Jamie here"), m("user", "my sink leaks")]
    try:
        await a.append_unseen("c1", history[:2], source="t", unseen=unseen_messages)
        async with anyio.create_task_group() as tg:
            for store in (a, b, a, b):
                tg.start_soon(lambda s=store: s.append_unseen("c1", history, source="t", unseen=unseen_messages))
        thread = [t["content"] for t in await b.thread("c1")]
    finally:
        a.close()
        b.close()
    assert thread == ["hello", "hi, Jamie here", "my sink leaks"]


async def test_state_round_trips_and_inserts_return_their_ids(db_settings: dict[str, Any]) -> None:
    store = open_store(db_settings)
    try:
        await store.set_state("active_model", "jamie")
        await store.set_state("active_model", "jamie-big")
        first = await store.insert(
            "INSERT INTO switches(at, from_model, to_model, warmup_s, by, ok) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (1.5, "a", "b", None, "t", 1),
        )
        second = await store.insert(
            "INSERT INTO switches(at, from_model, to_model, warmup_s, by, ok) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (1700000000.25, "b", "a", 0.5, "t", 1),
        )
        value = await store.get_state("active_model")
        rows = await store.query("SELECT at FROM switches WHERE id = ?", (second,))
    finally:
        store.close()
    assert value == "jamie-big" and second == first + 1
    assert rows[0]["at"] == 1700000000.25  # timestamps keep sub-second precision on both engines


async def test_a_transaction_reads_its_own_writes_and_counts_the_rows_it_changed(db_settings: dict[str, Any]) -> None:
    """On PostgreSQL statements are pipelined: a read or a row count must still see everything before it."""
    store = open_store(db_settings)

    def txn(c: Conn) -> tuple[Any, int, int, int]:
        c.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?)", ("a", '"1"', 1.0))
        c.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?)", ("b", '"2"', 1.0))
        seen = c.execute("SELECT value FROM kv WHERE key = ?", ("b",)).fetchone()
        both = c.execute("UPDATE kv SET updated_at = ? WHERE key IN (?, ?)", (2.0, "a", "b")).rowcount
        none = c.execute("UPDATE kv SET updated_at = ? WHERE key = ?", (2.0, "missing")).rowcount
        gone = c.execute("DELETE FROM kv WHERE key = ?", ("a",)).rowcount
        return seen, both, none, gone

    try:
        seen, both, none, gone = await store.write(txn)
        left = [r["key"] for r in await store.query("SELECT key FROM kv WHERE key IN (?, ?)", ("a", "b"))]
    finally:
        store.close()
    assert seen == {"value": '"2"'} and (both, none, gone) == (2, 0, 1)
    assert left == ["b"]


async def test_a_transaction_that_fails_part_way_leaves_nothing_and_the_next_one_goes_through(
    db_settings: dict[str, Any],
) -> None:
    store = open_store(db_settings)

    def broken_sql(c: Conn) -> None:
        c.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?)", ("x", '"1"', 1.0))
        c.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?)", ("x", '"2"', 1.0))  # same key

    def broken_code(c: Conn) -> None:
        c.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?)", ("y", '"1"', 1.0))
        raise ValueError("the caller's own bug")

    try:
        with pytest.raises(StoreError):
            await store.write(broken_sql)
        with pytest.raises(ValueError):
            await store.write(broken_code)
        await store.set_state("z", 3)
        keys = [r["key"] for r in await store.query("SELECT key FROM kv WHERE key IN (?, ?, ?)", ("x", "y", "z"))]
    finally:
        store.close()
    assert keys == ["z"]


async def test_migrations_apply_once_and_record_their_versions(db_settings: dict[str, Any]) -> None:
    store = open_store(db_settings)
    store.close()
    store = open_store(db_settings)  # a second start applies nothing
    try:
        versions = await store.query("SELECT version FROM schema_version ORDER BY version")
        tenants = await store.query("SELECT COUNT(*) AS n FROM tenants")
    finally:
        store.close()
    assert [v["version"] for v in versions] == [mig.version for mig in MIGRATIONS]
    assert tenants[0]["n"] == 0  # demo tenants are seeded by `pete up` only, never by a migration


async def test_a_database_created_by_the_release_before_migrations_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "pete.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(RELEASE0.read_text())
    old.execute("INSERT INTO conversations(id, source, created_at, updated_at) VALUES ('c1', 'vapi', 1, 1)")
    old.execute(
        "INSERT INTO messages(conversation_id, seq, role, content, created_at) VALUES ('c1', 0, 'user', 'hi', 1)"
    )
    old.execute("INSERT INTO metric_minutes(minute, provider, model, alias, data) VALUES (60, 'p', 'm', 'a', '{}')")
    old.execute(
        "INSERT INTO maintenance_requests(call_id, issue_key, unit, category, description, urgency, created_at) "
        "VALUES ('c1', 'k', '4B', 'plumbing', 'leak', 'routine', 1)"
    )
    old.commit()
    old.close()
    store = Store(path)
    store.open()
    try:
        thread = await store.thread("c1")
        minutes = await store.query("SELECT replica, minute FROM metric_minutes")
        await store.append_messages("c1", [m("assistant", "hello")], source="vapi")
        ticket = await store.insert(
            "INSERT INTO maintenance_requests(call_id, issue_key, unit, category, description, urgency, created_at) "
            "VALUES ('c2', 'k', '4B', 'plumbing', 'leak', 'routine', 1) RETURNING ticket"
        )
        versions = await store.query("SELECT version FROM schema_version")
    finally:
        store.close()
    assert [t["content"] for t in thread] == ["hi"]
    assert minutes == [{"replica": "", "minute": 60}]
    assert ticket == 1002  # the release's ticket numbering carries on
    assert len(versions) == len(MIGRATIONS)


async def test_writes_after_a_postgres_restart_go_through_on_a_fresh_connection(
    postgres_server: PostgresServer,
) -> None:
    """The pooled connection is dead after a restart; a write (with or without a read in it) that
    the server never answered runs again on a new one, so the caller sees no error."""
    store = Store(PostgresEngine(postgres_server.create_database(), min_size=1, max_size=1))
    store.open()
    try:
        await store.set_state("k", 1)
        postgres_server.stop()
        postgres_server.start()
        await store.set_state("k", 2)  # writes only
        postgres_server.stop()
        postgres_server.start()
        new = await store.append_unseen("c1", [m("user", "hi")], source="t", unseen=unseen_messages)  # reads first
        state, thread = await store.get_state("k"), await store.thread("c1")
    finally:
        store.close()
    assert state == 2 and [x["content"] for x in new] == ["hi"] and [t["content"] for t in thread] == ["hi"]


async def test_a_deferred_flush_applies_to_its_own_transaction_only(postgres_url: str) -> None:
    """`defer_flush` must not leak to the next transaction on the same pooled connection."""
    store = Store(PostgresEngine(postgres_url, min_size=1, max_size=1))
    store.open()

    def deferred(c: Conn) -> Any:
        c.defer_flush()
        return c.execute("SHOW synchronous_commit").fetchone()

    try:
        inside = await store.write(deferred)
        after = await store.write(lambda c: c.execute("SHOW synchronous_commit").fetchone())
    finally:
        store.close()
    assert inside == {"synchronous_commit": "off"} and after == {"synchronous_commit": "on"}


def sqlite_store(tmp_path: Path, **engine: Any) -> Store:
    store = Store(SQLiteEngine(tmp_path / "pete.db", **engine))
    store.open()
    return store


async def test_a_sqlite_write_with_its_lock_free_runs_on_the_event_loop_without_a_thread_hop(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    try:
        ran_on = await store.write(
            lambda c: (c.execute("INSERT INTO kv(key, value, updated_at) VALUES ('a', '1', 0)"), threading.get_ident())[
                1
            ]
        )
        value = await store.get_state("a")
    finally:
        store.close()
    assert ran_on == threading.get_ident() and value == 1


async def test_a_sqlite_write_another_process_has_locked_waits_in_a_thread_and_the_loop_keeps_running(
    tmp_path: Path,
) -> None:
    """Another process's write lock (here: a second connection) must never stall the event loop."""
    store = sqlite_store(tmp_path)
    other = sqlite3.connect(tmp_path / "pete.db", isolation_level=None)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.01)

    try:
        other.execute("BEGIN IMMEDIATE")
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            writing = anyio.Event()

            async def write() -> None:
                await store.set_state("k", "mine")
                writing.set()

            tg.start_soon(write)
            await anyio.sleep(0.3)
            waited_ticks, done_early = ticks, writing.is_set()
            other.execute("COMMIT")
            with anyio.fail_after(5):
                await writing.wait()
            tg.cancel_scope.cancel()
        value = await store.get_state("k")
    finally:
        other.close()
        store.close()
    assert not done_early and waited_ticks >= 10 and value == "mine"


async def test_a_sqlite_write_gives_up_on_a_lock_held_past_its_wait(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path, busy_wait_s=0.2)
    other = sqlite3.connect(tmp_path / "pete.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with anyio.fail_after(5), pytest.raises(StoreError, match="locked"):
            await store.set_state("k", 1)
        other.execute("ROLLBACK")
        await store.set_state("k", 2)  # the writer is usable again
        value = await store.get_state("k")
    finally:
        other.close()
        store.close()
    assert value == 2


async def test_a_sqlite_write_waits_for_one_a_thread_is_running_instead_of_blocking_the_loop(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    engine = store.engine
    assert isinstance(engine, SQLiteEngine)
    release = threading.Event()

    def slow(c: Conn) -> None:
        c.execute("INSERT INTO kv(key, value, updated_at) VALUES ('slow', '1', 0)")
        release.wait(5)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: anyio.to_thread.run_sync(engine.write, slow))
            await anyio.sleep(0.1)  # the thread holds the write lock now
            with pytest.raises(WouldBlock):
                engine.write_nowait(lambda c: None)
            tg.start_soon(store.set_state, "after", 1)
            await anyio.sleep(0.05)
            release.set()
        values = (await store.get_state("slow"), await store.get_state("after"))
    finally:
        release.set()
        store.close()
    assert values == (1, 1)


async def test_sqlite_checkpoints_run_in_their_own_thread_not_inside_a_commit(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path, checkpoint_every=5)
    engine = store.engine
    assert isinstance(engine, SQLiteEngine)
    try:
        autocheckpoint = await store.write(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone())
        for i in range(12):
            await store.set_state(f"k{i}", i)
        store.close()  # waits for a checkpoint in flight
        checkpoints = engine.checkpoints
    finally:
        store.close()
    assert autocheckpoint == {"wal_autocheckpoint": 0}
    assert checkpoints >= 1


def engine_for(db: dict[str, Any], migrations: Any) -> Any:
    if db.get("database_url"):
        return PostgresEngine(db["database_url"], min_size=1, max_size=2, migrations=migrations)
    return SQLiteEngine(Path(db["data_dir"]) / "pete.db", migrations=migrations)


async def test_tenants_from_before_phone_keys_are_keyed_found_and_healed_by_an_import(
    db_settings: dict[str, Any],
) -> None:
    """Migration 6 keys the rows it can in SQL; the lookup still finds the others, and the next
    import keys them."""
    before = Store(engine_for(db_settings, [mig for mig in MIGRATIONS if mig.version < 6]))
    before.open()
    try:
        for phone, name in (
            ("+15552010001", "Ana"),
            ("(555) 201-0002", "Bo"),
            ("tel:555-201-0003", "Cy"),  # letters: the migration leaves it unkeyed
            ("+44 20 7946 0958", "Di"),
        ):
            await before.execute(
                "INSERT INTO tenants(phone, name, unit, property) VALUES (?, ?, '1', '')", (phone, name)
            )
    finally:
        before.close()
    store = Store(engine_for(db_settings, MIGRATIONS))
    store.open()
    desk = PropertyDesk(store)
    try:
        keys = {r["phone"]: r["phone_key"] for r in await store.query("SELECT phone, phone_key FROM tenants")}
        found = [
            (t.name if t else None)
            for t in [
                await desk.lookup_tenant(number)
                for number in ("+1 555 201 0001", "5552010002", "+15552010003", "+442079460958", "+15559999999")
            ]
        ]
        await upsert_tenants(store, [TenantRow("+15552010009", "Ed", "9")])
        healed = await store.query("SELECT phone_key FROM tenants WHERE phone = 'tel:555-201-0003'")
        new = await store.query("SELECT phone_key FROM tenants WHERE phone = '+15552010009'")
    finally:
        store.close()
    assert keys == {
        "+15552010001": "5552010001",
        "(555) 201-0002": "5552010002",
        "tel:555-201-0003": "",
        "+44 20 7946 0958": "2079460958",
    }
    assert found == ["Ana", "Bo", "Cy", "Di", None]
    assert healed == [{"phone_key": "5552010003"}] and new == [{"phone_key": "5552010009"}]


async def test_a_sqlite_lookup_runs_on_the_event_loop_and_waits_in_a_thread_for_a_held_reader(
    tmp_path: Path,
) -> None:
    store = sqlite_store(tmp_path)
    engine = store.engine
    assert isinstance(engine, SQLiteEngine) and engine._reader is not None
    engine._reader.create_function("thread_id", 0, threading.get_ident)
    try:
        here = await store.lookup("SELECT thread_id() AS t")
        engine._read_lock.acquire()  # as a long read in a worker thread would
        try:
            with pytest.raises(WouldBlock):
                engine.read_nowait("SELECT 1", ())
            async with anyio.create_task_group() as tg:
                result: list[Any] = []

                async def look() -> None:
                    result.extend(await store.lookup("SELECT thread_id() AS t"))

                tg.start_soon(look)
                await anyio.sleep(0.05)
                assert not result  # waiting off the loop, the loop free
                engine._read_lock.release()
        finally:
            if engine._read_lock.locked():
                engine._read_lock.release()
    finally:
        store.close()
    assert here == [{"t": threading.get_ident()}] and result and result[0]["t"] != threading.get_ident()


async def test_a_new_postgres_database_numbers_tickets_from_1001(postgres_url: str) -> None:
    store = Store(PostgresEngine(postgres_url))
    store.open()
    try:
        ticket = await store.insert(
            "INSERT INTO maintenance_requests(call_id, issue_key, unit, category, description, urgency, created_at) "
            "VALUES ('c2', 'k', '4B', 'plumbing', 'leak', 'routine', 1) RETURNING ticket"
        )
    finally:
        store.close()
    assert ticket == 1001


async def test_two_replicas_migrating_a_new_database_at_once_both_start(postgres_url: str) -> None:
    stores = [Store(PostgresEngine(postgres_url)) for _ in range(3)]
    async with anyio.create_task_group() as tg:
        for store in stores:
            tg.start_soon(anyio.to_thread.run_sync, store.open)
    try:
        versions = await stores[0].query("SELECT version FROM schema_version ORDER BY version")
    finally:
        for store in stores:
            store.close()
    assert [v["version"] for v in versions] == [mig.version for mig in MIGRATIONS]


def test_an_unreachable_database_names_database_url_and_hides_the_password() -> None:
    with socket_closed_port() as port:
        url = f"postgresql://pete:s3cret-pw@127.0.0.1:{port}/pete"
        with pytest.raises(ConfigError) as caught:
            Store(PostgresEngine(url, timeout_s=2)).open()
    message = str(caught.value)
    assert "DATABASE_URL" in message and "s3cret-pw" not in message and "pete:***@127.0.0.1" in message


def test_placeholders_become_pyformat_outside_quotes_and_percent_signs_are_escaped() -> None:
    assert to_pyformat("SELECT ? , '?%' FROM t WHERE a LIKE '%x' AND b = ?") == (
        "SELECT %s , '?%%' FROM t WHERE a LIKE '%%x' AND b = %s"
    )
    assert redact_url("postgresql://u:p@h:1/d") == "postgresql://u:***@h:1/d"
    assert redact_url("postgresql://h/d") == "postgresql://h/d"


class socket_closed_port:
    """A loopback port nobody listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None
