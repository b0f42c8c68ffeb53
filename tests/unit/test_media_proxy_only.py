"""Only Discord's media proxy is fetched: exact origins, never a suffix match, no redirects, a byte cap.
The fetcher is tested against real local servers; a server outside the list must see no request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.images import DownloadGate, MediaFetcher, MediaRefused, ProxiedImage
from bot.images.media import COULD_NOT_FETCH, NOT_FETCHED, TOO_LARGE, origin_of, parse_media_host
from bot.settings import Settings, SettingsError

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("entry", "origin"),
    [
        ("cdn.discordapp.com", "https://cdn.discordapp.com:443"),
        ("Media.DiscordApp.net", "https://media.discordapp.net:443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://media.discordapp.net/", "https://media.discordapp.net:443"),
        ("http://localhost", "http://localhost:80"),
    ],
)
def test_an_entry_is_a_bare_host_on_https_or_a_whole_origin(entry: str, origin: str) -> None:
    assert parse_media_host(entry) == origin


@pytest.mark.parametrize("entry", ["", "*.discordapp.net", "ftp://cdn.discordapp.com", "https://x/path", "a b", ".x"])
def test_anything_else_is_not_an_entry(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_media_host(entry)


def test_matching_is_exact_never_by_suffix_scheme_or_port() -> None:
    fetcher = MediaFetcher([parse_media_host("media.discordapp.net"), parse_media_host("http://127.0.0.1:8080")])
    assert fetcher.allows("https://media.discordapp.net/attachments/1/2/a.png?ex=1")
    assert fetcher.allows("https://MEDIA.discordapp.net:443/x.png")
    assert fetcher.allows("http://127.0.0.1:8080/external/abc/https/example.com/a.png")
    for url in (
        "http://media.discordapp.net/x.png",  # https only for a bare host
        "https://media.discordapp.net:8443/x.png",
        "https://evil-media.discordapp.net/x.png",
        "https://media.discordapp.net.evil.example/x.png",
        "https://evil.example/media.discordapp.net/x.png",
        "https://media.discordapp.net@evil.example/x.png",
        "http://127.0.0.1:8081/x.png",
        "http://127.0.0.1/x.png",
        "file:///etc/passwd",
        "https://[::1/x.png",
    ):
        assert not fetcher.allows(url), url
    assert origin_of("not a url") is None


def test_the_setting_reads_hosts_and_origins_and_names_a_bad_entry() -> None:
    base = {"DISCORD_TOKEN": "t", "VLM_API_KEY": "k"}
    assert Settings.from_env(base).discord_media_hosts == {
        "https://cdn.discordapp.com:443",
        "https://media.discordapp.net:443",
        "https://images-ext-1.discordapp.net:443",
        "https://images-ext-2.discordapp.net:443",
    }
    custom = Settings.from_env(base | {"DISCORD_MEDIA_HOSTS": "media.discordapp.net, http://127.0.0.1:9000"})
    assert custom.discord_media_hosts == {"https://media.discordapp.net:443", "http://127.0.0.1:9000"}
    with pytest.raises(SettingsError) as error:
        Settings.from_env(base | {"DISCORD_MEDIA_HOSTS": "*.discordapp.net"})
    assert error.value.problems[0].startswith("DISCORD_MEDIA_HOSTS")


class Server:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.origin = ""
        self.routes: dict[str, web.Response] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.log.append(request.path)
        return self.routes.get(request.path) or web.Response(status=404)


async def _serve() -> tuple[Server, web.AppRunner]:
    server = Server()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return server, runner


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Server, Server]]:
    (proxy, one), (outside, two) = await _serve(), await _serve()
    yield proxy, outside
    await one.cleanup()
    await two.cleanup()


async def test_the_proxy_is_fetched_and_nothing_else_is_ever_requested(servers: tuple[Server, Server]) -> None:
    proxy, outside = servers
    fetcher = MediaFetcher([proxy.origin])
    proxy.routes["/ok.png"] = web.Response(body=b"\x89PNG image")
    proxy.routes["/moved.png"] = web.Response(status=302, headers={"Location": f"{outside.origin}/stolen"})
    proxy.routes["/big.png"] = web.Response(body=b"x" * 5000)
    try:
        assert await fetcher.fetch(f"{proxy.origin}/ok.png") == b"\x89PNG image"
        with pytest.raises(MediaRefused) as refused:
            await fetcher.fetch(f"{outside.origin}/ok.png")
        assert refused.value.reason == NOT_FETCHED
        with pytest.raises(MediaRefused) as redirected:
            await fetcher.fetch(f"{proxy.origin}/moved.png")
        assert redirected.value.reason == COULD_NOT_FETCH
        with pytest.raises(MediaRefused) as large:
            await fetcher.fetch(f"{proxy.origin}/big.png", max_bytes=4096)
        assert large.value.reason == TOO_LARGE
        with pytest.raises(MediaRefused):
            await fetcher.fetch(f"{proxy.origin}/missing.png")
    finally:
        await fetcher.close()
    assert outside.log == []  # neither asked directly nor through the redirect
    assert proxy.log == ["/ok.png", "/moved.png", "/big.png", "/missing.png"]


async def _raw_server(response: bytes) -> tuple[str, asyncio.Server]:
    """A server that answers every connection with ``response`` as it is (a proxy that lies)."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", server


async def test_room_is_reserved_by_content_length_and_the_body_never_exceeds_it(servers: tuple[Server, Server]) -> None:
    proxy, _ = servers
    reserved: list[int] = []

    async def reserve(size: int) -> None:
        reserved.append(size)

    proxy.routes["/small.png"] = web.Response(body=b"p" * 300)
    proxy.routes["/large.png"] = web.Response(body=b"x" * 5000)
    lying, lying_server = await _raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"y" * 5000)
    fetcher = MediaFetcher([proxy.origin, lying])
    try:
        assert await fetcher.fetch(f"{proxy.origin}/small.png", max_bytes=4096, reserve=reserve) == b"p" * 300
        assert reserved == [300]
        with pytest.raises(MediaRefused) as large:  # declared over the cap: refused before any room is taken
            await fetcher.fetch(f"{proxy.origin}/large.png", max_bytes=4096, reserve=reserve)
        assert large.value.reason == TOO_LARGE and reserved == [300]
        # Says 100 bytes and sends 5000: at most 100 are reserved, and never more is read. (aiohttp
        # ends the response at the declared length, or refuses it whole when it sees the excess.)
        try:
            body = await fetcher.fetch(lying, max_bytes=4096, reserve=reserve)
        except MediaRefused as refused:
            assert refused.reason == COULD_NOT_FETCH and reserved in ([300], [300, 100])
        else:
            assert body == b"y" * 100 and reserved == [300, 100]
    finally:
        await fetcher.close()
        lying_server.close()
        await lying_server.wait_closed()


async def test_a_body_of_unknown_length_holds_the_cap_is_cut_off_past_it_and_gives_the_room_back() -> None:
    url, server = await _raw_server(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 20_000)
    fetcher = MediaFetcher([url])
    gate = DownloadGate(1_000_000)
    try:
        with pytest.raises(MediaRefused) as refused:
            await ProxiedImage(f"{url}/z.png", "z.png", fetcher, size=4096).read_held(gate)
        assert refused.value.reason == TOO_LARGE
        assert gate.peak == 4096 and gate.in_use == 0 and gate.holders == 0
    finally:
        await fetcher.close()
        server.close()
        await server.wait_closed()
