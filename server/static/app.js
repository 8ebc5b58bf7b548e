// talker browser client: WebRTC offer/answer against POST /sessions, then say / chat / interrupt / close.
// No build step: plain ES2017 in one file. State lives in `window.talker` (the tests read it).
"use strict";

const $ = (id) => document.getElementById(id);
const talker = (window.talker = { pc: null, sessionId: null, stats: {}, error: null });

function apiKey() {
  return localStorage.getItem("talkerApiKey") || "";
}

async function api(method, path, body, isForm) {
  const headers = {};
  if (apiKey()) headers["X-API-Key"] = apiKey();
  let payload;
  if (body !== undefined) {
    if (isForm) payload = body;
    else {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  const r = await fetch(path, { method, headers, body: payload });
  if (r.status === 401 || r.status === 403) $("keybox").hidden = false;
  if (r.status === 204) return null;
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data);
    throw new Error(`${r.status}: ${detail}`);
  }
  return data;
}

function show(msg) {
  $("status").textContent = msg;
}

function fail(e) {
  talker.error = String(e.message || e);
  show("error: " + talker.error);
}

function setConnected(on) {
  $("connect").disabled = on;
  $("disconnect").disabled = !on;
  $("say").disabled = !on;
  $("chat").disabled = !on;
  $("interrupt").disabled = !on;
  $("portrait").disabled = on;
}

function addGroup(sel, label, items) {
  if (!items.length) return;
  const group = document.createElement("optgroup");
  group.label = label;
  for (const [value, text] of items) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    group.appendChild(o);
  }
  sel.appendChild(group);
}

async function loadPortraits(select) {
  const list = await api("GET", "/portraits");
  const sel = $("portrait");
  sel.innerHTML = "";
  for (const p of list) {
    const o = document.createElement("option");
    o.value = p.portrait_id;
    o.textContent = p.portrait_id === "default" ? "default (bundled)" : "uploaded " + p.portrait_id;
    sel.appendChild(o);
  }
  const personas = await api("GET", "/personas");
  addGroup(sel, "personas", personas.map((p) => ["persona:" + p.persona_id, `${p.name} (${p.voice_id})`]));
  const avatars = (await api("GET", "/avatars")).filter((a) => a.status === "ready");
  addGroup(sel, "video avatars", avatars.map((a) => ["avatar:" + a.name, `${a.name} (${a.loop_s} s loop)`]));
  if (select) sel.value = select;
}

async function upload(file) {
  show("uploading and finding the face…");
  const form = new FormData();
  form.append("file", file);
  const p = await api("POST", "/portraits", form, true);
  await loadPortraits(p.portrait_id);
  show(`portrait ${p.portrait_id} ready (${p.width}x${p.height})`);
}

function iceGatheringDone(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

async function connect() {
  talker.error = null;
  show("connecting…");
  const cfg = await api("GET", "/config");
  const pc = new RTCPeerConnection({ iceServers: cfg.ice_servers });
  talker.pc = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (ev) => {
    stream.addTrack(ev.track);
    $("video").srcObject = stream;
  };
  pc.onconnectionstatechange = () => {
    $("overlay").textContent = pc.connectionState;
    if (pc.connectionState === "failed" || pc.connectionState === "closed") disconnect(false);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringDone(pc, 3000);
  const choice = $("portrait").value;
  const answer = await api("POST", "/sessions", {
    sdp: pc.localDescription.sdp,
    type: "offer",
    ...(choice.startsWith("persona:")
      ? { persona_id: choice.slice(8) }
      : choice.startsWith("avatar:")
        ? { avatar: choice.slice(7) }
        : { portrait_id: choice }),
  });
  talker.sessionId = answer.session_id;
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  setConnected(true);
  show(`session ${answer.session_id}\n${answer.width}x${answer.height} at ${answer.fps} fps`);
}

async function disconnect(sendDelete) {
  const id = talker.sessionId;
  talker.sessionId = null;
  if (sendDelete !== false && id) await api("DELETE", `/sessions/${id}`).catch(() => {});
  if (talker.pc) talker.pc.close();
  talker.pc = null;
  setConnected(false);
  $("overlay").textContent = "not connected";
}

async function say() {
  const text = $("text").value;
  const r = await api("POST", `/sessions/${talker.sessionId}/say`, { text, interrupt: $("barge").checked });
  show(`utterance ${r.utterance_id} queued (${r.waiting} waiting)`);
}

async function chat() {
  const text = $("text").value;
  const r = await api("POST", `/sessions/${talker.sessionId}/chat`, { text, interrupt: $("barge").checked });
  show(r.mode === "chat" ? `message ${r.utterance_id} sent; the reply is spoken as it streams`
                         : `no chat endpoint: repeating (utterance ${r.utterance_id})`);
}

async function interrupt() {
  const r = await api("POST", `/sessions/${talker.sessionId}/interrupt`);
  show(r.interrupted ? `interrupted; idle from frame ${r.idle_from_frame}` : "nothing was being said");
}

async function pollStats() {
  const pc = talker.pc;
  if (!pc) return;
  const report = await pc.getStats();
  const s = {};
  report.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      s.framesDecoded = r.framesDecoded;
      s.fps = r.framesPerSecond;
      s.videoBytes = r.bytesReceived;
    }
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      s.audioPackets = r.packetsReceived;
      s.audioBytes = r.bytesReceived;
      s.audioSamples = r.totalSamplesReceived;
      s.audioLevel = r.audioLevel;
      s.audioEnergy = r.totalAudioEnergy;
    }
  });
  talker.stats = s;
  $("overlay").textContent =
    `${pc.connectionState} · ${s.fps || 0} fps · audio ${(s.audioLevel || 0).toFixed(2)}`;
}

function guard(fn) {
  return (...args) => fn(...args).catch(fail);
}

$("connect").onclick = guard(connect);
$("disconnect").onclick = guard(() => disconnect(true));
$("say").onclick = guard(say);
$("chat").onclick = guard(chat);
$("interrupt").onclick = guard(interrupt);
$("file").onchange = guard(async (ev) => {
  if (ev.target.files.length) await upload(ev.target.files[0]);
  ev.target.value = "";
});
$("savekey").onclick = () => {
  localStorage.setItem("talkerApiKey", $("apikey").value);
  $("keybox").hidden = true;
  guard(loadPortraits)();
};
$("text").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && talker.sessionId) guard(say)();
});
window.addEventListener("beforeunload", () => {
  if (talker.sessionId) {
    fetch(`/sessions/${talker.sessionId}`, { method: "DELETE", keepalive: true, headers: apiKey() ? { "X-API-Key": apiKey() } : {} });
  }
});
setInterval(() => pollStats().catch(() => {}), 500);
guard(loadPortraits)();
