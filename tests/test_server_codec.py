"""Live sessions encode VP8 without libvpx's temporal denoiser; the frames still decode."""

from __future__ import annotations

import fractions

import av
import numpy as np


def test_vp8_encoder_is_installed_and_encodes_decodable_frames() -> None:
    import aiortc.rtcrtpsender as sender
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from server import codec

    codec.install()
    codec.install()  # idempotent
    vp8 = RTCRtpCodecParameters(mimeType="video/vp8", clockRate=90000, payloadType=96)
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    enc = sender.get_encoder(vp8)
    assert isinstance(enc, Vp8Encoder) and type(enc).__name__ == "LiveVp8Encoder"
    assert type(sender.get_encoder(opus)).__name__ == "OpusEncoder"

    rng = np.random.default_rng(0)
    img = np.full((96, 128, 3), 128, np.uint8)
    img[30:60, 40:90] = rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
    assert enc._open(128, 96).options["noise-sensitivity"] == "0"  # before libvpx opens and takes them
    payloads, _ = enc.encode(frame, force_keyframe=True)
    assert payloads
    first = enc.codec
    # a bitrate change reopens the codec (through our _open, at the new rate)
    enc.target_bitrate = 2 * enc.target_bitrate
    frame.pts = 3600
    enc.encode(frame)
    assert enc.codec is not first and enc.codec.bit_rate == enc.target_bitrate
    # the receiving side decodes what was sent (payload descriptors stripped as aiortc's depacketizer does)
    from aiortc.codecs.vpx import vp8_depayload

    data = b"".join(vp8_depayload(p) for p in payloads)
    out = Vp8Decoder().decode(JitterFrame(data=data, timestamp=0))
    assert out and (out[0].width, out[0].height) == (128, 96)
