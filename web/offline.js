// The offline page (served by sw.js when Liaison cannot be reached): it tries again by
// itself, when the browser says the network is back and then every 15 seconds.

const EVERY_MS = 15_000;

async function tryAgain() {
  try {
    const res = await fetch('healthz', { cache: 'no-store' });
    if (res.ok) location.replace('./');
  } catch { /* still unreachable */ }
}

addEventListener('online', tryAgain);
setInterval(tryAgain, EVERY_MS);
