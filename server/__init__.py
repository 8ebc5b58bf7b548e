"""The live avatar server: WebRTC sessions, render jobs and their HTTP API (``create_app``).

No model logic lives here: sessions, jobs and transport around ``talker.Pipeline``'s stages.
"""
