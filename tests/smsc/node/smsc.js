#!/usr/bin/env node
/*
 * Test SMSC for the Tidings SMPP 3.4 client, on the server of the npm package `smpp` 0.5.1
 * (https://github.com/farhadi/node-smpp), driven by a scenario file.
 *
 *     node tests/smsc/node/smsc.js --port N --scenario FILE.json --events FILE.jsonl
 *
 * Follows the test SMSC contract (smsc-contract.md): listens on 127.0.0.1:N, prints
 * `LISTENING <port>` once listening, plays the scenario against every ESME that connects,
 * appends one JSON event per line to the events file (a synchronous write each, so tests read it
 * live) and exits 0 on SIGTERM or SIGINT. A bad command line or scenario exits 1 with the reason
 * on stderr (an unknown key included); no key is unsupported, so it never exits 2.
 *
 * Scenario keys, all supported and checked with a raw-socket client and smpp34's client on
 * loopback: system_id, password, refuse_binds, message_id_format, receipts, receipt_stat,
 * receipt_stats, receipt_err, receipt_id_format, receipt_tlvs, receipt_delay_ms,
 * throttle_every, queue_full_every, nack_every, no_response_every, response_delay_ms,
 * unbind_after, drop_after, mo; and log_submits (false leaves the submit_sm lines out, for
 * benchmarks), as in smpp34_smsc.py.
 *
 * Events follow the contract, plus "session" (connection number "1", "2"...) on bind,
 * submit_sm, unbind, drop and disconnect; "tlvs" ([tag, value hex] in wire order) on submit_sm;
 * "destination_addr" on mo; "error" when a receipt's or MO's status is null. Also
 * {"event": "unsupported", "command": ...} and {"event": "protocol_error", "message": ...}.
 *
 * Choices the contract leaves open:
 * - Bind: the first `refuse_binds` attempts get ESME_RBINDFAIL; then a wrong system_id gets
 *   ESME_RINVSYSID (0x0F), a wrong password ESME_RINVPASWD (0x0E), a second bind on one
 *   connection ESME_RALYBND (0x05). A refused bind leaves the connection open.
 * - One submit_sm matching several `*_every` keys: none > nack > throttled > queue_full.
 *   response_delay_ms delays every answer, errors and generic_nack included.
 * - unbind_after / drop_after act on the connection that sent the Nth submit_sm, once its answer
 *   is written (at once when it goes unanswered) and before its receipt is due, so that receipt
 *   waits for the next bind. After the SMSC's unbind the connection still answers submits in
 *   flight but gets no more deliver_sm, and is closed on the unbind_resp (or after 5 s). The
 *   ESME's unbind is answered with unbind_resp, then the SMSC ends the connection.
 * - A submit_sm on a connection not bound to send (before bind, receiver bind, after the ESME's
 *   unbind) gets ESME_RINVBNDSTS, is not counted, and is logged with n null, answer "not_bound".
 * - Receipts go to the submitting connection if it can receive, else to a bound transceiver or
 *   receiver of the same system_id, else wait for the next such bind (store and forward). A
 *   receipt whose connection closes before its deliver_sm_resp is sent again on the next such
 *   bind (at least once, as SMSCs do: the ESME may see it twice). Each receipt is logged once:
 *   when answered (deliver_sm_resp or generic_nack, any status, never resent), or with status
 *   null at exit. MOs go once only; one unanswered when its connection closes is logged then.
 * - Receipt dates are UTC. `text:` is the first 20 characters of the message (short_message, or
 *   message_payload when that is empty; UDH skipped; UCS-2 decoded, other codings byte by byte),
 *   anything outside printable ASCII written "?". message_state: ENROUTE 1, DELIVRD 2,
 *   EXPIRED 3, DELETED 4, UNDELIV 5, ACCEPTD 6, REJECTD 8, any other word 7 (UNKNOWN).
 *
 * Quirks of the library an ESME meets here:
 * - every response with a non-zero command_status is the 16-byte header alone: no message_id
 *   in a failed submit_sm_resp, no system_id in a failed bind_*_resp;
 * - it answers nothing by itself: enquire_link, unbind, unknown commands (generic_nack
 *   ESME_RINVCMDID) and other requests (their response, ESME_RINVCMDID) are answered here;
 * - it loses the framing for good on a PDU whose command_length disagrees with its bytes, and
 *   then stops reading the connection without a word; this program patches it to report a
 *   command_length below 16 as an error, logs protocol_error and closes the connection;
 * - it takes PDUs over 16 KiB for framing errors; the limit is raised to 1 MiB here;
 * - it decodes short_message and message_payload as text (data_coding 0 as GSM 03.38); that
 *   decoding is switched off here so events carry the octets as sent.
 */
