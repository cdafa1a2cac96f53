"""Least privilege is real: every write to raw by an extract, an import and a stream commit
is made as klinehouse_loader (a trigger in the test's database records current_user)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from app.cli import main
from devstack.standin.binance_rest import StandinThread as RestStandin
from devstack.standin.binance_ws import Scenario, generated_timeline, synthetic_candles
from devstack.standin.binance_ws import StandinThread as WsStandin
from extract.stream.ingester import StreamIngester, StreamOptions
from klinehouse.settings import Settings, get_settings

AUDIT = """
CREATE TABLE public.raw_writers (who name NOT NULL, op text NOT NULL, source text);
GRANT INSERT ON public.raw_writers TO PUBLIC;
CREATE FUNCTION public.record_raw_writer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.raw_writers VALUES (current_user, TG_OP, NEW.source);
    RETURN NULL;
END $$;
CREATE TRIGGER record_raw_writer AFTER INSERT OR UPDATE ON raw.binance_klines
    FOR EACH ROW EXECUTE FUNCTION public.record_raw_writer();
"""


def _with_db(url: str, database_url: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]


@pytest.fixture
def audited(
    stack: Settings,
    database_url: str,
    lake_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    """Settings as a deployment has them: the owner's URL and the loader's, same database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(AUDIT)
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", database_url)
    monkeypatch.setenv("KLINEHOUSE_LOADER_DATABASE_URL", _with_db(stack.loader_url(), database_url))
    yield get_settings(fresh=True)
    get_settings(fresh=True)


def _writers(url: str) -> dict[tuple[str, str, str], int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT who, op, source, count(*) FROM public.raw_writers GROUP BY 1, 2, 3"
        ).fetchall()
    return {(str(r[0]), str(r[1]), str(r[2])): int(r[3]) for r in rows}


def _cli(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _archive_csv(path: Path) -> Path:
    hour = 3_600_000
    start = 1_709_251_200_000  # 2024-03-01T00:00Z
    lines = [
        f"{start + i * hour},100,101,99,100.5,2,{start + (i + 1) * hour - 1},201,7,1,100.5,0"
        for i in range(3)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_extract_import_and_stream_write_raw_only_as_the_loader(
    audited: Settings, binance_standin: RestStandin, tmp_path: Path
) -> None:
    code = _cli(
        ["extract", "--symbol", "BNBUSDT", "--interval", "1d",
         "--start", "2024-01-01", "--end", "2024-01-05", "--source", "rest"]
    )  # fmt: skip
    assert code == 0
    assert _cli(["import-archive", str(_archive_csv(tmp_path / "BTCUSDT-1h-2024-03.csv"))]) == 0

    series = synthetic_candles(["ETHUSDT"], interval="1m", start_ms=1_709_251_200_000, count=3)
    with WsStandin(Scenario(generated_timeline(series.values(), updates=1))) as ws:
        settings = audited.model_copy(update={"binance_ws_url": ws.url})
        options = StreamOptions(
            market="spot",
            symbols=("ETHUSDT",),
            intervals=("1m",),
            flush_rows=1000,
            flush_seconds=0.1,
        )

        async def run() -> int:
            ingester = StreamIngester(options, settings=settings)
            task = asyncio.create_task(ingester.run())
            played = await asyncio.get_running_loop().run_in_executor(None, ws.wait_finished, 30)
            assert played, "the stand-in did not finish its timeline"
            await asyncio.sleep(0.5)
            ingester.stop()
            return (await task).committed

        committed = asyncio.run(run())
    assert committed >= 2  # closed candles (the last one may still be forming)

    writers = _writers(audited.require_database_url())
    assert {who for who, _, _ in writers} == {"klinehouse_loader"}
    assert {source for _, _, source in writers} == {"rest", "archive", "stream"}
    assert writers[("klinehouse_loader", "INSERT", "archive")] == 3
