// The student page: plain JavaScript against the same API every client uses. Signed in by
// Trac's cookie (same site, sent by the browser) or a bearer token from `#token=…` (kept in
// this tab's sessionStorage only). `?concept=ID` opens a concept; `&ask=TEXT` puts a
// question in the box (a link Trac's ticket pages can carry); the student sends it.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let token = sessionStorage.getItem("learntrac-token");
let me = null;
let current = null;
let conversation = null;
let chatOn = false;

// A bearer token's shape (a JWT: three base64url parts). Anything else would break the
// Authorization header or the WebSocket subprotocol, so it is refused here, in words.
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

// Whom a token names (its `sub`), read without verifying: only to ask before switching.
function tokenUser(t) {
  try {
    const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return String(JSON.parse(atob(part)).sub || "");
  } catch (e) {
    return "";
  }
}

// A `#token=…` link, taken out of the address bar on load and when pasted into a tab
// already on the page. It does not act on its own: signIn() uses it at once only when
// nobody is signed in here, or it names who is; otherwise the student is asked first
// (a link someone else sent must not quietly swap whose work this tab shows).
let offered = null;
function takeHashToken() {
  if (!location.hash.startsWith("#token=")) return false;
  let t = "";
  try {
    t = decodeURIComponent(location.hash.slice(7)).trim();
  } catch (e) {
    t = "";
  }
  history.replaceState(null, "", location.pathname + location.search);
  if (!TOKEN_SHAPE.test(t)) {
    showError("signin-error", "This sign-in link is damaged. Log in to Trac, or ask for a new link.");
    return false;
  }
  offered = t;
  return true;
}

function useToken(t) {
  token = t;
  sessionStorage.setItem("learntrac-token", token);
}

// Decides what an offered link does once we know who is signed in (`me`, or null).
function settleOffer() {
  const t = offered;
  offered = null;
  $("switch").hidden = true;
  if (!t) return false;
  const linkUser = tokenUser(t);
  if (!me || linkUser === me) {
    useToken(t);
    return true;
  }
  $("switch-text").textContent = "This link signs in as " + (linkUser || "someone else") +
    ", but this page is signed in as " + me + ".";
  $("switch-to").textContent = "Switch to " + (linkUser || "the link's account");
  $("switch-stay").textContent = "Stay as " + me;
  $("switch").hidden = false;
  $("switch-to").onclick = () => {
    $("switch").hidden = true;
    useToken(t);
    signIn();
  };
  $("switch-stay").onclick = () => ($("switch").hidden = true);
  return false;
}
takeHashToken();

function showError(id, text) {
  const e = $(id);
  e.textContent = text || "";
  if (e.hasAttribute("hidden") || id === "page-error") e.hidden = !text;
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
  if (!resp.ok) throw apiError(resp, body);
  return body;
}

function apiError(resp, body) {
  const err = new Error((body.error && body.error.message) || resp.statusText || "the request failed");
  err.status = resp.status;
  err.code = body.error && body.error.code;
  return err;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => (k === "class" ? (e.className = v) : e.setAttribute(k, v)));
  children.forEach((c) => e.append(c));
  return e;
}

async function signIn() {
  showError("page-error", "");
  try {
    me = (await api("/api/LearnTrac/me")).user;
  } catch (e) {
    me = null;
    if (settleOffer()) return signIn();
    $("who").textContent = "not signed in";
    $("signin").hidden = false;
    $("concepts-panel").hidden = true;
    $("concept-panel").hidden = true;
    if (e.code === "invalid_token") {
      token = null;
      sessionStorage.removeItem("learntrac-token");
      showError("signin-error", "This sign-in link has expired or is not valid (links last a day). Log in to Trac, or ask your teacher for a new link.");
    } else if (e.status !== 401) {
      showError("signin-error", "LearnTrac cannot be reached just now; try again in a moment.");
    }
    return;
  }
  if (offered && settleOffer()) return signIn();
  $("who").textContent = "signed in as " + me;
  $("signin").hidden = true;
  showError("signin-error", "");
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
    // On a phone the concept opens below the list: bring it into view.
    button.addEventListener("click", () => openConcept(c.id).then(() => {
      if (current && matchMedia("(max-width: 760px)").matches) $("concept-panel").scrollIntoView();
    }));
    ul.append(el("li", {}, button));
  }
  $("concepts-note").textContent = list.concepts.length ? "" : "No concepts yet: your teacher assigns them in Trac.";
  $("concepts-panel").hidden = false;
}