'use strict';

const fs = require('fs');
const smpp = require('smpp');

const DEFAULTS = Object.freeze({
  system_id: 'tidings',
  password: 's3cret',
  refuse_binds: 0,
  message_id_format: 'decimal',
  receipts: true,
  receipt_stat: 'DELIVRD',
  receipt_stats: {},
  receipt_err: '000',
  receipt_id_format: 'same',
  receipt_tlvs: true,
  receipt_delay_ms: 0,
  throttle_every: 0,
  queue_full_every: 0,
  nack_every: 0,
  no_response_every: 0,
  response_delay_ms: 0,
  unbind_after: 0,
  drop_after: 0,
  mo: [],
  log_submits: true, // false leaves the submit_sm lines out (benchmarks), as smpp34_smsc.py does
});
const COUNT_KEYS = [
  'refuse_binds', 'receipt_delay_ms', 'throttle_every', 'queue_full_every', 'nack_every',
  'no_response_every', 'response_delay_ms', 'unbind_after', 'drop_after',
];
const MO_REQUIRED_KEYS = ['source_addr', 'destination_addr', 'short_message_hex'];
const MO_KEYS = [...MO_REQUIRED_KEYS, 'data_coding', 'esm_class'];
const MESSAGE_ID_FORMATS = ['decimal', 'hex'];
const RECEIPT_ID_FORMATS = ['same', 'hex', 'decimal', 'upper', 'lower'];
const BIND_MODES = {
  bind_transceiver: 'transceiver',
  bind_transmitter: 'transmitter',
  bind_receiver: 'receiver',
};
const MESSAGE_STATES = {
  ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7,
  REJECTD: 8, REJECTED: 8,
};
const FIRST_MESSAGE_ID = 1000;
const UNBIND_CLOSE_TIMEOUT_MS = 5000;

// The library decodes short_message and message_payload into text (data_coding 0 as GSM 03.38,
// UDH split off), which loses bytes. The contract logs the raw octets, so read them undecoded;
// everything this program sends passes Buffers, which the encoder leaves as they are.
delete smpp.commands.submit_sm.params.short_message.filter;
delete smpp.tlvs.message_payload.filter;

// Keep each received PDU's wire bytes (non-enumerable, so the encoder never sees them): the
// submit_sm event logs its TLVs as sent, which the library's typed decoding cannot give back.
const decodePdu = smpp.PDU.prototype.fromBuffer;
smpp.PDU.prototype.fromBuffer = function fromBufferKeepingWire(buffer) {
  Object.defineProperty(this, 'wire', { value: buffer });
  return decodePdu.call(this, buffer);
};

// The library takes a command_length of 0 for "no data yet": it drops those four bytes and waits,
// out of step for good. Make any length below the 16-byte header a protocol error instead.
const readCommandLength = smpp.PDU.commandLength;
smpp.PDU.commandLength = (stream) => {
  const length = readCommandLength(stream);
  if (length !== false && length < 16) throw new Error(`command_length ${length} is below 16`);
  return length;
};

// The library refuses PDUs over 16 KiB as a framing error; a message_payload may hold 64 KiB.
smpp.PDU.maxLength = 1 << 20;

