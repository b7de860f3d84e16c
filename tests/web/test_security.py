"""Token comparison and the raw-path guard."""

from __future__ import annotations

import pytest

from bl_reservoir.web.security import token_matches, unsafe_path


def test_token_matches():
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc") and not token_matches("", "abc") and not token_matches(None, "abc")
    assert not token_matches("abc", None) and not token_matches("", "")  # no token configured: nothing matches
    assert token_matches("é-ü", "é-ü")


@pytest.mark.parametrize("raw", [b"/a/../b", b"/a/..", b"/..", b"/a/%2e%2e/b", b"/a/%2E%2e", b"/a/.%2e/b",
                                 b"/a%2fb", b"/a%2Fb", b"/a%5cb", b"/a\\b", b"/a%00b", b"/a/./b", b"/a/x..y"])
def test_unsafe(raw):
    assert unsafe_path(raw)


@pytest.mark.parametrize("raw", [b"/", b"/api/observations/GBT_1_fine/dedoppler/search/hits/3.png",
                                 b"/static/app.js", b"/a.b/c"])
def test_safe(raw):
    assert not unsafe_path(raw)


# ---------------------------------------------------------------- request bodies over the limit

def test_an_oversized_post_is_refused_before_its_body_is_read_or_its_token_checked(tmp_path):
    """A live server: the request declares 5 MiB and sends none of it; the 413 comes at once (nothing
    waits for the body) and before authentication (no token gives 413, not 401)."""
    import socket

    from _webapp import TOKEN, LiveServer

    from bl_reservoir.web import create_app

    app = create_app(bucket=str(tmp_path / "bucket"), db=f"sqlite:///{tmp_path / 'store.db'}", token=TOKEN,
                     index_on_start=False)
    with LiveServer(app) as server:
        for auth in ["", "Authorization: Bearer wrong\r\n", f"Authorization: Bearer {TOKEN}\r\n"]:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             f"{auth}Content-Length: {5 * 2**20}\r\n\r\n".encode())
                answer = b""
                while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                    got = sock.recv(65536)   # times out (a failure) if the server waits for the body
                    if not got:
                        break
                    answer += got
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 413 "), (auth, answer[:200])
            assert b"x-content-type-options: nosniff" in head.lower()   # the guard's headers still go on
            assert body == b'{"detail":"request body over the limit of 1048576 bytes"}'


def _post_streamed(app, total: int, chunk: int = 64 * 1024, headers=()) -> tuple[int, int, bytes]:
    """POST /api/jobs through the ASGI app with a body of `total` bytes sent in chunks without a
    Content-Length (as chunked transfer does): (status, bytes the app pulled, response body)."""
    import asyncio

    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        size = min(chunk, total - pulled)
        pulled += size
        return {"type": "http.request", "body": b"x" * size, "more_body": pulled < total}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/jobs", "raw_path": b"/api/jobs", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, pulled, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_streamed_body_is_cut_off_where_it_passes_the_limit(tmp_path):
    from _webapp import TOKEN

    from bl_reservoir.web import create_app

    db = f"sqlite:///{tmp_path / 'store.db'}"
    app = create_app(bucket=str(tmp_path / "bucket"), db=db, token=TOKEN, index_on_start=False)
    status, pulled, body = _post_streamed(app, 5 * 2**20)
    assert status == 413 and body == b'{"detail":"request body over the limit of 1048576 bytes"}'
    assert pulled <= 2**20 + 64 * 1024   # read up to the chunk that passed the limit, never the rest
    small = create_app(bucket=str(tmp_path / "bucket"), db=db, token=TOKEN, index_on_start=False, max_body_bytes=100)
    assert _post_streamed(small, 101, chunk=50)[:2] == (413, 101)
    # under the limit the body reaches the route, which finds it is no JSON
    assert _post_streamed(small, 100, chunk=50)[0] == 422


# ---------------------------------------------------------------- job errors without the token