async function openConcept(id) {
  let c;
  try {
    c = await api("/api/LearnTrac/concepts/" + id);
  } catch (e) {
    $("concept-panel").hidden = true;
    current = null;
    showError("page-error", e.status === 404 || e.status === 403
      ? "Concept #" + id + " is not one of yours. Pick one from your list."
      : "The concept could not be opened just now; try again in a moment.");
    return;
  }
  showError("page-error", "");
  current = c;
  document.querySelectorAll("#concepts button").forEach((b) => b.setAttribute("aria-current", String(b.dataset.id === String(id))));
  $("concept-title").textContent = "#" + c.id + " " + c.summary;
  $("concept-state").textContent = c.status + " · mastered at " + Math.round(c.mastery_threshold * 100) + "%" + (c.milestone ? " · " + c.milestone : "");
  $("practice-result").textContent = "";
  $("chat").replaceChildren();
  $("chat-error").textContent = "";
  conversation = null;
  $("concept-panel").hidden = false;
  if (chatOn) {
    try {
      const convo = await api("/api/chat/concepts/" + id + "/conversation");
      conversation = convo.id;
      convo.messages.forEach((m) => bubble(m.role, m.content, m.status));
      if (convo.more && convo.messages.length) earlierButton(convo.id, convo.messages[0].id);
    } catch (e) {
      if (e.status !== 404) showError("chat-error", "Your earlier conversation could not be loaded just now.");
    }
  }
  // `&listen=SECONDS`: start the microphone at once and stop after that long (a link for
  // hands-free use, and how the browser test speaks).
  const listen = Number(params.get("listen"));
  if (listen && Number(params.get("concept")) === id && !$("voice").disabled) {
    params.delete("listen");
    await startVoice();
    setTimeout(stopVoice, listen * 1000);
  }
  // `&ask=TEXT` only fills the box: a link must not spend a student's questions, or put
  // words in their conversation, without them pressing Send.
  const ask = params.get("ask");
  if (ask && Number(params.get("concept")) === id) {
    params.delete("ask");
    $("question").value = ask.slice(0, 4000);
    $("question").focus();
  }
}

// A long conversation arrives a page at a time (the newest 100 messages): this button,
// above them, fetches the page before.
function earlierButton(id, before) {
  const button = el("button", { type: "button", class: "earlier" }, "Show earlier messages");
  button.addEventListener("click", async () => {
    try {
      const page = await api("/api/chat/conversations/" + id + "?before=" + before);
      button.remove();
      const first = $("chat").firstChild;
      page.messages.forEach((m) => {
        const b = el("div", { class: "msg " + m.role + (m.status === "incomplete" ? " incomplete" : "") }, m.content);
        $("chat").insertBefore(b, first);
      });
      if (page.more && page.messages.length) earlierButton(id, page.messages[0].id);
    } catch (e) {
      showError("chat-error", "Earlier messages could not be loaded just now.");
    }
  });
  $("chat").prepend(button);
}

function bubble(role, text, status) {
  const shown = status === "incomplete" || status === "hearing" ? " " + status : "";
  const b = el("div", { class: "msg " + role + shown }, text);
  $("chat").append(b);
  $("chat").scrollTop = $("chat").scrollHeight;
  return b;
}

// Reads the answer as it streams: Server-Sent Events over a POST, so fetch, not EventSource.
async function send() {
  const text = $("question").value.trim();
  if (!text || !current || !chatOn || $("send").disabled) return;
  $("question").value = "";
  $("chat-error").textContent = "";
  $("send").disabled = true;
  const asked = bubble("user", text);
  const answer = bubble("assistant", "");
  answer.classList.add("streaming");
  // Put the question back for a retry when no answer came.
  const keep = () => { if (!$("question").value) $("question").value = text; };
  try {
    const resp = await fetch("/api/chat/concepts/" + current.id + "/messages", {
      method: "POST",
      credentials: "same-origin",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(conversation ? { message: text, conversation_id: conversation } : { message: text }),
    });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw apiError(resp, body);
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
          if (!answer.textContent) keep();
        } else if (name === "done") answer.dataset.done = "true";
      }
    }
  } catch (e) {
    // Not asked (refused, or the network failed): the question is not in the conversation.
    answer.remove();
    asked.remove();
    keep();
    $("chat-error").textContent = e.status ? e.message : "The tutor cannot be reached just now; try again in a moment.";
  } finally {
    answer.classList.remove("streaming");
    $("send").disabled = false;
  }
}

// Voice: the microphone at 16 kHz, streamed as 16-bit PCM over /api/voice/ws while the
// button is on; the answer comes back as text (shown as it streams) and a WAV (played).
// The token, if any, travels as a WebSocket subprotocol, never in the URL.
let voice = null;