/** Parse `--port N --scenario FILE --events FILE`; exits 1 on anything else. */
function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    const value = argv[i + 1];
    if (!['--port', '--scenario', '--events'].includes(name) || value === undefined) {
      fail(1, `usage: smsc.js --port N --scenario FILE.json --events FILE.jsonl (bad: ${name})`);
    }
    args[name.slice(2)] = value;
  }
  const port = Number(args.port);
  if (!args.scenario || !args.events || !Number.isInteger(port) || port < 1 || port > 65535) {
    fail(1, 'usage: smsc.js --port N --scenario FILE.json --events FILE.jsonl');
  }
  return { port, scenarioPath: args.scenario, eventsPath: args.events };
}

/** Read the scenario, fill defaults, check it; exits 1 on an unknown key or a bad value. */
function loadScenario(path) {
  let given;
  try {
    given = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (error) {
    fail(1, `cannot read scenario ${path}: ${error.message}`);
  }
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    fail(1, 'scenario must be a JSON object');
  }
  const unknown = Object.keys(given).filter((key) => !(key in DEFAULTS));
  if (unknown.length) fail(1, `unknown scenario keys: ${unknown.sort().join(', ')}`);
  for (const [key, value] of Object.entries(given)) {
    if (kindOf(value) !== kindOf(DEFAULTS[key])) {
      fail(1, `scenario ${key} must be ${kindOf(DEFAULTS[key])}, not ${JSON.stringify(value)}`);
    }
  }
  const scenario = { ...DEFAULTS, ...given };
  for (const key of COUNT_KEYS) {
    if (!Number.isInteger(scenario[key]) || scenario[key] < 0) {
      fail(1, `scenario ${key} must be a non-negative integer`);
    }
  }
  if (!MESSAGE_ID_FORMATS.includes(scenario.message_id_format)) {
    fail(1, `scenario message_id_format must be one of ${MESSAGE_ID_FORMATS.join(', ')}`);
  }
  if (!RECEIPT_ID_FORMATS.includes(scenario.receipt_id_format)) {
    fail(1, `scenario receipt_id_format must be one of ${RECEIPT_ID_FORMATS.join(', ')}`);
  }
  // "hex" rewrites a decimal id and "decimal" a hex one; the other pairing has nothing to convert.
  const convertsFrom = { hex: 'decimal', decimal: 'hex' }[scenario.receipt_id_format];
  if (convertsFrom && scenario.message_id_format !== convertsFrom) {
    fail(1, `receipt_id_format ${scenario.receipt_id_format} needs message_id_format ${convertsFrom}`);
  }
  for (const mo of scenario.mo) {
    if (kindOf(mo) !== 'an object' || !MO_REQUIRED_KEYS.every((key) => key in mo) ||
        !Object.keys(mo).every((key) => MO_KEYS.includes(key))) {
      fail(1, `an mo needs ${MO_REQUIRED_KEYS.join(', ')} and may have data_coding, esm_class: ` +
        JSON.stringify(mo));
    }
  }
  return scenario;
}

/** The JSON kind of a value, for scenario type checks. */
function kindOf(value) {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a fraction';
  return { string: 'a string', boolean: 'a boolean', object: 'an object' }[typeof value];
}

/**
 * The TLVs of a received submit_sm as [tag, value hex] pairs in wire order, read from its wire
 * bytes after the mandatory fields (SMPP 3.4 section 4.4.1).
 */
function submitTlvs(wire) {
  let offset = 16;
  const skipCString = () => {
    while (offset < wire.length && wire[offset] !== 0) offset++;
    offset++;
  };
  skipCString(); // service_type
  offset += 2; skipCString(); // source ton, npi, addr
  offset += 2; skipCString(); // destination ton, npi, addr
  offset += 3; skipCString(); skipCString(); // esm_class..priority_flag; two time strings
  offset += 4; // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
  if (offset < wire.length) offset += 1 + wire[offset]; // sm_length, short_message
  const tlvs = [];
  while (offset + 4 <= wire.length) {
    const tag = wire.readUInt16BE(offset);
    const length = wire.readUInt16BE(offset + 2);
    tlvs.push([tag, wire.subarray(offset + 4, offset + 4 + length).toString('hex')]);
    offset += 4 + length;
  }
  return tlvs;
}

