// Sign-in sessions (issue 11). A device signed in with an e-mailed code keeps two things:
// - the refresh credential: an HttpOnly cookie the server sets (Path=/api/v1/auth). No
//   script can read it; the browser keeps it across closed tabs and restarts, and sends it
//   with `credentials: 'same-origin'` to /api/v1/auth/refresh and /logout only;
// - the access token: in this object's memory only (never localStorage/sessionStorage),
//   renewed before it expires (`expires_in`) and whenever the server refuses it.
// docs/http-api.md ("Sign-in") is the server's side.

const API = '/api/v1';
const EARLY = 60; // seconds before expiry to refresh
const CONFLICT_RETRIES = 5; // 409: another tab refreshed at the same moment

// Why a call failed: `status` (HTTP status, 0 for the network), the server's error body.
export class AuthError extends Error {
  constructor(status, body = null) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? (status ? 'http' : 'network');
    this.body = body?.error ?? {};
  }
}

const jsonHeaders = { 'content-type': 'application/json', accept: 'application/json' };
const wait = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function post(path, body) {
  let res;
  try {
    res = await fetch(API + path, {
      method: 'POST', credentials: 'same-origin', cache: 'no-store', headers: jsonHeaders,
      body: body === undefined ? '' : JSON.stringify(body),
    });
  } catch {
    throw new AuthError(0);
  }
  let data = null;
  try { data = res.status === 204 ? null : await res.json(); } catch { /* no JSON */ }
  if (!res.ok) throw new AuthError(res.status, data);
  return data;
}

// Ask for a code by e-mail: the server always answers 202 (even for an unknown address).
export function requestCode(email) {
  return post('/auth/code', { email });
}

// Exchange a code for a session: {access_token, expires_in, user}; the cookie comes too.
export function verifyCode(email, code) {
  return post('/auth/verify', { email, code, device: deviceName() });
}

// A readable name for this device, from the user agent: "Chrome sur Android".
export function deviceName(ua = navigator.userAgent) {
  const browser = [
    [/SamsungBrowser\//, 'Samsung Internet'], [/EdgA?\/|Edg\//, 'Edge'], [/OPR\/|Opera/, 'Opera'],
    [/Firefox\/|FxiOS\//, 'Firefox'], [/CriOS\/|Chrome\/|Chromium\//, 'Chrome'], [/Safari\//, 'Safari'],
  ].find(([re]) => re.test(ua))?.[1] ?? 'Navigateur';
  const system = [
    [/iPhone/, 'iPhone'], [/iPad/, 'iPad'], [/Android/, 'Android'], [/CrOS/, 'ChromeOS'],
    [/Windows/, 'Windows'], [/Macintosh|Mac OS X/, 'Mac'], [/Linux/, 'Linux'],
  ].find(([re]) => re.test(ua))?.[1];
  return system ? `${browser} sur ${system}` : browser;
}

// One device session: the access token in memory, refreshed in time.
// Events: 'signedout' (the session ended: the sign-in page should show).
export class CodeSession extends EventTarget {
  constructor({ access_token: token, expires_in: expiresIn, user }) {
    super();
    this.user = user;
    this.timer = 0;
    this.pending = null;
    this.stopped = false;
    this._set(token, expiresIn);
    this._wake = () => this._refreshIfDue();
    document.addEventListener('visibilitychange', this._wake);
    addEventListener('online', this._wake);
  }

  // On load: the cookie (if any) for a session. Resolves a CodeSession, or null when
  // signed out (no cookie, or a session that ended); rejects with AuthError(0) offline.
  static async resume() {
    try {
      return new CodeSession(await refreshWithRetry());
    } catch (err) {
      if (err.status === 401) return null;
      throw err;
    }
  }

  _set(token, expiresIn) {
    this.token = token;
    const ttl = Math.max(10, Number(expiresIn) || 900);
    this.expiresAt = Date.now() + ttl * 1000;
    clearTimeout(this.timer);
    // the timer may fire late (a sleeping phone): visibility and `online` check again
    this.timer = setTimeout(() => this._refreshIfDue(), Math.max(5, ttl - Math.min(EARLY, ttl / 4)) * 1000);
  }

  _refreshIfDue() {
    if (!this.stopped && Date.now() >= this.expiresAt - EARLY * 1000) this.refresh().catch(() => {});
  }

  // A new access token (rotating the cookie). Concurrent callers share one request.
  // Resolves the token; null when signed out ('signedout' is dispatched); rejects offline.
  refresh() {
    if (this.stopped) return Promise.resolve(null);
    if (!this.pending) {
      this.pending = refreshWithRetry()
        .then((r) => {
          if (this.stopped) return null;
          this.user = r.user ?? this.user;
          this._set(r.access_token, r.expires_in);
          return this.token;
        }, (err) => {
          if (err.status === 401) {
            this._ended();
            return null;
          }
          // offline or the server unavailable: try again a little later
          clearTimeout(this.timer);
          this.timer = setTimeout(() => this._refreshIfDue(), 30_000);
          throw err;
        })
        .finally(() => { this.pending = null; });
    }
    return this.pending;
  }

  // A user route with the access token; a refused token is refreshed once and tried again.
  async api(path, { method = 'GET' } = {}) {
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        res = await fetch(API + path, {
          method, cache: 'no-store', headers: { accept: 'application/json', authorization: `Bearer ${this.token}` },
        });
      } catch {
        throw new AuthError(0);
      }
      if (res.status === 401 && attempt === 0) {
        if (!(await this.refresh())) throw new AuthError(401);
        continue;
      }
      let data = null;
      try { data = res.status === 204 ? null : await res.json(); } catch { /* no JSON */ }
      if (!res.ok) throw new AuthError(res.status, data);
      return data;
    }
  }

  // "Se déconnecter": end this device's session on the server, and the cookie with it.
  async logout() {
    this.stop();
    await post('/auth/logout').catch(() => {});
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this._wake);
    removeEventListener('online', this._wake);
  }

  _ended() {
    if (this.stopped) return;
    this.stop();
    this.dispatchEvent(new CustomEvent('signedout'));
  }
}

// POST /auth/refresh; a 409 (another tab rotated the cookie a moment ago) is retried shortly,
// with the cookie that tab left.
async function refreshWithRetry() {
  for (let attempt = 0; ; attempt++) {
    try {
      return await post('/auth/refresh');
    } catch (err) {
      if (err.status !== 409 || attempt >= CONFLICT_RETRIES) throw err;
      await wait(200 + Math.random() * 300 * (attempt + 1));
    }
  }
}
