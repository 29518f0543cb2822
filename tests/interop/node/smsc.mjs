// An independent SMSC for the SMPP interop test: the npm `smpp` package's server side.
//
// Usage: node smsc.mjs --system-id ID --password PW [--throttle-every N] [--receipt STAT]
// Listens on 127.0.0.1 on a free port and writes one JSON object per line to stdout:
//   {"event":"listening","port":N}
//   {"event":"bind","ok":true|false}
//   {"event":"message","to":"447...","from":"...","text":"...","parts":N,"message_id":"..."}
//   {"event":"throttled"}
//   {"event":"enquire_link"}
// Concatenated messages (8- and 16-bit reference UDHs) are reassembled before they are
// reported. Delivery receipts are sent when the submit asks for them.
import smpp from 'smpp';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const systemId = args['system-id'] ?? 'mc-gw';
const password = args['password'] ?? 'pw';
const throttleEvery = Number(args['throttle-every'] ?? 0);
const receiptStat = args['receipt'] ?? 'DELIVRD';

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let submits = 0;
let nextId = 0x7000;
const partials = new Map();

function concatInfo(udh) {
  for (const ie of udh ?? []) {
    if (ie[0] === 0x00 && ie[1] === 3) return { ref: ie[2], total: ie[3], seq: ie[4] };
    if (ie[0] === 0x08 && ie[1] === 4) return { ref: (ie[2] << 8) | ie[3], total: ie[4], seq: ie[5] };
  }
  return null;
}

const server = smpp.createServer({ debug: false }, (session) => {
  let bound = false;
  const bind = (pdu) => {
    session.pause();
    const ok = pdu.system_id === systemId && pdu.password === password;
    emit({ event: 'bind', ok });
    if (!ok) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      session.close();
      return;
    }
    bound = true;
    session.send(pdu.response({ system_id: 'npm-smsc' }));
    session.resume();
  };
  session.on('bind_transceiver', bind);
  session.on('bind_transmitter', bind);
  session.on('enquire_link', (pdu) => {
    emit({ event: 'enquire_link' });
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', (pdu) => {
    if (!bound) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    submits += 1;
    if (throttleEvery > 0 && submits % throttleEvery === 0) {
      emit({ event: 'throttled' });
      session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      return;
    }
    const messageId = (nextId++).toString(16);
    session.send(pdu.response({ message_id: messageId }));
    const sm = pdu.short_message;
    const text = typeof sm === 'string' ? sm : sm.message;
    const info = typeof sm === 'string' ? null : concatInfo(sm.udh);
    let whole = null;
    if (!info) {
      whole = { text, parts: 1 };
    } else {
      const key = `${pdu.destination_addr}/${info.ref}/${info.total}`;
      const parts = partials.get(key) ?? new Array(info.total).fill(null);
      parts[info.seq - 1] = text;
      partials.set(key, parts);
      if (parts.every((p) => p !== null)) {
        partials.delete(key);
        whole = { text: parts.join(''), parts: info.total };
      }
    }
    if (whole) {
      emit({ event: 'message', to: pdu.destination_addr, from: pdu.source_addr, text: whole.text, parts: whole.parts, message_id: messageId });
    }
    if (pdu.registered_delivery & 0x03) {
      session.deliver_sm({
        source_addr: pdu.destination_addr,
        destination_addr: pdu.source_addr,
        esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
        short_message: `id:${messageId} sub:001 dlvrd:001 submit date:2611220000 done date:2611220000 stat:${receiptStat} err:000 text:`,
      });
    }
  });
  session.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => emit({ event: 'listening', port: server.address().port }));
