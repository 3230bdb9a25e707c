// The student page: plain JavaScript against the same API every client uses. Signed in by
// Trac's cookie (same site, sent by the browser) or a bearer token from `#token=…` (kept in
// this tab's sessionStorage only). `?concept=ID` opens a concept; `&ask=TEXT` asks the
// tutor at once (a link Trac's ticket pages can carry).
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let token = sessionStorage.getItem("learntrac-token");
let me = null;
let current = null;
let conversation = null;

if (location.hash.startsWith("#token=")) {
  token = decodeURIComponent(location.hash.slice(7));
  sessionStorage.setItem("learntrac-token", token);
  history.replaceState(null, "", location.pathname + location.search);
}

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function api(path, options) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options, {
    headers: headers(options && options.headers),
  }));
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error((body.error && body.error.message) || resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => (k === "class" ? (e.className = v) : e.setAttribute(k, v)));
  children.forEach((c) => e.append(c));
  return e;
}

async function signIn() {
  try {
    me = (await api("/api/LearnTrac/me")).user;
  } catch (e) {
    $("who").textContent = "not signed in";
    $("signin").hidden = false;
    if (e.status !== 401) $("signin-error").textContent = e.message;
    return;
  }
  $("who").textContent = "signed in as " + me;
  $("signin").hidden = true;
  await loadConcepts();
  const wanted = Number(params.get("concept"));
  if (wanted) await openConcept(wanted);
}

async function loadConcepts() {
  const list = await api("/api/LearnTrac/students/" + encodeURIComponent(me) + "/concepts");
  const ul = $("concepts");
  ul.replaceChildren();
  for (const c of list.concepts) {
    const pct = Math.round((c.mastery || 0) * 100);
    const fill = el("span", {});
    fill.style.width = pct + "%"; // a CSSOM property, which the page's CSP allows
    const bar = el("div", { class: "bar" }, fill);
    const button = el("button", { "data-id": String(c.id) },
      "#" + c.id + " " + c.summary, el("span", { class: "status " + c.status }, c.status),
      el("div", { class: "muted" }, c.mastery == null ? "not practised yet" : "mastery " + pct + "% · " + c.attempts + " attempt(s)"),
      bar);
    button.addEventListener("click", () => openConcept(c.id));
    ul.append(el("li", {}, button));
  }
  $("concepts-panel").hidden = false;
}

async function openConcept(id) {
  const c = await api("/api/LearnTrac/concepts/" + id);
  current = c;
  document.querySelectorAll("#concepts button").forEach((b) => b.setAttribute("aria-current", String(b.dataset.id === String(id))));
  $("concept-title").textContent = "#" + c.id + " " + c.summary;
  $("concept-state").textContent = c.status + " · mastered at " + Math.round(c.mastery_threshold * 100) + "%" + (c.milestone ? " · " + c.milestone : "");
  $("practice-result").textContent = "";
  $("chat").replaceChildren();
  $("chat-error").textContent = "";
  conversation = null;
  $("concept-panel").hidden = false;
  try {
    const convo = await api("/api/chat/concepts/" + id + "/conversation");
    conversation = convo.id;
    convo.messages.forEach((m) => bubble(m.role, m.content, m.status));
  } catch (e) {
    if (e.status === 503) $("chat-error").textContent = e.message;
  }
  // `&listen=SECONDS`: start the microphone at once and stop after that long (a link for
  // hands-free use, and how the browser test speaks).
  const listen = Number(params.get("listen"));
  if (listen && Number(params.get("concept")) === id && !$("voice").disabled) {
    params.delete("listen");
    await startVoice();
    setTimeout(stopVoice, listen * 1000);
  }
  const ask = params.get("ask");
  if (ask && Number(params.get("concept")) === id) {
    params.delete("ask");
    $("question").value = ask;
    await send();
  }
}

function bubble(role, text, status) {
  const b = el("div", { class: "msg " + role + (status === "incomplete" ? " incomplete" : "") }, text);
  $("chat").append(b);
  $("chat").scrollTop = $("chat").scrollHeight;
  return b;
}

// Reads the answer as it streams: Server-Sent Events over a POST, so fetch, not EventSource.
async function send() {
  const text = $("question").value.trim();
  if (!text || !current) return;
  $("question").value = "";
  $("chat-error").textContent = "";
  $("send").disabled = true;
  bubble("user", text);
  const answer = bubble("assistant", "");
  answer.classList.add("streaming");
  try {
    const resp = await fetch("/api/chat/concepts/" + current.id + "/messages", {
      method: "POST",
      credentials: "same-origin",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(conversation ? { message: text, conversation_id: conversation } : { message: text }),
    });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || resp.statusText);
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let name = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trimStart();
        }
        if (!data) continue;
        const d = JSON.parse(data);
        if (name === "conversation") conversation = d.conversation_id;
        else if (name === "delta") answer.textContent += d.text;
        else if (name === "error") {
          answer.classList.add("incomplete");
          $("chat-error").textContent = d.message;
        } else if (name === "done") answer.dataset.done = "true";
      }
    }
  } catch (e) {
    answer.remove();
    $("chat-error").textContent = e.message;
  } finally {
    answer.classList.remove("streaming");
    $("send").disabled = false;
  }
}

