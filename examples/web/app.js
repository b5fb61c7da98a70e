// ModelForge's web page: plain JavaScript over the server's native API (/api), no build step.
// Markdown goes through marked, then DOMPurify; raw HTML inside Markdown is shown as text, so
// a message holding <script> or <img onerror> reads as what it is and runs nothing.

import hljs from './vendor/highlight/core.min.js';
import bash from './vendor/highlight/languages/bash.min.js';
import c from './vendor/highlight/languages/c.min.js';
import cpp from './vendor/highlight/languages/cpp.min.js';
import css from './vendor/highlight/languages/css.min.js';
import diff from './vendor/highlight/languages/diff.min.js';
import go from './vendor/highlight/languages/go.min.js';
import java from './vendor/highlight/languages/java.min.js';
import javascript from './vendor/highlight/languages/javascript.min.js';
import json from './vendor/highlight/languages/json.min.js';
import python from './vendor/highlight/languages/python.min.js';
import rust from './vendor/highlight/languages/rust.min.js';
import sql from './vendor/highlight/languages/sql.min.js';
import typescript from './vendor/highlight/languages/typescript.min.js';
import xml from './vendor/highlight/languages/xml.min.js';
import yaml from './vendor/highlight/languages/yaml.min.js';

const LANGUAGES = { bash, c, cpp, css, diff, go, java, javascript, json, python, rust, sql, typescript, xml, yaml };
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);

// ------------------------------------------------------------------------------------------
// Small helpers

const $ = (selector, root = document) => root.querySelector(selector);
const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

/** An element with attributes (`on*` functions become listeners) and children (text or nodes). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

// Icons are fixed strings, never built from data.
const ICONS = {
  edit: '<path d="M4 20h4L19 9l-4-4L4 16v4Z"/><path d="m13.5 6.5 4 4"/>',
  pin: '<path d="M9 4h6l-1 5 4 4H6l4-4-1-5Z"/><path d="M12 13v7"/>',
  archive: '<rect x="3" y="4" width="18" height="5" rx="1.5"/><path d="M5 9v9a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V9M10 13h4"/>',
  trash: '<path d="M4 7h16M10 11v6M14 11v6M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3"/>',
  copy: '<rect x="8" y="8" width="12" height="12" rx="2"/><path d="M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2"/>',
  check: '<path d="m5 12 5 5 9-10"/>',
  refresh: '<path d="M20 11a8 8 0 1 0-2.3 5.7M20 5v6h-6"/>',
  bulb: '<path d="M12 3a6 6 0 0 0-6 6c0 2.2 1.2 3.6 2.2 4.6.6.6.8 1.2.8 2V17h6v-1.4c0-.8.3-1.4.8-2 1-1 2.2-2.4 2.2-4.6a6 6 0 0 0-6-6ZM9 21h6"/>',
};
function icon(name) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.innerHTML = ICONS[name];
  return svg;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function formatBytes(n) {
  if (!n && n !== 0) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Plain-HTTP pages on another host have no clipboard API: the old way still works.
    const area = h('textarea');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
}

// ------------------------------------------------------------------------------------------
// Markdown

const markdown = new marked.Marked({ gfm: true, breaks: true });
markdown.use({
  renderer: {
    // Raw HTML in a message is shown as the text it is.
    html({ text }) {
      return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    },
  },
});
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

/** Markdown to safe HTML: marked, then DOMPurify (HTML profile only: no SVG, no MathML). */
function renderMarkdown(text) {
  return DOMPurify.sanitize(markdown.parse(text), { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'form', 'input'] });
}

/** Highlights the code blocks in `root` and gives each a header with a copy button. */
function enhanceCode(root) {
  for (const code of root.querySelectorAll('pre > code')) {
    const pre = code.parentElement;
    if (pre.parentElement?.classList.contains('codeblock')) continue;
    const lang = [...code.classList].find((c) => c.startsWith('language-'))?.slice(9) ?? '';
    if (lang && hljs.getLanguage(lang)) {
      try { hljs.highlightElement(code); } catch { /* leave it plain */ }
    }
    const copy = h('button', { type: 'button', 'data-testid': 'code-copy', 'aria-label': 'Copy code' }, icon('copy'), 'Copy');
    copy.addEventListener('click', async () => {
      await copyText(code.textContent);
      copy.replaceChildren(icon('check'), 'Copied');
      setTimeout(() => copy.replaceChildren(icon('copy'), 'Copy'), 1500);
    });
    const block = h('div', { class: 'codeblock' }, h('div', { class: 'codeblock-head' }, h('span', { text: lang || 'code' }), copy));
    pre.replaceWith(block);
    block.append(pre);
  }
}

function fillMarkdown(node, text) {
  node.innerHTML = renderMarkdown(text);
  enhanceCode(node);
}

// For people's own browser tests of the page.
window.modelforge = Object.freeze({ renderMarkdown });

// ------------------------------------------------------------------------------------------
// State and settings

const store = {
  get(key, fallback) {
    try { const v = localStorage.getItem(`modelforge.${key}`); return v === null ? fallback : JSON.parse(v); } catch { return fallback; }
  },
  set(key, value) {
    try {
      if (value === undefined || value === null) localStorage.removeItem(`modelforge.${key}`);
      else localStorage.setItem(`modelforge.${key}`, JSON.stringify(value));
    } catch { /* private mode: nothing is kept */ }
  },
};

const DEFAULT_SETTINGS = { system: '', temperature: 0.7, maxTokens: 1024, theme: 'system' };

