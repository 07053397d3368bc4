import socket

from tame_assets.live.delivery import WebhookSender, deliver
from tame_assets_tests.live.receiver import Receiver


def test_webhook_posts_json_and_retries_a_failing_receiver():
    receiver = Receiver(fail_first=2)
    try:
        result = deliver(receiver.url, {"rule": "aurora", "frames": ["a.png"]}, retries=3, backoff_s=0.01)
        assert result.ok and result.attempts == 3 and result.status == 204
        assert receiver.bodies == [{"rule": "aurora", "frames": ["a.png"]}]
    finally:
        receiver.close()


def test_an_unreachable_webhook_is_logged_and_given_up_without_blocking(caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = WebhookSender(f"http://127.0.0.1:{port}/x", timeout_s=0.5, retries=1, backoff_s=0.01)
    sender.send({"rule": "aurora"})  # returns at once; delivery happens in the sender's thread
    sender.send({"rule": "second"})
    assert sender.flush(10.0)
    assert [r.ok for r in sender.results] == [False, False] and all(r.attempts == 2 for r in sender.results)
    assert "alert aurora not delivered" in caplog.text
    sender.close()