def test_redact_paths():
    from bl_reservoir.web.security import redact_paths

    assert redact_paths("/home/alice/.cache/bl-reservoir/inputs/obs.h5: truncated") == "…/obs.h5: truncated"
    assert redact_paths("[Errno 2] No such file: '/srv/scratch/job1/out/' (see /tmp/x/log.txt)") == \
        "[Errno 2] No such file: '…/out/' (see …/log.txt)"
    assert redact_paths("file:///data/obs/x.fil failed") == "…/x.fil failed"
    kept = "gs://bucket/obs/x.h5, http://127.0.0.1:8000/a/b.h5, ./bl-scale/obs/x, drift 0.5 Hz/s, /healthz"
    assert redact_paths(kept) == kept


SECRET_ERROR = "/home/alice/.cache/bl-reservoir/inputs/b.h5: truncated (see /srv/scratch/job-1/log.txt)"
SHORT_ERROR = "…/b.h5: truncated (see …/log.txt)"


def _failed_job(client) -> tuple[str, str]:
    store = client.app.state.web.jobs
    cid = store.create_campaign("dedoppler/search", ["/data/b.h5"], bucket="/srv/bucket")
    job = store.list_jobs(cid)[0]["id"]
    store.record_event({"event": "running", "job": job, "command": ["python3", "-m", "alg",
                                                                   "/home/alice/.cache/bl-reservoir/inputs/b.h5"]})
    store.record_event({"event": "failed", "job": job, "reason": SECRET_ERROR})
    store.finish_job(job, "failed", error=SECRET_ERROR)
    store.close_campaign(cid)
    return cid, job


def _seen(client, cid: str, job: str, **kw) -> list[str]:
    """Every place a job's error shows: the jobs list, the job with its events, the campaign, its page
    and both event streams."""
    one = client.get(f"/api/jobs/{job}", **kw).json()
    with client.stream("GET", f"/api/jobs/{job}/events", **kw) as stream:
        job_stream = "".join(stream.iter_text()).replace("\\u2026", "…")   # JSON escapes the ellipsis
    with client.stream("GET", f"/api/campaigns/{cid}/events", **kw) as stream:
        campaign_stream = "".join(stream.iter_text()).replace("\\u2026", "…")
    return [client.get("/api/jobs?state=failed", **kw).json()["items"][0]["error"], one["error"],
            one["events"][1]["payload"]["reason"], one["events"][0]["payload"]["command"][-1],
            client.get(f"/api/campaigns/{cid}", **kw).json()["jobs"][0]["error"],
            client.get(f"/campaigns/{cid}", **kw).text, job_stream, campaign_stream]


def test_job_errors_without_the_token_do_not_show_local_paths(client):
    from _webapp import TOKEN

    cid, job = _failed_job(client)
    anonymous = _seen(client, cid, job)
    assert anonymous[:3] == [SHORT_ERROR] * 3 and anonymous[3] == "…/b.h5" and anonymous[4] == SHORT_ERROR
    for text in anonymous[5:]:   # the page and the streams
        assert "/home/alice" not in text and "/srv/scratch" not in text and "…/b.h5: truncated" in text
    with_token = _seen(client, cid, job, headers={"Authorization": f"Bearer {TOKEN}"})
    assert with_token[:3] == [SECRET_ERROR] * 3 and with_token[3].startswith("/home/alice/")
    assert all(SECRET_ERROR in text for text in with_token[5:])
    client.cookies.set("bl_token", TOKEN)   # logged in through the form: reads see everything too
    assert _seen(client, cid, job)[:2] == [SECRET_ERROR] * 2


def test_a_server_without_a_token_shows_errors_whole(runner_bucket, tmp_path):
    from _webapp import make_client

    with make_client(runner_bucket[0], tmp_path / "store.db", token="", index_on_start=False) as c:
        cid, job = _failed_job(c)
        assert _seen(c, cid, job)[:3] == [SECRET_ERROR] * 3