// Settings and context reports belong to an account (`settings.<user id>`, `reports.<user id>`):
// someone else logging in on this browser gets their own. Only the last theme is kept apart,
// for the login page. Older pages kept one set for everyone: its theme is all that stays.
const shared = store.get('settings', null);
if (shared) { store.set('theme', shared.theme ?? null); store.set('settings', null); }
store.set('reports', null);

const S = {
  access: null,
  refresh: store.get('refresh', null),
  refreshTimer: null,
  user: null,
  registrationOpen: true,
  loginMode: 'login',
  sessions: [],
  showArchived: false,
  search: '',
  current: null, // the open session, or null for a new chat not yet created
  messages: [],
  draft: { model: null, temporary: false },
  models: [],
  streaming: null, // { session, controller } while a reply is read
  memories: [],
  settings: { ...DEFAULT_SETTINGS, theme: store.get('theme', DEFAULT_SETTINGS.theme) },
  reports: {}, // message id -> what the context used, kept across reloads
};

function applyTheme() {
  document.documentElement.dataset.theme = S.settings.theme;
}
applyTheme();

/** The logged-in user's own settings and reports. */
function loadAccountState() {
  S.settings = { ...DEFAULT_SETTINGS, ...store.get(`settings.${S.user.id}`, {}) };
  S.reports = store.get(`reports.${S.user.id}`, {});
  store.set('theme', S.settings.theme);
  applyTheme();
}

function rememberReport(messageId, report) {
  if (!S.user) return;
  S.reports[messageId] = report;
  const ids = Object.keys(S.reports);
  for (const id of ids.slice(0, Math.max(0, ids.length - 300))) delete S.reports[id];
  store.set(`reports.${S.user.id}`, S.reports);
}

// ------------------------------------------------------------------------------------------
// Errors

const banner = byTestId('error-banner');
let bannerTimer;
function showError(message) {
  $('.banner-text', banner).textContent = message;
  banner.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(hideError, 12000);
}
function hideError() { banner.hidden = true; }
$('.banner-close', banner).addEventListener('click', hideError);

class ApiFailure extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function failureOf(response) {
  try {
    const body = await response.json();
    return new ApiFailure(response.status, body?.error?.code ?? 'http', body?.error?.message ?? response.statusText);
  } catch {
    return new ApiFailure(response.status, 'http', `${response.status} ${response.statusText}`);
  }
}

/** Runs `fn`, showing any failure in the banner. */
async function attempt(fn) {
  try { return await fn(); } catch (err) {
    if (err.name !== 'AbortError') showError(err.message || String(err));
    return undefined;
  }
}

// ------------------------------------------------------------------------------------------
// The API, with tokens refreshed on the way

function setTokens(tokens) {
  S.access = tokens.access_token;
  S.refresh = tokens.refresh_token;
  store.set('refresh', S.refresh);
  clearTimeout(S.refreshTimer);
  const seconds = Math.max(10, (tokens.expires_in ?? 900) - 60);
  S.refreshTimer = setTimeout(() => refreshTokens(), seconds * 1000);
}

let refreshing = null;
/** Trades the refresh token for a new pair; false when it is no longer valid. */
function refreshTokens() {
  if (!S.refresh) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const response = await fetch('/api/auth/refresh', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ refresh_token: S.refresh }),
      });
      if (!response.ok) return false;
      setTokens(await response.json());
      return true;
    } catch { return false; } finally { refreshing = null; }
  })();
  return refreshing;
}

