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
    rate = enc.target_bitrate
    # a rising bitrate estimate does not reopen the codec (a keyframe, rate control from scratch) at once
    enc.target_bitrate = int(1.5 * rate)
    frame.pts = 3600
    enc.encode(frame)
    assert enc.codec is first
    # ... but after REOPEN_MIN_S it does (through our _open, at the new rate)
    enc._opened_at -= codec.REOPEN_MIN_S
    frame.pts = 7200
    enc.encode(frame)
    assert enc.codec is not first and enc.codec.bit_rate == enc.target_bitrate
    # a falling one (congestion) reopens at once
    second = enc.codec
    enc.target_bitrate = rate
    frame.pts = 10800
    enc.encode(frame)
    assert enc.codec is not second and enc.codec.bit_rate == rate
    # the receiving side decodes what was sent (payload descriptors stripped as aiortc's depacketizer does)
    from aiortc.codecs.vpx import vp8_depayload

    data = b"".join(vp8_depayload(p) for p in payloads)
    out = Vp8Decoder().decode(JitterFrame(data=data, timestamp=0))
    assert out and (out[0].width, out[0].height) == (128, 96)


def test_skipping_unchanged_blocks_still_sends_what_moved() -> None:
    """static-thresh skips blocks that did not change; a mouth-sized patch that changes by a few gray
    levels, and one that moves, must still reach the receiver."""
    from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload
    from aiortc.jitterbuffer import JitterFrame

    from server import codec

    enc = codec._encoder_class()()
    dec = Vp8Decoder()
    rng = np.random.default_rng(1)
    base = np.full((256, 256), 120, np.uint8)
    base += rng.integers(0, 6, base.shape, dtype=np.uint8)  # skin-like grain
    frames = []
    for k in range(6):
        y = base.copy()
        y[100:130, 90 + 4 * k : 150 + 4 * k] = 40  # a dark opening that moves 4 px a frame
        y[180:200, 30:60] = 120 + 3 * k  # a flat patch that brightens slowly
        yuv = np.concatenate([y, np.full((128, 256), 128, np.uint8)])
        frames.append(y)
        vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        vf.pts, vf.time_base = k * 3600, fractions.Fraction(1, 90000)
        payloads, ts = enc.encode(vf, force_keyframe=k == 0)
        out = dec.decode(JitterFrame(data=b"".join(vp8_depayload(p) for p in payloads), timestamp=ts))
        got = out[0].to_ndarray(format="yuv420p")[:256]
        err = np.abs(got.astype(int) - y.astype(int))
        assert err[95:135, 80:180].mean() < 4.0  # the moving opening is where it should be
    assert abs(float(got[180:200, 30:60].mean()) - float(frames[-1][180:200, 30:60].mean())) < 3.0


def test_video_frame_holds_the_image() -> None:
    from server.codec import video_frame

    rng = np.random.default_rng(2)
    for w, h in ((512, 512), (640, 360), (100, 60)):
        yuv = rng.integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)
        f = video_frame(yuv)
        assert (f.width, f.height, f.format.name) == (w, h, "yuv420p")
        assert np.array_equal(f.to_ndarray(), yuv)


def test_opus_packets_decode_to_the_speech_and_silence_is_dtx() -> None:
    from server.codec import OpusPackets

    opus = OpusPackets(48_000, 960)
    t = np.arange(960 * 25) / 48_000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).reshape(25, 960)
    frames = list(tone) + [np.zeros(960, np.int16)] * 30 + list(tone[:5])
    packets, encoded = [], 0
    for pcm in frames:
        data = opus.cached(pcm)
        if data is None:
            data = opus.encode(pcm)
            encoded += 1
        packets.append(data)
    flushed = 25 + OpusPackets.SILENCE_FLUSH
    assert encoded == flushed + 5, "silence after the flush is not encoded"
    sent = [k for k, data in enumerate(packets) if data]
    dtx = flushed + OpusPackets.HANDOVER_FRAMES
    assert [k for k in sent if 25 <= k < 55] == list(range(25, dtx)) + [dtx, dtx + OpusPackets.DTX_FRAMES]
    assert len(set(packets[flushed:dtx])) == 1 and len(packets[flushed]) <= 4, "the cached packet of silence"
    assert len(packets[dtx]) == 1, "then a DTX packet: a frame without data"
    dec = av.CodecContext.create("libopus", "r")
    dec.sample_rate, dec.layout = 48_000, "mono"
    level = {}
    for k in sent:
        pkt = av.Packet(packets[k])
        pkt.pts = k * 960
        for f in dec.decode(pkt):
            level[k] = float(np.sqrt(np.mean((f.to_ndarray().reshape(-1).astype(np.float64) / 32768.0) ** 2)))
    assert min(level[k] for k in range(5, 24)) > 0.15, "the tone comes through"
    assert max(level[k] for k in sent if 27 <= k < 55) < 0.001, "silence is silent"
    assert min(level[k] for k in range(56, 60)) > 0.15, "and the tone after it starts clean"