function fail(code, message) {
  process.stderr.write(`smsc.js: ${message}\n`);
  process.exit(code);
}

/** Appends events as JSON lines with a synchronous write each, so readers see them at once. */
class EventLog {
  constructor(path) {
    this.fd = fs.openSync(path, 'a');
  }

  write(event) {
    fs.writeSync(this.fd, JSON.stringify(event) + '\n');
  }
}

/** YYMMDDhhmm in UTC, the date format of receipt text. */
function receiptDate(date) {
  const pad = (value) => String(value).padStart(2, '0');
  return pad(date.getUTCFullYear() % 100) + pad(date.getUTCMonth() + 1) + pad(date.getUTCDate()) +
    pad(date.getUTCHours()) + pad(date.getUTCMinutes());
}

/** First 20 characters of a submitted message as printable ASCII, for the receipt's text:. */
function receiptText(submit) {
  let octets = submit.short_message;
  if (!octets.length && Buffer.isBuffer(submit.message_payload)) octets = submit.message_payload;
  if (submit.esm_class & 0x40 && octets.length) octets = octets.subarray(octets[0] + 1);
  let text;
  if (submit.data_coding === 8) {
    const even = octets.subarray(0, octets.length - (octets.length % 2));
    text = Buffer.from(even).swap16().toString('utf16le');
  } else {
    text = octets.toString('latin1');
  }
  return Array.from(text).slice(0, 20)
    .map((char) => (char >= ' ' && char <= '~' ? char : '?')).join('');
}

/** The id as the receipt writes it, per receipt_id_format. */
function receiptId(messageId, format) {
  switch (format) {
    case 'hex': return BigInt(messageId).toString(16);
    case 'decimal': return BigInt('0x' + messageId).toString(10);
    case 'upper': return messageId.toUpperCase();
    case 'lower': return messageId.toLowerCase();
    default: return messageId;
  }
}

/** One ESME connection: its bind state and the deliver_sm it is still owed answers for. */
class Connection {
  constructor(smsc, session, id) {
    this.smsc = smsc;
    this.session = session;
    this.id = id; // "session" in events: "1", "2"... in order of connection
    this.mode = null; // bind mode once bound
    this.systemId = null;
    this.state = 'open'; // open -> bound -> unbinding (SMSC sent unbind) | unbound -> closed
    this.awaitingResp = new Map(); // deliver_sm sequence -> {event, receipt}
  }

  get canSubmit() {
    return (this.state === 'bound' || this.state === 'unbinding') && this.mode !== 'receiver';
  }

  get canReceive() {
    return this.state === 'bound' && this.mode !== 'transmitter';
  }

  /**
   * Send a deliver_sm; `event` is logged with the ESME's command_status when it answers (a
   * deliver_sm_resp or a generic_nack). Returns false when the socket is no longer writable.
   */
  deliver(fields, event, receipt = null) {
    const pdu = new smpp.PDU('deliver_sm', fields);
    const sent = this.session.send(pdu, (resp) => {
      this.awaitingResp.delete(pdu.sequence_number);
      this.smsc.events.write({ ...event, status: resp.command_status });
    });
    if (sent) this.awaitingResp.set(pdu.sequence_number, { event, receipt });
    return sent;
  }

  /**
   * Forget every unanswered deliver_sm: MOs are logged with status null and `error`, receipts are
   * handed back unlogged to be sent again (or, with `logReceipts` at exit, logged like MOs).
   */
  abandonAwaiting(error, logReceipts = false) {
    const receipts = [];
    for (const { event, receipt } of this.awaitingResp.values()) {
      if (receipt && !logReceipts) receipts.push(receipt);
      else this.smsc.events.write({ ...event, status: null, error });
    }
    this.awaitingResp.clear();
    return receipts;
  }
}

