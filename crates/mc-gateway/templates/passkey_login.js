// The waiting page's passkey step (mc_authn::passkey, routes/passkey.rs): while the login
// waits for a passkey, run navigator.credentials.get() and post the assertion; the waiting
// page's own status poll then sees the approved login and moves on. Until the passkey is
// offered (another authenticator of the chain may come first) it asks again every 3 s.
(function () {
  'use strict';
  const me = document.currentScript;
  if (!me || !window.PublicKeyCredential) return;
  const here = new URL(me.src).pathname.replace(/\/passkey\.js$/, '');
  const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
  let box = null;
  function show(text, retry) {
    if (!box) {
      box = document.createElement('div');
      box.className = 'box';
      box.id = 'passkey';
      box.innerHTML = '<p id="passkey-msg"></p><button id="passkey-retry" type="button" hidden>Use your passkey</button>';
      document.body.appendChild(box);
      box.querySelector('#passkey-retry').addEventListener('click', () => { attempt().catch(failed); });
    }
    box.querySelector('#passkey-msg').textContent = text;
    box.querySelector('#passkey-retry').hidden = !retry;
  }
  function failed(e) {
    show('The passkey was not used (' + (e && e.message ? e.message : e) + '). You can try again.', true);
  }
  // True once the passkey was offered (whatever happened next), false while it is not.
  async function attempt() {
    const r = await fetch(here + '/passkey/options', { method: 'POST', cache: 'no-store' });
    if (r.status === 404) return false;
    const o = await r.json();
    if (!r.ok) throw new Error(o.error_description || 'HTTP ' + r.status);
    show('Confirm with the passkey on this device (fingerprint, face or screen lock).', false);
    const pk = o.options.publicKey;
    pk.challenge = dec(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => { c.id = dec(c.id); });
    const a = await navigator.credentials.get({ publicKey: pk });
    const answer = await fetch(here + '/passkey', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      cache: 'no-store',
      body: JSON.stringify({
        ceremony: o.ceremony,
        credential: {
          id: a.id,
          rawId: enc(a.rawId),
          type: a.type,
          response: {
            authenticatorData: enc(a.response.authenticatorData),
            clientDataJSON: enc(a.response.clientDataJSON),
            signature: enc(a.response.signature),
            userHandle: a.response.userHandle ? enc(a.response.userHandle) : null,
          },
          extensions: a.getClientExtensionResults(),
        },
      }),
    });
    if (answer.ok) {
      show('Passkey accepted.', false);
      location.replace(here);
      return true;
    }
    const e = await answer.json().catch(() => ({}));
    throw new Error(e.error_description || 'HTTP ' + answer.status);
  }
  (async function offered() {
    for (;;) {
      try {
        if (await attempt()) return;
      } catch (e) {
        failed(e);
        return;
      }
      await sleep(3000);
    }
  })();
})();