const VOICE_WORDS = {
  listening: "Listening… click Stop when you have asked.",
  thinking: "Thinking…",
  speaking: "Speaking… (Stop ends it)",
};

function voiceState(s) {
  document.body.dataset.voice = s;
  $("voice").textContent = s === "listening" || s === "speaking" ? "Stop" : "Voice";
  $("voice-state").textContent = VOICE_WORDS[s] || "";
}

// Stops whatever the voice tutor is doing: the microphone, or the answer playing.
function stopSpeaking() {
  const v = voice;
  if (!v) return;
  v.queue = [];
  if (v.audio) v.audio.pause();
  voiceState("ended");
  v.ws.close();
}

// The answer arrives spoken a sentence at a time, while the tutor is still writing: each
// part plays after the one before; the last one ends the turn once the server says
// `spoken`.
function playNext(v) {
  if (v.playing) return;
  const part = v.queue.shift();
  if (!part) {
    if (v.spokenAll) {
      voiceState("ended");
      v.ws.close();
    }
    return;
  }
  v.playing = true;
  const audio = (v.audio = new Audio(URL.createObjectURL(part)));
  audio.addEventListener("playing", () => voiceState("speaking"));
  audio.addEventListener("ended", () => {
    v.playing = false;
    v.played = (v.played || 0) + 1;
    document.body.dataset.played = String(v.played); // how many parts were heard
    URL.revokeObjectURL(audio.src);
    playNext(v);
  });
  audio.play().catch(() => {
    v.playing = false;
    v.queue = [];
    voiceState("error:playback");
    $("chat-error").textContent = "The answer could not be played; it is shown in writing.";
  });
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
  const v = (voice = { ws, answer: null, expectAudio: false, queue: [], playing: false, spokenAll: false });
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
    v.expectAudio = false;
    v.queue.push(new Blob([m.data], { type: "audio/wav" }));
    playNext(v);
    return;
  }
  const d = JSON.parse(m.data);
  if (d.type === "hearing") {
    // Words heard while the student is still speaking (engines that can): provisional.
    if (!v.hearing) v.hearing = bubble("user", "", "hearing");
    v.hearing.textContent = d.text;
  } else if (d.type === "transcript") {
    const heard = v.hearing || bubble("user", "");
    v.hearing = null;
    heard.classList.remove("hearing");
    heard.textContent = d.text;
    v.answer = bubble("assistant", "");
  } else if (d.type === "conversation") conversation = d.conversation_id;
  else if (d.type === "delta" && v.answer) v.answer.textContent += d.text;
  else if (d.type === "done" && v.answer) v.answer.dataset.done = "true";
  else if (d.type === "audio") v.expectAudio = true;
  else if (d.type === "spoken") {
    v.spokenAll = true;
    playNext(v);
  }
  else if (d.type === "error") {
    if (v.hearing) v.hearing.remove();
    v.hearing = null;
    if (v.answer) v.answer.classList.add("incomplete");
    $("chat-error").textContent = d.message;
    voiceState("error:" + d.code);
    v.ws.close();
  }
}

$("voice").addEventListener("click", () => {
  if (voice && voice.listening) stopVoice();
  else if (voice && document.body.dataset.voice === "speaking") stopSpeaking();
  else startVoice().catch(() => {
    $("chat-error").textContent = "The microphone could not be used: allow it in the browser, or type your question.";
    voiceState("error:microphone");
  });
});

$("ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
// Enter sends; Shift+Enter is a new line (and Enter while composing text is the IME's).
$("question").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
window.addEventListener("hashchange", () => {
  if (takeHashToken()) signIn();
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
  const t = $("token").value.trim();
  if (!TOKEN_SHAPE.test(t)) {
    showError("signin-error", "That is not a LearnTrac token; paste the whole token, or log in to Trac.");
    return;
  }
  useToken(t);
  signIn();
});

// Voice is offered when the deployment has it; sign-in waits for that answer so a
// `listen` link finds the button ready.
function tutorAvailable(on) {
  chatOn = on;
  $("tutor-off").hidden = on;
  $("question").disabled = !on;
  $("send").disabled = !on;
}

api("/api/LearnTrac/health").then((h) => {
  tutorAvailable(!!(h.features && h.features.chat === "enabled"));
  if (h.features && h.features.voice === "enabled") {
    $("voice").disabled = false;
    $("voice").title = "ask by voice: click, speak, click again";
  }
}).catch(() => tutorAvailable(false)).finally(signIn);