async function request(method, path, body, { signal } = {}, retried = false) {
  const headers = {};
  if (S.access) headers.Authorization = `Bearer ${S.access}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (response.status === 401 && !retried && !path.startsWith('/auth/login') && !path.startsWith('/auth/register')) {
    if (await refreshTokens()) return request(method, path, body, { signal }, true);
    signedOut('Your session has ended: log in again.');
    throw new ApiFailure(401, 'unauthorized', 'Your session has ended: log in again.');
  }
  if (!response.ok) throw await failureOf(response);
  return response;
}

async function api(method, path, body, options) {
  const response = await request(method, path, body, options);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Reads server-sent events from `response`, calling `on(name, data)` for each. */
async function readEvents(response, on) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const raw = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      let data = '';
      for (const line of raw.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
      }
      if (data) on(name, JSON.parse(data));
    }
  }
}

// ------------------------------------------------------------------------------------------
// Logging in

const loginForm = $('#login-form');
const usernameInput = byTestId('login-username');
const passwordInput = byTestId('login-password');

function setLoginMode(mode) {
  S.loginMode = mode;
  const registering = mode === 'register';
  $('#login-title').textContent = registering ? 'Create your account' : 'Welcome back';
  $('#login-subtitle').textContent = registering
    ? 'The first account on a server becomes its admin.'
    : 'Log in to chat with your local models.';
  byTestId('login-submit').textContent = registering ? 'Create account' : 'Log in';
  $('#login-switch-text').textContent = registering ? 'Already have an account?' : 'No account yet?';
  byTestId('register-toggle').textContent = registering ? 'Log in' : 'Create one';
  passwordInput.autocomplete = registering ? 'new-password' : 'current-password';
  hideError();
}
byTestId('register-toggle').addEventListener('click', () => setLoginMode(S.loginMode === 'login' ? 'register' : 'login'));

function loginMessage(err) {
  switch (err.code) {
    case 'invalid_credentials': return 'Wrong username or password.';
    case 'account_locked': return `This account is locked for a while after too many failed logins. ${err.message}`;
    case 'account_disabled': return 'This account is disabled: ask an admin.';
    case 'forbidden': return S.loginMode === 'register' ? 'Registration is closed on this server: ask an admin for an account.' : err.message;
    case 'conflict': return `That username is taken. ${err.message}`;
    default: return err.message;
  }
}

loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = usernameInput.value.trim();
  const password = passwordInput.value;
  if (!username || !password) { showError('Enter a username and a password.'); return; }
  const submit = byTestId('login-submit');
  submit.disabled = true;
  try {
    const path = S.loginMode === 'register' ? '/auth/register' : '/auth/login';
    const tokens = await api('POST', path, { username, password });
    setTokens(tokens);
    passwordInput.value = '';
    hideError();
    await enterApp();
  } catch (err) {
    showError(loginMessage(err));
  } finally {
    submit.disabled = false;
  }
});

function showLogin() {
  $('#app').hidden = true;
  $('#login').hidden = false;
  setLoginMode('login');
  usernameInput.focus();
}

/** Forgets the tokens and goes back to the login form. */
function signedOut(message) {
  delete $('#app').dataset.ready;
  S.access = null;
  S.refresh = null;
  S.user = null;
  S.settings = { ...DEFAULT_SETTINGS, theme: S.settings.theme };
  S.reports = {};
  store.set('refresh', null);
  clearTimeout(S.refreshTimer);
  S.streaming?.controller.abort();
  S.streaming = null;
  S.current = null;
  S.sessions = [];
  S.messages = [];
  sessionList.replaceChildren();
  thread.replaceChildren();
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  showLogin();
  if (message) showError(message);
}

byTestId('logout').addEventListener('click', async () => {
  const refresh = S.refresh;
  if (refresh) await fetch('/api/auth/logout', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ refresh_token: refresh }) }).catch(() => {});
  signedOut();
});

async function enterApp() {
  const me = await api('GET', '/auth/me');
  S.user = me.user;
  S.registrationOpen = me.registration_open;
  loadAccountState();
  $('#login').hidden = true;
  $('#app').hidden = false;
  $('#me-name').textContent = S.user.username;
  $('#me-avatar').textContent = S.user.username.slice(0, 1);
  byTestId('admin-open').hidden = S.user.role !== 'admin';
  await Promise.all([loadModels(), loadSessions()]);
  const last = store.get(`session.${S.user.id}`, null);
  if (!(last && (await attempt(() => openSession(last, { quiet: true }))) !== false && S.current)) {
    // Someone already typing in the search box keeps their focus.
    newChat({ focus: !document.activeElement?.matches('input, textarea, select') });
  }
  $('#app').dataset.ready = 'true';
}

// ------------------------------------------------------------------------------------------
// Sessions

const sessionList = $('#session-list');

async function loadSessions() {
  const query = new URLSearchParams({ limit: '200' });
  if (S.search.trim()) query.set('query', S.search.trim());
  if (S.showArchived) query.set('archived', 'true');
  const page = await api('GET', `/sessions?${query}`);
  S.sessions = page.data;
  renderSessions();
}

function renderSessions() {
  const items = S.sessions.map(sessionItem);
  if (!items.length) {
    const what = S.search.trim() ? 'No chats match.' : S.showArchived ? 'No archived chats.' : 'No chats yet.';
    items.push(h('div', { class: 'empty-list', text: what }));
  }
  const pinned = S.sessions.filter((s) => s.pinned).length;
  if (pinned && pinned < S.sessions.length && !S.search.trim()) {
    items.splice(pinned, 0, h('div', { class: 'session-group', text: 'Recent' }));
    items.unshift(h('div', { class: 'session-group', text: 'Pinned' }));
  }
  sessionList.replaceChildren(...items);
  $('#archived-toggle').textContent = S.showArchived ? 'Back to chats' : 'Show archived';
}

function sessionItem(session) {
  const current = S.current?.id === session.id;
  const title = h('span', { class: 'session-title', title: session.title || 'New chat' });
  if (session.pinned) title.append(icon('pin'));
  title.append(session.title || 'New chat');
  const tool = (name, testid, label, onclick) =>
    h('button', { type: 'button', class: 'icon-button', 'data-testid': testid, 'aria-label': label, title: label, onclick: (e) => { e.stopPropagation(); onclick(); } }, icon(name));
  const item = h('div', {
    class: 'session', role: 'button', tabindex: '0', 'data-testid': 'session-item', 'data-session-id': session.id,
    'aria-current': current ? 'true' : 'false',
    onclick: () => { if (!item.querySelector('input')) openSession(session.id); },
    onkeydown: (e) => { if (e.key === 'Enter' && e.target === item) openSession(session.id); },
  },
  title,
  h('span', { class: 'session-actions' },
    tool('edit', 'session-rename', 'Rename', () => startRename(item, session)),
    tool('pin', 'session-pin', session.pinned ? 'Unpin' : 'Pin', () => changeSession(session, { pinned: !session.pinned })),
    tool('archive', 'session-archive', session.archived ? 'Unarchive' : 'Archive', () => changeSession(session, { archived: !session.archived })),
    tool('trash', 'session-delete', 'Delete', () => deleteSession(session))));
  return item;
}

function startRename(item, session) {
  const input = h('input', { 'data-testid': 'session-rename-input', 'aria-label': 'Chat title', maxlength: '200' });
  input.value = session.title;
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (save && title && title !== session.title) await changeSession(session, { title });
    else renderSessions();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); finish(true); }
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
  input.addEventListener('click', (e) => e.stopPropagation());
  $('.session-title', item).replaceWith(input);
  input.focus();
  input.select();
}

async function changeSession(session, patch) {
  await attempt(async () => {
    const updated = await api('PATCH', `/sessions/${session.id}`, patch);
    if (S.current?.id === updated.id) { S.current = updated; renderHeader(); }
    await loadSessions();
  });
}

function confirmDialog(text, ok = 'Delete') {
  const dialog = $('#confirm-dialog');
  $('#confirm-text').textContent = text;
  byTestId('confirm-ok').textContent = ok;
  dialog.showModal();
  return new Promise((resolve) => {
    const close = (answer) => { dialog.close(); cleanup(); resolve(answer); };
    const yes = () => close(true);
    const no = () => close(false);
    const cancel = () => { cleanup(); resolve(false); };
    const cleanup = () => {
      byTestId('confirm-ok').removeEventListener('click', yes);
      byTestId('confirm-cancel').removeEventListener('click', no);
      dialog.removeEventListener('cancel', cancel);
    };
    byTestId('confirm-ok').addEventListener('click', yes);
    byTestId('confirm-cancel').addEventListener('click', no);
    dialog.addEventListener('cancel', cancel);
  });
}

async function deleteSession(session) {
  if (!(await confirmDialog(`Delete “${session.title || 'New chat'}” and its messages? This cannot be undone.`))) return;
  await attempt(async () => {
    await api('DELETE', `/sessions/${session.id}`);
    if (S.current?.id === session.id) newChat();
    await loadSessions();
  });
}

byTestId('new-chat').addEventListener('click', () => { newChat(); closeSidebar(); });
byTestId('session-search').addEventListener('input', debounce((e) => { S.search = e.target.value; attempt(loadSessions); }, 200));
$('#archived-toggle').addEventListener('click', () => { S.showArchived = !S.showArchived; attempt(loadSessions); });

function rememberCurrent() {
  if (S.user) store.set(`session.${S.user.id}`, S.current?.id ?? null);
}

/** A new chat: nothing is created on the server until its first message. */
function newChat({ focus = true } = {}) {
  stopReading();
  S.current = null;
  S.messages = [];
  S.draft = { model: null, temporary: false };
  rememberCurrent();
  renderHeader();
  renderThread();
  renderSessions();
  if (focus) chatInput.focus();
}

async function openSession(id, { quiet = false } = {}) {
  stopReading();
  let session;
  try {
    session = await api('GET', `/sessions/${id}`);
  } catch (err) {
    if (quiet && err.status === 404) return false;
    throw err;
  }
  S.current = session;
  rememberCurrent();
  await loadMessages();
  renderHeader();
  renderSessions();
  closeSidebar();
  if (session.reply_in_progress) followReply(session.id);
  return true;
}

async function loadMessages() {
  const id = S.current.id;
  const all = [];
  let offset = 0;
  for (;;) {
    const page = await api('GET', `/sessions/${id}/messages?limit=1000&offset=${offset}`);
    all.push(...page.data);
    if (page.next_offset == null) break;
    offset = page.next_offset;
  }
  if (S.current?.id !== id) return;
  S.messages = all;
  renderThread();
}

function stopReading() {
  S.streaming?.controller.abort();
  S.streaming = null;
  setStreaming(false);
}

// ------------------------------------------------------------------------------------------
// The chat header: title, model, temporary

const modelPicker = byTestId('model-picker');
const temporaryToggle = byTestId('temporary-toggle');

async function loadModels() {
  const models = await api('GET', '/models');
  S.models = models.data;
  renderModels();
}

function renderModels() {
  const chosen = S.current ? S.current.model : S.draft.model;
  const fallback = S.models.find((m) => m.default)?.name;
  const options = S.models.map((m) => h('option', { value: m.name, text: m.name }));
  // A session can name a model deleted since: it shows, and another can be picked.
  if (chosen && !S.models.some((m) => m.name === chosen)) {
    options.push(h('option', { value: chosen, text: `${chosen} (no longer on this server)`, disabled: true }));
  }
  if (!options.length) options.push(h('option', { value: '', text: 'No model' }));
  modelPicker.replaceChildren(...options);
  modelPicker.value = chosen ?? fallback ?? '';
}

function renderHeader() {
  $('#chat-title').textContent = S.current ? (S.current.title || 'New chat') : 'New chat';
  const temporary = S.current ? S.current.temporary : S.draft.temporary;
  temporaryToggle.checked = temporary;
  $('#temporary-note').hidden = !temporary;
  renderModels();
}

modelPicker.addEventListener('change', async () => {
  const name = modelPicker.value;
  const isDefault = S.models.find((m) => m.name === name)?.default;
  if (!S.current) { S.draft.model = isDefault ? null : name; return; }
  await attempt(async () => {
    S.current = await api('PATCH', `/sessions/${S.current.id}`, { model: isDefault ? null : name });
  });
  renderHeader();
});

temporaryToggle.addEventListener('change', async () => {
  const temporary = temporaryToggle.checked;
  if (!S.current) { S.draft.temporary = temporary; renderHeader(); return; }
  await attempt(async () => {
    S.current = await api('PATCH', `/sessions/${S.current.id}`, { temporary });
  });
  renderHeader();
});

// ------------------------------------------------------------------------------------------
// The thread

const thread = $('#thread');
const scroller = $('#messages');

function nearBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
}
function scrollDown(force = false) {
  if (force || nearBottom()) scroller.scrollTop = scroller.scrollHeight;
}

function renderThread() {
  if (!S.messages.length && !S.streaming) {
    thread.replaceChildren(h('div', { class: 'welcome' },
      h('img', { src: '/assets/icon.svg', alt: '' }),
      h('h1', { text: S.user ? `What can I help with, ${S.user.username}?` : 'What can I help with?' }),
      h('p', { class: 'muted', text: 'Answers stream from the model on this server. What you tell it can be remembered for later chats.' })));
    return;
  }
  const visible = S.messages.filter((m) => m.role !== 'system');
  const lastAssistant = visible.map((m) => m.role).lastIndexOf('assistant');
  thread.replaceChildren(...visible.map((m, i) => messageNode(m, { last: i === lastAssistant && !S.streaming })));
  scrollDown(true);
}

function messageNode(message, { last = false, streaming = false } = {}) {
  const content = h('div', { class: 'content' });
  const node = h('article', {
    class: `msg ${message.role}`, 'data-testid': 'message', 'data-role': message.role,
    'data-message-id': message.id ?? '', 'data-streaming': streaming ? 'true' : 'false',
  }, content);
  if (message.role === 'user') content.textContent = message.content;
  else fillMarkdown(content, message.content);
  const tools = h('div', { class: 'msg-tools' });
  node.append(tools);
  if (!streaming) addTools(node, message, last);
  return node;
}

function toolButton(name, label, testid, onclick) {
  return h('button', { type: 'button', class: 'tool', 'data-testid': testid, title: label, onclick }, icon(name), label);
}

/** The row under a message: copy, edit or regenerate, the context report, sources. */
function addTools(node, message, last) {
  const tools = $('.msg-tools', node);
  tools.replaceChildren();
  if (message.role === 'user') {
    if (message.id) tools.append(toolButton('edit', 'Edit', 'message-edit', () => startEdit(node, message)));
    return;
  }
  tools.append(toolButton('copy', 'Copy', 'message-copy', () => copyText(message.content)));
  if (last) tools.append(toolButton('refresh', 'Regenerate', 'regenerate', () => regenerate()));
  const report = message.id && S.reports[message.id];
  if (report) showReport(node, report);
}

function showReport(node, report) {
  const tools = $('.msg-tools', node);
  if (report.finish === 'cancelled') tools.append(h('span', { class: 'finish-note', 'data-testid': 'finish-note', text: 'Stopped' }));
  else if (report.finish === 'length') tools.append(h('span', { class: 'finish-note', 'data-testid': 'finish-note', text: 'Cut at the token limit' }));
  if (report.summary) {
    const names = report.memories.map((m) => m.content);
    const button = h('button', {
      type: 'button', class: 'tool context-report', 'data-testid': 'context-report',
      title: names.length ? `Memories used:\n${names.join('\n')}` : 'No memories were used', 'aria-expanded': 'false',
    }, icon('bulb'), report.summary);
    tools.append(button);
    button.addEventListener('click', () => {
      const open = $('.popover', node);
      if (open) { open.remove(); button.setAttribute('aria-expanded', 'false'); return; }
      const list = names.length
        ? h('ul', {}, ...names.map((text) => h('li', { 'data-testid': 'context-memory', text })))
        : h('p', { class: 'muted', text: 'No memories were used for this answer.' });
      const parts = [h('h4', { text: 'Memories used' }), list];
      if (report.leftOut) parts.push(h('p', { class: 'muted', text: report.leftOut }));
      tools.after(h('div', { class: 'popover', 'data-testid': 'context-details' }, ...parts));
      button.setAttribute('aria-expanded', 'true');
    });
  }
  if (report.learned?.length) {
    node.append(h('div', { class: 'learned', 'data-testid': 'memory-learned' }, icon('check'),
      `Remembered: ${report.learned.map((m) => m.content).join('; ')}`));
  }
  const sources = (report.sources ?? []).filter((s) => /^https?:\/\//i.test(s.url ?? ''));
  if (sources.length) {
    node.append(h('div', { class: 'sources-title', text: 'Sources' }));
    node.append(h('ol', { class: 'sources', 'data-testid': 'sources' }, ...sources.map((s) =>
      h('li', { value: String(s.n ?? '') }, h('a', { href: s.url, target: '_blank', rel: 'noopener noreferrer', text: s.title || s.url })))));
  }
}

function startEdit(node, message) {
  if (S.streaming) return;
  const area = h('textarea', { 'data-testid': 'message-edit-input', rows: '3', 'aria-label': 'Edit the message' });
  area.value = message.content;
  const cancel = h('button', { type: 'button', class: 'button', text: 'Cancel', onclick: () => renderThread() });
  const save = h('button', { type: 'button', class: 'button primary', 'data-testid': 'message-edit-save', text: 'Send' });
  save.addEventListener('click', () => {
    const text = area.value.trim();
    if (text) editAndAnswer(message, text);
  });
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); save.click(); }
    if (e.key === 'Escape') renderThread();
  });
  node.replaceChildren(h('div', { class: 'edit-box' }, area, h('div', { class: 'actions' }, cancel, save)));
  area.focus();
}

// ------------------------------------------------------------------------------------------
// Sending and streaming

const composer = $('#composer');
const chatInput = byTestId('chat-input');
const sendButton = byTestId('send');
const stopButton = byTestId('stop');
const webToggle = byTestId('web-toggle');

function setStreaming(on) {
  stopButton.hidden = !on;
  sendButton.hidden = on;
}

function autosize() {
  chatInput.style.height = 'auto';
  chatInput.style.height = `${Math.min(chatInput.scrollHeight, window.innerHeight * 0.4)}px`;
}
chatInput.addEventListener('input', autosize);
chatInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); composer.requestSubmit(); }
});

function chatSettings() {
  const params = { temperature: Number(S.settings.temperature), max_tokens: Number(S.settings.maxTokens) };
  const extra = {};
  if (S.settings.system.trim()) extra.system = S.settings.system;
  return { params, ...extra };
}

composer.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = chatInput.value.trim();
  if (!text || S.streaming) return;
  await attempt(async () => {
    if (!S.current) {
      const title = text.replace(/\s+/g, ' ').slice(0, 60);
      S.current = await api('POST', '/sessions', { title, model: S.draft.model ?? undefined, temporary: S.draft.temporary });
      rememberCurrent();
      renderHeader();
      await loadSessions();
    }
    chatInput.value = '';
    autosize();
    const body = { content: text, ...chatSettings() };
    if (webToggle.checked) body.web = true;
    S.messages.push({ role: 'user', content: text });
    try {
      await streamReply('POST', `/sessions/${S.current.id}/messages`, body, { pending: text });
    } catch (err) {
      // Refused before anything was stored: the text goes back where it was typed.
      if (!chatInput.value && err.refused) { chatInput.value = text; autosize(); }
      throw err;
    }
  });
});

stopButton.addEventListener('click', async () => {
  if (!S.current) return;
  await attempt(() => api('POST', `/sessions/${S.current.id}/stop`));
});

async function regenerate() {
  if (S.streaming || !S.current) return;
  const last = S.messages.map((m) => m.role).lastIndexOf('assistant');
  if (last >= 0) S.messages.splice(last, 1);
  await attempt(() => streamReply('POST', `/sessions/${S.current.id}/regenerate`, chatSettings()));
}

async function editAndAnswer(message, text) {
  const at = S.messages.findIndex((m) => m.id === message.id);
  if (at >= 0) S.messages.splice(at, S.messages.length - at, { role: 'user', content: text });
  await attempt(() => streamReply('PUT', `/sessions/${S.current.id}/messages/${message.id}`, { content: text, ...chatSettings() }, { pending: text }));
}

/** Follows a reply still being written (after a reload or a switch back). */
async function followReply(sessionId) {
  const pending = store.get(`pending.${sessionId}`, null);
  if (pending && !S.messages.some((m) => m.role === 'user' && m.content === pending)) S.messages.push({ role: 'user', content: pending });
  await attempt(() => streamReply('GET', `/sessions/${sessionId}/stream`));
}

/** Sends a turn (or follows one) and streams its reply into a new assistant message. */
async function streamReply(method, path, body, { pending } = {}) {
  const session = S.current.id;
  const controller = new AbortController();
  S.streaming = { session, controller };
  if (pending) store.set(`pending.${session}`, pending);
  renderThread();
  const node = messageNode({ role: 'assistant', content: '' }, { streaming: true });
  thread.append(node);
  scrollDown(true);
  setStreaming(true);
  const content = $('.content', node);
  let text = '';
  let frame = 0;
  let done = null;
  let failure = null;
  let refused = false;
  try {
    const response = await request(method, path, body, { signal: controller.signal }).catch((err) => {
      refused = true;
      err.refused = true;
      throw err;
    });
    if (response.status === 204) return; // nothing was being written after all
    await readEvents(response, (name, data) => {
      if (name === 'piece') {
        text += data.text;
        frame ||= requestAnimationFrame(() => { frame = 0; fillMarkdown(content, text); scrollDown(); });
      } else if (name === 'done') {
        done = data;
      } else if (name === 'error') {
        failure = data?.error?.message ?? 'the reply failed';
      }
    });
  } finally {
    cancelAnimationFrame(frame);
    const stillOurs = S.streaming?.controller === controller;
    if (stillOurs) { S.streaming = null; setStreaming(false); }
    if (done || failure || refused) store.set(`pending.${session}`, null);
    if (stillOurs && S.current?.id === session) await finishReply(node, done);
    else node.remove();
  }
  if (failure) throw new Error(failure);
}

async function finishReply(node, done) {
  if (done?.reply?.id) {
    rememberReport(done.reply.id, {
      summary: done.context_summary,
      memories: (done.memories_injected ?? []).map((m) => ({ id: m.id, content: m.content })),
      learned: (done.memories_learned ?? []).map((m) => ({ id: m.id, content: m.content })),
      leftOut: done.context?.history_left_out ? plural(done.context.history_left_out, 'older message was', 'older messages were') + ' left out to fit the context.' : '',
      finish: done.finish_reason,
      sources: done.sources ?? [],
    });
  }
  // The server's copy is the truth: ids, the edited or regenerated history, the whole reply.
  await attempt(loadMessages);
  attempt(loadSessions);
}

// ------------------------------------------------------------------------------------------
// Phone sidebar

function openSidebar() { $('#app').classList.add('sidebar-open'); $('#scrim').hidden = false; }
function closeSidebar() { $('#app').classList.remove('sidebar-open'); $('#scrim').hidden = true; }
$('#sidebar-open').addEventListener('click', openSidebar);
$('#sidebar-close').addEventListener('click', closeSidebar);
$('#scrim').addEventListener('click', closeSidebar);

// ------------------------------------------------------------------------------------------
// Dialogs

for (const dialog of document.querySelectorAll('dialog')) {
  for (const close of dialog.querySelectorAll('[data-close]')) close.addEventListener('click', () => dialog.close());
  // A click on the backdrop closes too.
  dialog.addEventListener('click', (e) => { if (e.target === dialog && dialog.id !== 'confirm-dialog') dialog.close(); });
}

// ------------------------------------------------------------------------------------------
// Memory

const memoryDialog = $('#memories-dialog');
const memoryList = $('#memory-list');
const memorySearch = byTestId('memory-search');

byTestId('memories-open').addEventListener('click', async () => {
  closeSidebar();
  memoryDialog.showModal();
  memorySearch.value = '';
  await attempt(loadMemories);
});

async function loadMemories() {
  const [memories, settings] = await Promise.all([api('GET', '/memories'), api('GET', '/memories/settings')]);
  S.memories = memories.data;
  byTestId('memory-enabled').checked = settings.enabled;
  renderMemories();
}

function renderMemories() {
  const query = memorySearch.value.trim().toLowerCase();
  const shown = S.memories.filter((m) => !query || m.content.toLowerCase().includes(query));
  if (!shown.length) {
    memoryList.replaceChildren(h('li', { class: 'empty-note', text: query ? 'No memory matches.' : 'Nothing remembered yet. Tell it about yourself in a chat, or add something here.' }));
    return;
  }
  memoryList.replaceChildren(...shown.map(memoryItem));
}

function memoryItem(memory) {
  const text = h('div', { class: 'memory-text' }, h('span', { class: 'memory-kind', text: memory.kind }), h('div', { text: memory.content }));
  const item = h('li', { class: 'memory-item', 'data-testid': 'memory-item', 'data-memory-id': memory.id }, text);
  const edit = h('button', { type: 'button', class: 'icon-button', 'data-testid': 'memory-edit', 'aria-label': 'Edit', title: 'Edit' }, icon('edit'));
  const remove = h('button', { type: 'button', class: 'icon-button', 'data-testid': 'memory-delete', 'aria-label': 'Delete', title: 'Delete' }, icon('trash'));
  item.append(edit, remove);
  remove.addEventListener('click', () => attempt(async () => {
    await api('DELETE', `/memories/${memory.id}`);
    S.memories = S.memories.filter((m) => m.id !== memory.id);
    renderMemories();
  }));
  edit.addEventListener('click', () => {
    const area = h('textarea', { 'data-testid': 'memory-edit-input', 'aria-label': 'Memory' });
    area.value = memory.content;
    const save = h('button', { type: 'button', class: 'button primary', 'data-testid': 'memory-save', text: 'Save' });
    const cancel = h('button', { type: 'button', class: 'button', text: 'Cancel', onclick: renderMemories });
    save.addEventListener('click', () => attempt(async () => {
      const updated = await api('PATCH', `/memories/${memory.id}`, { content: area.value });
      S.memories = S.memories.map((m) => (m.id === memory.id ? updated : m));
      renderMemories();
    }));
    item.replaceChildren(h('div', { class: 'memory-text stack' }, area, h('div', { class: 'actions' }, cancel, save)));
    area.focus();
  });
  return item;
}

memorySearch.addEventListener('input', renderMemories);
$('#memory-add-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = byTestId('memory-new');
  const content = input.value.trim();
  if (!content) return;
  attempt(async () => {
    const memory = await api('POST', '/memories', { content });
    input.value = '';
    S.memories.push(memory);
    renderMemories();
  });
});
byTestId('memory-enabled').addEventListener('change', (e) => attempt(async () => {
  const answer = await api('PUT', '/memories/settings', { enabled: e.target.checked });
  e.target.checked = answer.enabled;
}));

// ------------------------------------------------------------------------------------------
// Settings and API keys

const settingsDialog = $('#settings-dialog');
const temperatureInput = byTestId('settings-temperature');

function showTemperature() { $('#temperature-value').textContent = Number(temperatureInput.value).toFixed(2); }
temperatureInput.addEventListener('input', showTemperature);

byTestId('settings-open').addEventListener('click', () => {
  closeSidebar();
  byTestId('settings-system').value = S.settings.system;
  temperatureInput.value = S.settings.temperature;
  showTemperature();
  byTestId('settings-max-tokens').value = S.settings.maxTokens;
  for (const radio of settingsDialog.querySelectorAll('input[name=theme]')) radio.checked = radio.value === S.settings.theme;
  $('#new-key').hidden = true;
  $('#key-list').replaceChildren(); // drawn afresh: keys revoked elsewhere are gone
  settingsDialog.showModal();
  attempt(loadKeys);
});

for (const radio of settingsDialog.querySelectorAll('input[name=theme]')) {
  // The theme applies at once, so people see what they pick.
  radio.addEventListener('change', () => { document.documentElement.dataset.theme = radio.value; });
}
settingsDialog.addEventListener('close', () => {
  applyTheme();
  // A new key is shown once: closing the dialog forgets it.
  byTestId('key-secret').textContent = '';
  $('#new-key').hidden = true;
});

$('#settings-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const maxTokens = Math.round(Number(byTestId('settings-max-tokens').value));
  if (!(maxTokens >= 1)) { showError('Max tokens must be a whole number of at least 1.'); return; }
  S.settings = {
    system: byTestId('settings-system').value,
    temperature: Number(temperatureInput.value),
    maxTokens,
    theme: settingsDialog.querySelector('input[name=theme]:checked')?.value ?? 'system',
  };
  store.set(`settings.${S.user.id}`, S.settings);
  store.set('theme', S.settings.theme);
  settingsDialog.close();
});

async function loadKeys() {
  const keys = await api('GET', '/keys');
  const list = $('#key-list');
  if (!keys.data.length) { list.replaceChildren(h('li', { class: 'empty-note', text: 'No API keys.' })); return; }
  list.replaceChildren(...keys.data.map((key) => h('li', { 'data-testid': 'key-item' },
    h('div', { class: 'grow' }, h('strong', { text: key.name }),
      h('small', { text: `${key.prefix}… · created ${new Date(key.created_at).toLocaleDateString()} · ${key.last_used_at ? `last used ${new Date(key.last_used_at).toLocaleString()}` : 'never used'}` })),
    h('button', { type: 'button', class: 'button', 'data-testid': 'key-revoke', text: 'Revoke',
      onclick: async () => {
        if (!(await confirmDialog(`Revoke the key “${key.name}”? Programs using it stop working at once.`, 'Revoke'))) return;
        await attempt(async () => { await api('DELETE', `/keys/${key.id}`); await loadKeys(); });
      } }))));
}

$('#key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = byTestId('key-name');
  const name = input.value.trim();
  if (!name) { showError('Give the key a name.'); return; }
  attempt(async () => {
    const created = await api('POST', '/keys', { name });
    input.value = '';
    byTestId('key-secret').textContent = created.key;
    $('#new-key').hidden = false;
    await loadKeys();
  });
});
byTestId('key-copy').addEventListener('click', async () => {
  await copyText(byTestId('key-secret').textContent);
  byTestId('key-copy').textContent = 'Copied';
  setTimeout(() => { byTestId('key-copy').textContent = 'Copy'; }, 1500);
});

// ------------------------------------------------------------------------------------------
// Admin

const adminDialog = $('#admin-dialog');

byTestId('admin-open').addEventListener('click', async () => {
  closeSidebar();
  adminDialog.showModal();
  await attempt(loadAdmin);
});

async function loadAdmin() {
  const [users, settings] = await Promise.all([api('GET', '/admin/users'), api('GET', '/admin/settings')]);
  const registration = byTestId('registration-open');
  registration.checked = settings.registration_open;
  registration.disabled = settings.closed_by_flag;
  $('#user-list').replaceChildren(...users.data.map(userItem));
  await loadAdminModels();
}

function userItem(user) {
  const me = user.id === S.user.id;
  const role = h('select', { 'data-testid': 'user-role', 'aria-label': `Role of ${user.username}`, disabled: me },
    h('option', { value: 'user', text: 'User' }), h('option', { value: 'admin', text: 'Admin' }));
  role.value = user.role;
  role.addEventListener('change', () => attempt(async () => { await api('PATCH', `/admin/users/${user.id}`, { role: role.value }); await loadAdmin(); }));
  const disable = h('button', { type: 'button', class: 'button', 'data-testid': 'user-disable', disabled: me, text: user.disabled ? 'Enable' : 'Disable' });
  disable.addEventListener('click', () => attempt(async () => { await api('PATCH', `/admin/users/${user.id}`, { disabled: !user.disabled }); await loadAdmin(); }));
  return h('li', { 'data-testid': 'user-item', 'data-user-id': user.id },
    h('div', { class: 'grow' }, h('strong', { text: user.username }), ' ', user.disabled ? h('span', { class: 'badge', text: 'disabled' }) : null, me ? h('span', { class: 'badge on', text: 'you' }) : null,
      h('small', { text: user.last_login ? `last login ${new Date(user.last_login).toLocaleString()}` : 'never logged in' })),
    role, disable);
}

byTestId('registration-open').addEventListener('change', (e) => attempt(async () => {
  const answer = await api('PUT', '/admin/settings', { registration_open: e.target.checked });
  e.target.checked = answer.registration_open;
}));

async function loadAdminModels() {
  await loadModels();
  const list = $('#model-list');
  if (!S.models.length) { list.replaceChildren(h('li', { class: 'empty-note', text: 'No models yet: pull one.' })); return; }
  list.replaceChildren(...S.models.map((model) => h('li', { 'data-testid': 'admin-model', 'data-model': model.name },
    h('div', { class: 'grow' }, h('strong', { text: model.name }), ' ',
      model.default ? h('span', { class: 'badge on', text: 'default' }) : null, ' ',
      model.loaded ? h('span', { class: 'badge', text: 'loaded' }) : null,
      h('small', { text: [model.format, model.quantization, formatBytes(model.size_bytes)].filter(Boolean).join(' · ') })),
    // Only what was pulled can be deleted here; files given to the server stay its operator's.
    model.removable ? h('button', { type: 'button', class: 'button', 'data-testid': 'model-delete', text: 'Delete',
      onclick: async () => {
        if (!(await confirmDialog(`Delete the model ${model.name} from this server's disk?`))) return;
        await attempt(async () => { await api('DELETE', `/models/${model.name}`); await loadAdminModels(); });
      } }) : null)));
}