/** The SMSC: counters over the whole run, bound connections, receipts waiting for a receiver. */
class Smsc {
  constructor(scenario, events) {
    this.scenario = scenario;
    this.events = events;
    this.connections = new Set();
    this.connectionCount = 0;
    this.bindAttempts = 0;
    this.submitCount = 0;
    this.nextMessageId = FIRST_MESSAGE_ID;
    this.moSent = false;
    this.unbindDone = false;
    this.dropDone = false;
    this.waitingReceipts = new Map(); // system_id -> [receipt]
    this.server = smpp.createServer((session) => this.accept(session));
  }

  accept(session) {
    const connection = new Connection(this, session, String(++this.connectionCount));
    this.connections.add(connection);
    session.on('error', (error) => {
      // A socket error (it has a code, e.g. ECONNRESET) is followed by 'close', logged there. Any
      // other error is the library failing to frame or parse a PDU: it then stops reading the
      // connection for good, so log it and close the connection instead of hanging.
      if (!error.code) this.events.write({ event: 'protocol_error', message: error.message });
      session.destroy();
    });
    session.on('close', () => {
      connection.state = 'closed';
      this.connections.delete(connection);
      // Receipts the ESME never acknowledged go out again on its next receiving bind.
      const error = 'connection closed before the deliver_sm_resp';
      for (const receipt of connection.abandonAwaiting(error)) this.keepReceipt(receipt);
      this.events.write({ event: 'disconnect', session: connection.id });
    });
    session.on('pdu', (pdu) => this.dispatch(connection, pdu));
  }

  dispatch(connection, pdu) {
    if (pdu.command in BIND_MODES) return this.onBind(connection, pdu);
    switch (pdu.command) {
      case 'submit_sm': return this.onSubmit(connection, pdu);
      case 'enquire_link':
        this.events.write({ event: 'enquire_link' });
        return connection.session.send(pdu.response());
      case 'unbind': return this.onUnbind(connection, pdu);
      case 'unknown':
        this.events.write({ event: 'unsupported', command: `0x${pdu.command_id.toString(16)}` });
        return connection.session.send(pdu.response()); // generic_nack ESME_RINVCMDID
      default:
        if (pdu.isResponse()) return undefined; // deliver_sm_resp etc.: handled by callbacks
        this.events.write({ event: 'unsupported', command: pdu.command });
        return connection.session.send(pdu.response({ command_status: smpp.ESME_RINVCMDID }));
    }
  }

  onBind(connection, pdu) {
    const mode = BIND_MODES[pdu.command];
    const { scenario } = this;
    let status = smpp.ESME_ROK;
    if (connection.state !== 'open') {
      status = smpp.ESME_RALYBND;
    } else if (++this.bindAttempts <= scenario.refuse_binds) {
      status = smpp.ESME_RBINDFAIL;
    } else if (pdu.system_id !== scenario.system_id) {
      status = smpp.ESME_RINVSYSID;
    } else if (pdu.password !== scenario.password) {
      status = smpp.ESME_RINVPASWD;
    }
    const accepted = status === smpp.ESME_ROK;
    this.events.write({
      event: 'bind', mode, system_id: pdu.system_id, system_type: pdu.system_type, accepted,
      session: connection.id,
    });
    connection.session.send(pdu.response({ command_status: status, system_id: 'TIDINGSMSC' }));
    if (!accepted) return;
    connection.mode = mode;
    connection.systemId = pdu.system_id;
    connection.state = 'bound';
    if (connection.canReceive) {
      this.sendMos(connection);
      this.flushWaitingReceipts(connection);
    }
  }

  sendMos(connection) {
    if (this.moSent) return;
    this.moSent = true;
    for (const mo of this.scenario.mo) {
      connection.deliver({
        source_addr: mo.source_addr,
        destination_addr: mo.destination_addr,
        esm_class: mo.esm_class || 0,
        data_coding: mo.data_coding || 0,
        short_message: Buffer.from(mo.short_message_hex, 'hex'),
      }, { event: 'mo', source_addr: mo.source_addr, destination_addr: mo.destination_addr });
    }
  }

