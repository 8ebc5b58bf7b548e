"""What a session request can fail with (each carries the HTTP status to answer), and the check of an
SDP offer before a session is built for it."""

from __future__ import annotations

from aiortc.sdp import SessionDescription


class SessionError(Exception):
    """A session request that cannot be served; ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SessionLimitError(SessionError):
    status = 429


class SessionNotFound(SessionError):
    status = 404


class SessionRefused(SessionError):
    status = 422


class BadOffer(SessionError):
    status = 400


class SayQueueFull(SessionError):
    status = 429


class SessionClosed(SessionError):
    status = 409


class AudioBusy(SessionError):
    status = 409


def check_offer(sdp: str) -> None:
    """Reject offers the avatar cannot answer, naming what is wrong (raises ``BadOffer``)."""
    if not sdp.strip():
        raise BadOffer("the SDP offer is empty")
    try:
        desc = SessionDescription.parse(sdp)
    except (ValueError, IndexError, KeyError, TypeError) as e:
        raise BadOffer(f"the SDP offer cannot be parsed: {e}") from e
    kinds = [m.kind for m in desc.media]
    if "audio" not in kinds or "video" not in kinds:
        raise BadOffer(f"the SDP offer has media {kinds or 'none'}; it needs one audio and one video m-line (recvonly)")
    for m in desc.media:
        if m.kind in ("audio", "video") and m.direction in ("sendonly", "inactive"):
            raise BadOffer(
                f"the offer's {m.kind} m-line is {m.direction}; the avatar sends media, offer recvonly or sendrecv"
            )
        if m.kind in ("audio", "video") and not (m.ice and m.ice.usernameFragment and m.dtls and m.dtls.fingerprints):
            raise BadOffer(f"the offer's {m.kind} m-line has no ICE credentials or DTLS fingerprint")
