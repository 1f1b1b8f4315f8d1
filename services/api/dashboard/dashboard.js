/* rampart operator dashboard: plain JavaScript, no dependencies.
 *
 * The API key lives in sessionStorage and travels only in the Authorization
 * header (never in a URL). Every REFRESH_MS the page reads GET /v1/summary,
 * one page of GET /v1/payments and, when a payment is open, its
 * GET /v1/payments/{id} and GET /v1/payments/{id}/events; it updates the
 * existing DOM nodes in place, so nothing flickers and scroll positions and
 * the open detail view stay. At most PAGE_SIZE payment rows exist at once. */
'use strict';

(function () {
  const STORAGE_KEY = 'rampart.apiKey';
  const REFRESH_MS = 2000;
  const PAGE_SIZE = 25;
  const STATES = ['PENDING', 'ONRAMP_PENDING', 'ONRAMP_COMPLETE', 'OFFRAMP_PENDING',
    'COMPLETED', 'FAILED', 'REFUND_PENDING', 'REFUNDED'];
  const QUEUES = ['payments', 'webhooks', 'fees'];
  // Minor-unit exponents that are not 2.
  const EXPONENTS = { JPY: 0, KRW: 0, VND: 0, CLP: 0, ISK: 0, HUF: 2, KWD: 3, BHD: 3, JOD: 3, OMR: 3, TND: 3 };

  const $ = (id) => document.getElementById(id);
  let timer = null;
  let busy = false;
  let cursors = [];          // starting_after of each page before the current one
  let pageIds = [];          // ids shown, newest first
  let selected = null;       // id of the payment in the detail view
  let detailSig = { timeline: '', events: '' };

  /* ---- small DOM helpers: write only what changed ---- */

  function setText(el, text) {
    text = String(text);
    if (el.textContent !== text) el.textContent = text;
  }

  function setClass(el, cls) {
    if (el.className !== cls) el.className = cls;
  }

  function make(tag, cls, text) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /* Integer minor units to a decimal string, without floating point. */
  function money(amount, currency) {
    const exp = EXPONENTS[currency] === undefined ? 2 : EXPONENTS[currency];
    const neg = amount < 0;
    let s = String(Math.abs(amount));
    if (exp > 0) {
      s = s.padStart(exp + 1, '0');
      s = s.slice(0, -exp).replace(/\B(?=(\d{3})+(?!\d))/g, ',') + '.' + s.slice(-exp);
    } else {
      s = s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    }
    return (neg ? '-' : '') + s + ' ' + currency;
  }

  function ago(iso) {
    const t = Date.parse(iso);
    if (isNaN(t)) return iso || '';
    return seconds(Math.max(0, Math.round((Date.now() - t) / 1000))) + ' ago';
  }

  function seconds(s) {
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' d';
  }

  function clock(iso) {
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toISOString().slice(11, 23);
  }

  /* ---- the key and the API ---- */

  function key() {
    return sessionStorage.getItem(STORAGE_KEY);
  }

  class Unauthorized extends Error {}

  async function api(path) {
    const k = key();
    if (!k) throw new Unauthorized('no key');
    const res = await fetch(path, {
      headers: { Authorization: 'Bearer ' + k, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
    if (res.status === 401) throw new Unauthorized('key refused');
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const msg = body && body.error ? body.error.code + ': ' + body.error.message : 'HTTP ' + res.status;
      const e = new Error(msg);
      e.status = res.status;
      throw e;
    }
    return body;
  }

  function showLogin(message) {
    stop();
    sessionStorage.removeItem(STORAGE_KEY);
    $('app').hidden = true;
    $('status-bar').hidden = true;
    $('login').hidden = false;
    const err = $('login-error');
    err.hidden = !message;
    setText(err, message || '');
    // Forget everything shown with the old key.
    closeDetail();
    for (const tr of Array.from($('payments').tBodies[0].rows)) tr.remove();
    pageIds = [];
    cursors = [];
    $('key').value = '';
    $('key').focus();
  }

  function showApp() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('status-bar').hidden = false;
    start();
  }

  function start() {
    stop();
    refresh();
    timer = setInterval(refresh, REFRESH_MS);
  }

  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  async function refresh() {
    if (busy || !key()) return;
    busy = true;
    try {
      const filter = $('filter').value;
      let path = '/v1/payments?limit=' + PAGE_SIZE;
      if (filter) path += '&status=' + encodeURIComponent(filter);
      if (cursors.length) path += '&starting_after=' + encodeURIComponent(cursors[cursors.length - 1]);
      const jobs = [api('/v1/summary').then(renderSummary), api(path).then(renderPayments)];
      if (selected) jobs.push(loadDetail(selected));
      await Promise.all(jobs);
      setText($('updated'), 'updated ' + new Date().toLocaleTimeString());
      $('updated').className = 'muted';
    } catch (e) {
      if (e instanceof Unauthorized) {
        showLogin(e.message === 'key refused' ? 'The API refused this key (401).' : '');
      } else {
        setText($('updated'), 'refresh failed: ' + e.message);
        $('updated').className = 'error';
      }
    } finally {
      busy = false;
    }
  }

  /* ---- summary ---- */

  function buildStatic() {
    const box = $('states');
    const filter = $('filter');
    for (const s of STATES) {
      const card = make('div', 'state st-' + s);
      card.id = 'state-' + s;
      card.append(make('div', 'n', '–'), make('div', 'label', s));
      box.append(card);
      const opt = make('option', '', s);
      opt.value = s;
      filter.append(opt);
    }
    const qb = $('queues').tBodies[0];
    for (const q of QUEUES) {
      const tr = make('tr');
      tr.id = 'queue-' + q;
      tr.append(make('td', '', q));
      for (let i = 0; i < 5; i++) tr.append(make('td', 'num', '–'));
      qb.append(tr);
    }
  }

  function renderSummary(s) {
    for (const st of STATES) {
      setText($('state-' + st).firstChild, s.payments.by_state[st] ?? 0);
    }
    setText($('total'), s.payments.total + ' total');
    for (const q of QUEUES) {
      const v = s.queues[q];
      const cells = $('queue-' + q).cells;
      const vals = v ? [v.depth ?? '?', v.in_flight, v.delayed, v.dlq, v.consumers] : ['?', '?', '?', '?', '?'];
      vals.forEach((x, i) => setText(cells[i + 1], x));
      setClass(cells[4], v && v.dlq > 0 ? 'num error' : 'num');
    }
    const w = s.webhooks;
    setText($('wh-rate'), w.success_rate === null ? 'no attempts yet'
      : (w.success_rate * 100).toFixed(1) + ' % delivered');
    setText($('wh-detail'), w.succeeded + ' of the last ' + w.attempts + ' attempts (window '
      + w.window + ') answered 2xx · ' + w.deliveries_pending + ' deliveries pending');
    const f = s.fee_decisions;
    setText($('fee-ai'), f ? f.ai : '?');
    setText($('fee-fallback'), f ? f.fallback : '?');
    const total = f ? f.ai + f.fallback : 0;
    $('fee-bar').value = total ? f.ai / total : 0;
    const reasons = f ? Object.entries(f.fallback_reasons).map(([k, n]) => k + ' ' + n).join(' · ') : '';
    setText($('fee-reasons'), reasons ? 'fallback reasons: ' + reasons : '');
    renderMarket(s.market);
  }

  function renderMarket(m) {
    const body = $('market').tBodies[0];
    const sources = m ? m.sources : [];
    while (body.rows.length > sources.length) body.deleteRow(-1);
    sources.forEach((src, i) => {
      let tr = body.rows[i];
      if (!tr) {
        tr = body.insertRow();
        tr.append(make('td'), make('td'), make('td', 'num'));
      }
      setText(tr.cells[0], src.name);
      setText(tr.cells[1], src.source);
      setClass(tr.cells[1], 'src-' + src.source);
      setText(tr.cells[2], src.age_seconds === null ? '–' : seconds(src.age_seconds));
    });
  }

  /* ---- the payments table: one row per id, moved and updated in place ---- */

  function renderPayments(page) {
    const body = $('payments').tBodies[0];
    const rows = new Map(Array.from(body.rows, (tr) => [tr.dataset.id, tr]));
    const ids = page.data.map((p) => p.id);
    for (const [id, tr] of rows) if (!ids.includes(id)) tr.remove();
    page.data.forEach((p, i) => {
      let tr = rows.get(p.id);
      if (!tr) {
        tr = make('tr');
        tr.dataset.id = p.id;
        tr.append(make('td', 'id'), make('td'), make('td', 'num'), make('td', 'num'), make('td'), make('td'));
        tr.cells[1].append(make('span', 'badge'));
      }
      if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
      setText(tr.cells[0], p.id);
      const badge = tr.cells[1].firstChild;
      setText(badge, p.status);
      setClass(badge, 'badge st-' + p.status);
      setText(tr.cells[2], money(p.amount, p.currency));
      setText(tr.cells[3], money(p.payout_amount, p.payout_currency));
      setText(tr.cells[4], p.chain);
      setText(tr.cells[5], ago(p.created_at));
      tr.cells[5].title = p.created_at;
      setClass(tr, p.id === selected ? 'selected' : '');
    });
    pageIds = ids;
    $('payments-empty').hidden = ids.length > 0;
    $('newer').disabled = cursors.length === 0;
    $('older').disabled = !page.has_more;
    setText($('page'), 'page ' + (cursors.length + 1));
  }

  /* ---- the detail view ---- */

  function field(dl, name, value) {
    let dd = dl.querySelector('dd[data-f="' + name + '"]');
    if (!dd) {
      dl.append(make('dt', '', name));
      dd = make('dd');
      dd.dataset.f = name;
      dl.append(dd);
    }
    setText(dd, value);
  }

  async function loadDetail(id) {
    const [p, ev] = await Promise.all([api('/v1/payments/' + encodeURIComponent(id)),
      api('/v1/payments/' + encodeURIComponent(id) + '/events')]);
    if (selected !== id) return;
    setText($('d-id'), p.id);
    const dl = $('d-fields');
    field(dl, 'status', p.status);
    field(dl, 'amount', money(p.amount, p.currency));
    field(dl, 'payout', money(p.payout_amount, p.payout_currency));
    field(dl, 'rate', p.exchange_rate);
    field(dl, 'fees', money(p.fees.total_fees, p.fees.currency));
    field(dl, 'chain', p.chain);
    field(dl, 'from', p.source_account);
    field(dl, 'to', p.destination_account);
    field(dl, 'failure', p.failure_code || '–');
    field(dl, 'quote', p.quote_id);

    // The timeline only grows: rebuild it only when it changed.
    const sig = JSON.stringify(p.history);
    if (sig !== detailSig.timeline) {
      detailSig.timeline = sig;
      const ol = $('d-timeline');
      ol.replaceChildren(...p.history.map((h) => {
        const li = make('li', 'st-' + h.status);
        li.dataset.status = h.status;
        li.append(make('span', 'badge st-' + h.status, h.status), make('span', 'when', clock(h.at)));
        if (h.reason) li.append(make('div', 'muted', h.reason));
        return li;
      }));
    }
    const esig = JSON.stringify(ev.data);
    if (esig !== detailSig.events) {
      detailSig.events = esig;
      const box = $('d-events');
      const nodes = ev.data.map((e) => {
        const div = make('div', 'event');
        div.append(make('span', 'type', e.type), make('span', 'when', clock(e.created_at)));
        if (!e.deliveries.length) div.append(make('div', 'muted', 'no endpoint subscribed'));
        for (const d of e.deliveries) {
          const head = make('div');
          head.append(make('span', 'badge ' + (d.state === 'delivered' ? 'ok' : d.state === 'pending' ? '' : 'bad'), d.state),
            document.createTextNode(' ' + d.url));
          const ul = make('ul');
          for (const a of d.attempts) {
            const ok = a.status_code >= 200 && a.status_code < 300;
            ul.append(make('li', ok ? '' : 'error', '#' + a.attempt + ' ' + (a.status_code ?? 'no answer')
              + (a.latency_ms !== null ? ' in ' + a.latency_ms + ' ms' : '') + (a.error ? ' (' + a.error + ')' : '')
              + ' at ' + clock(a.at)));
          }
          div.append(head, ul);
        }
        return div;
      });
      if (!nodes.length) nodes.push(make('p', 'muted', 'no events'));
      box.replaceChildren(...nodes);
    }
  }

  function openDetail(id) {
    if (selected !== id) {
      selected = id;
      detailSig = { timeline: '', events: '' };
      $('d-fields').replaceChildren();
      $('d-timeline').replaceChildren();
      $('d-events').replaceChildren();
      setText($('d-id'), id);
    }
    for (const tr of $('payments').tBodies[0].rows) setClass(tr, tr.dataset.id === id ? 'selected' : '');
    $('detail').hidden = false;
    $('detail').parentElement.classList.add('with-detail');
    loadDetail(id).catch((e) => {
      if (e instanceof Unauthorized) showLogin('The API refused this key (401).');
    });
  }

  function closeDetail() {
    selected = null;
    $('detail').hidden = true;
    $('detail').parentElement.classList.remove('with-detail');
    for (const tr of $('payments').tBodies[0].rows) setClass(tr, '');
  }

  /* ---- wiring ---- */

  document.addEventListener('DOMContentLoaded', () => {
    buildStatic();
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const k = $('key').value.trim();
      if (!k) return;
      sessionStorage.setItem(STORAGE_KEY, k);
      $('key').value = '';
      showApp();
    });
    $('signout').addEventListener('click', () => showLogin(''));
    $('payments').tBodies[0].addEventListener('click', (ev) => {
      const tr = ev.target.closest('tr');
      if (tr && tr.dataset.id) openDetail(tr.dataset.id);
    });
    $('detail-close').addEventListener('click', closeDetail);
    $('older').addEventListener('click', () => {
      if (!pageIds.length) return;
      cursors.push(pageIds[pageIds.length - 1]);
      refresh();
    });
    $('newer').addEventListener('click', () => {
      cursors.pop();
      refresh();
    });
    $('filter').addEventListener('change', () => {
      cursors = [];
      refresh();
    });
    if (key()) showApp();
    else showLogin('');
  });
})();