$('#pull-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = byTestId('model-ref');
  const reference = input.value.trim();
  if (!reference) return;
  const bar = byTestId('pull-progress');
  const status = $('#pull-status');
  const button = byTestId('model-pull');
  $('#pull-progress').hidden = false;
  bar.style.width = '0%';
  status.textContent = `Starting ${reference}…`;
  button.disabled = true;
  attempt(async () => {
    try {
      const response = await request('POST', '/models/pull', { ref: reference });
      let failure = null;
      await readEvents(response, (name, data) => {
        if (name === 'progress') {
          const share = data.total ? data.downloaded / data.total : 0;
          bar.style.width = `${(share * 100).toFixed(1)}%`;
          status.textContent = data.total ? `${formatBytes(data.downloaded)} of ${formatBytes(data.total)}` : formatBytes(data.downloaded);
        } else if (name === 'done') {
          bar.style.width = '100%';
          status.textContent = `Pulled ${data.name} (${formatBytes(data.size_bytes)})`;
          input.value = '';
        } else if (name === 'error') {
          failure = data?.error?.message ?? 'the pull failed';
        }
      });
      if (failure) { status.textContent = failure; throw new Error(failure); }
      await loadAdminModels();
    } finally {
      button.disabled = false;
    }
  });
});

// ------------------------------------------------------------------------------------------
// Start

async function boot() {
  if (S.refresh && (await refreshTokens())) {
    const entered = await attempt(async () => { await enterApp(); return true; });
    if (entered) return;
  }
  showLogin();
}
boot();