  onUnbind(connection, pdu) {
    this.events.write({ event: 'unbind', from: 'esme', session: connection.id });
    connection.state = 'unbound';
    // Answer, then close our side once the answer is written.
    connection.session.send(pdu.response(), () => connection.session.close());
  }

  /** Decide the answer to one submit_sm, log it, and send it (after response_delay_ms). */
  onSubmit(connection, pdu) {
    if (!Buffer.isBuffer(pdu.short_message)) pdu.short_message = Buffer.alloc(0); // truncated body
    const base = {
      event: 'submit_sm',
      n: null,
      sequence: pdu.sequence_number,
      source_addr: pdu.source_addr,
      source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.destination_addr,
      dest_addr_ton: pdu.dest_addr_ton,
      dest_addr_npi: pdu.dest_addr_npi,
      esm_class: pdu.esm_class,
      data_coding: pdu.data_coding,
      registered_delivery: pdu.registered_delivery,
      short_message_hex: pdu.short_message.toString('hex'),
      tlvs: submitTlvs(pdu.wire),
    };
    const log = (fields) => {
      if (this.scenario.log_submits) this.events.write({ ...base, ...fields, session: connection.id });
    };
    if (!connection.canSubmit) {
      log({ answer: 'not_bound', message_id: null });
      connection.session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    const n = ++this.submitCount;
    const answer = this.answerFor(n);
    let messageId = null;
    if (answer === 'ok') {
      const counter = this.nextMessageId++;
      messageId = this.scenario.message_id_format === 'hex'
        ? counter.toString(16).toUpperCase() : String(counter);
    }
    log({ n, answer, message_id: messageId });
    if (answer === 'none') {
      this.afterAnswer(connection, n);
      return;
    }
    const respond = () => {
      if (connection.state === 'closed') return;
      connection.session.send(this.responseFor(pdu, answer, messageId), () => {
        // Unbind or drop first, so the Nth submit's own receipt waits for the next bind.
        this.afterAnswer(connection, n);
        if (answer === 'ok' && this.scenario.receipts && pdu.registered_delivery & 1) {
          this.scheduleReceipt(connection, pdu, messageId, new Date());
        }
      });
    };
    if (this.scenario.response_delay_ms) setTimeout(respond, this.scenario.response_delay_ms);
    else respond();
  }

  answerFor(n) {
    const { scenario } = this;
    const every = (period) => period > 0 && n % period === 0;
    if (every(scenario.no_response_every)) return 'none';
    if (every(scenario.nack_every)) return 'nack';
    if (every(scenario.throttle_every)) return 'throttled';
    if (every(scenario.queue_full_every)) return 'queue_full';
    return 'ok';
  }

  responseFor(pdu, answer, messageId) {
    switch (answer) {
      case 'nack':
        return new smpp.PDU('generic_nack', {
          command_status: smpp.ESME_RSYSERR, sequence_number: pdu.sequence_number,
        });
      case 'throttled': return pdu.response({ command_status: smpp.ESME_RTHROTTLED });
      case 'queue_full': return pdu.response({ command_status: smpp.ESME_RMSGQFUL });
      default: return pdu.response({ message_id: messageId });
    }
  }

  /** unbind_after / drop_after, each once, on the connection that sent the Nth submit. */
  afterAnswer(connection, n) {
    const { scenario } = this;
    if (connection.state === 'closed') return;
    if (!this.unbindDone && scenario.unbind_after > 0 && n === scenario.unbind_after) {
      this.unbindDone = true;
      this.events.write({ event: 'unbind', from: 'smsc', session: connection.id });
      connection.state = 'unbinding';
      const closeTimer = setTimeout(() => {
        if (connection.state !== 'closed') connection.session.close();
      }, UNBIND_CLOSE_TIMEOUT_MS);
      connection.session.unbind(() => {
        clearTimeout(closeTimer);
        connection.session.close();
      });
    }
    if (!this.dropDone && scenario.drop_after > 0 && n === scenario.drop_after) {
      this.dropDone = true;
      this.events.write({ event: 'drop', session: connection.id });
      connection.state = 'closed';
      connection.session.destroy();
    }
  }

  scheduleReceipt(connection, pdu, messageId, submitDate) {
    const { scenario } = this;
    const stat = scenario.receipt_stat === 'by_destination'
      ? scenario.receipt_stats[pdu.destination_addr] || 'DELIVRD'
      : scenario.receipt_stat;
    const receipt = {
      systemId: connection.systemId,
      origin: connection,
      messageId,
      receiptId: receiptId(messageId, scenario.receipt_id_format),
      stat,
      submitDate,
      submit: pdu,
    };
    const send = () => this.deliverReceipt(receipt);
    if (scenario.receipt_delay_ms) setTimeout(send, scenario.receipt_delay_ms);
    else send();
  }

  /** Send a receipt to a connection that can take it, or keep it for the next receiving bind. */
  deliverReceipt(receipt) {
    let target = receipt.origin.canReceive ? receipt.origin : null;
    if (!target) {
      for (const connection of this.connections) {
        if (connection.canReceive && connection.systemId === receipt.systemId) {
          target = connection;
          break;
        }
      }
    }
    if (!target || !target.deliver(...this.receiptPdu(receipt), receipt)) this.keepReceipt(receipt);
  }

  keepReceipt(receipt) {
    const waiting = this.waitingReceipts.get(receipt.systemId) || [];
    waiting.push(receipt);
    this.waitingReceipts.set(receipt.systemId, waiting);
  }

  flushWaitingReceipts(connection) {
    const waiting = this.waitingReceipts.get(connection.systemId) || [];
    this.waitingReceipts.delete(connection.systemId);
    for (const receipt of waiting) this.deliverReceipt({ ...receipt, origin: connection });
  }

  /** The deliver_sm fields and the event to log for one receipt. */
  receiptPdu(receipt) {
    const { scenario } = this;
    const { submit, stat } = receipt;
    const text = `id:${receipt.receiptId} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} ` +
      `submit date:${receiptDate(receipt.submitDate)} done date:${receiptDate(new Date())} ` +
      `stat:${stat} err:${scenario.receipt_err} text:${receiptText(submit)}`;
    const fields = {
      source_addr_ton: submit.dest_addr_ton,
      source_addr_npi: submit.dest_addr_npi,
      source_addr: submit.destination_addr,
      dest_addr_ton: submit.source_addr_ton,
      dest_addr_npi: submit.source_addr_npi,
      destination_addr: submit.source_addr,
      esm_class: 0x04,
      data_coding: 0,
      short_message: Buffer.from(text, 'ascii'),
    };
    if (scenario.receipt_tlvs) {
      fields.receipted_message_id = receipt.receiptId;
      fields.message_state = MESSAGE_STATES[stat] || MESSAGE_STATES.UNKNOWN;
    }
    const event = {
      event: 'receipt', message_id: receipt.messageId, receipt_id: receipt.receiptId, stat,
    };
    return [fields, event];
  }

  /** Log what is still unanswered or undelivered with status null, then exit 0. */
  shutdown() {
    for (const connection of this.connections) {
      connection.abandonAwaiting('no deliver_sm_resp before the SMSC stopped', true);
    }
    for (const waiting of this.waitingReceipts.values()) {
      for (const receipt of waiting) {
        const [, event] = this.receiptPdu(receipt);
        this.events.write({ ...event, status: null, error: 'no receiving bind to send it to' });
      }
    }
    process.exit(0);
  }
}

function main() {
  const { port, scenarioPath, eventsPath } = parseArgs(process.argv.slice(2));
  const scenario = loadScenario(scenarioPath);
  const smsc = new Smsc(scenario, new EventLog(eventsPath));
  smsc.server.on('error', (error) => fail(1, `cannot listen on 127.0.0.1:${port}: ${error.message}`));
  smsc.server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`LISTENING ${smsc.server.address().port}\n`);
  });
  process.on('SIGTERM', () => smsc.shutdown());
  process.on('SIGINT', () => smsc.shutdown());
}

main();