// Voice: the microphone at 16 kHz, streamed as 16-bit PCM over /api/voice/ws while the
// button is on; the answer comes back as text (shown as it streams) and a WAV (played).
// The token, if any, travels as a WebSocket subprotocol, never in the URL.
let voice = null;

function voiceState(s) {
  document.body.dataset.voice = s;
  $("voice").textContent = s === "listening" ? "Stop" : "Voice";
}

async function startVoice() {
  if (!current || voice) return;
  $("chat-error").textContent = "";
  const url = new URL("/api/voice/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("concept", current.id);
  if (conversation) url.searchParams.set("conversation_id", conversation);
  const ws = new WebSocket(url, token ? ["learntrac", "bearer." + token] : ["learntrac"]);
  ws.binaryType = "arraybuffer";
  const v = (voice = { ws, answer: null, expectAudio: false });
  ws.onmessage = (m) => onVoiceMessage(v, m);
  ws.onclose = () => {
    if (voice === v) voice = null;
    if (v.stream) v.stream.getTracks().forEach((t) => t.stop());
    if (document.body.dataset.voice === "listening") voiceState("closed");
  };
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error("the voice connection failed")); });
  v.stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  v.ctx = new AudioContext({ sampleRate: 16000 });
  const source = v.ctx.createMediaStreamSource(v.stream);
  const proc = v.ctx.createScriptProcessor(4096, 1, 1);
  proc.onaudioprocess = (e) => {
    if (ws.readyState !== WebSocket.OPEN || !v.listening) return;
    const f = e.inputBuffer.getChannelData(0);
    const pcm = new Int16Array(f.length);
    for (let i = 0; i < f.length; i++) pcm[i] = Math.max(-1, Math.min(1, f[i])) * 0x7fff;
    ws.send(pcm.buffer);
  };
  source.connect(proc);
  proc.connect(v.ctx.destination);
  v.listening = true;
  voiceState("listening");
}

function stopVoice() {
  const v = voice;
  if (!v || !v.listening) return;
  v.listening = false;
  v.stream.getTracks().forEach((t) => t.stop());
  v.ctx.close();
  v.ws.send(JSON.stringify({ type: "end" }));
  voiceState("thinking");
}

function onVoiceMessage(v, m) {
  if (typeof m.data !== "string") {
    if (!v.expectAudio) return;
    const audio = new Audio(URL.createObjectURL(new Blob([m.data], { type: "audio/wav" })));
    audio.addEventListener("playing", () => voiceState("speaking"));
    audio.addEventListener("ended", () => { voiceState("ended"); v.ws.close(); });
    audio.play().catch((e) => { voiceState("error:playback"); $("chat-error").textContent = e.message; });
    return;
  }
  const d = JSON.parse(m.data);
  if (d.type === "transcript") {
    bubble("user", d.text);
    v.answer = bubble("assistant", "");
  } else if (d.type === "conversation") conversation = d.conversation_id;
  else if (d.type === "delta" && v.answer) v.answer.textContent += d.text;
  else if (d.type === "done" && v.answer) v.answer.dataset.done = "true";
  else if (d.type === "audio") v.expectAudio = true;
  else if (d.type === "error") {
    if (v.answer) v.answer.classList.add("incomplete");
    $("chat-error").textContent = d.message;
    voiceState("error:" + d.code);
    v.ws.close();
  }
}

$("voice").addEventListener("click", () => {
  if (voice && voice.listening) stopVoice();
  else startVoice().catch((e) => { $("chat-error").textContent = e.message; voiceState("error:microphone"); });
});

$("ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
$("score").addEventListener("input", () => ($("score-out").textContent = $("score").value + "%"));
$("practise").addEventListener("click", async () => {
  try {
    const r = await api("/api/LearnTrac/concepts/" + current.id + "/practice", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ score: Number($("score").value) / 100 }),
    });
    $("practice-result").textContent = "mastery " + Math.round(r.mastery * 100) + "% after " + r.attempts +
      " attempt(s)" + (r.status_changed ? " — mastered!" : "");
    await loadConcepts();
  } catch (e) {
    $("practice-result").textContent = e.message;
  }
});
$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("learntrac-token", token);
  signIn();
});

// Voice is offered when the deployment has it; sign-in waits for that answer so a
// `listen` link finds the button ready.
api("/api/LearnTrac/health").then((h) => {
  if (h.features && h.features.voice === "enabled") {
    $("voice").disabled = false;
    $("voice").title = "ask by voice: click, speak, click again";
  }
}).catch(() => {}).finally(signIn);
