// A client generated from docs/openapi.yaml (openapi-typescript types,
// openapi-fetch calls): creates a quote, pays it with an Idempotency-Key
// (twice: the second answer must be the replay), lists payments and reads an
// unknown payment's typed error. Prints one JSON line of what it saw.
//
//   node build/js/client.js http://127.0.0.1:8080 sk_dev_rampart
//
// scripts/openapi.sh type-checks (tsc, strict) and compiles it;
// tests/integration/test_openapi.py runs it against a live api.
import createClient from "openapi-fetch";
import type { components, paths } from "./build/schema.js";

declare const process: { argv: string[]; exitCode: number | undefined };

type Quote = components["schemas"]["Quote"];
type PaymentStatus = components["schemas"]["PaymentStatus"];

async function main(): Promise<void> {
  const [baseUrl, apiKey] = process.argv.slice(2);
  if (!baseUrl || !apiKey) throw new Error("usage: node build/js/client.js BASE_URL API_KEY");
  const client = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${apiKey}` },
  });

  const q = await client.POST("/v1/quotes", {
    body: { from_currency: "USD", to_currency: "EUR", amount: 100000 },
  });
  if (!q.data) throw new Error(`POST /v1/quotes: ${q.response.status} ${JSON.stringify(q.error)}`);
  const quote: Quote = q.data;

  const key = `ts-client-${quote.id}`;
  const body = {
    quote_id: quote.id,
    source_account: "acct_ts_client",
    destination_account: "DE89370400440532013000",
    metadata: { client: "openapi-fetch" },
  };
  const p = await client.POST("/v1/payments", {
    params: { header: { "Idempotency-Key": key } },
    body,
  });
  if (!p.data) throw new Error(`POST /v1/payments: ${p.response.status} ${JSON.stringify(p.error)}`);
  const status: PaymentStatus = p.data.status;
  const again = await client.POST("/v1/payments", {
    params: { header: { "Idempotency-Key": key } },
    body,
  });
  if (!again.data) throw new Error(`replay: ${again.response.status} ${JSON.stringify(again.error)}`);

  const list = await client.GET("/v1/payments", { params: { query: { limit: 10 } } });
  if (!list.data) throw new Error(`GET /v1/payments: ${list.response.status} ${JSON.stringify(list.error)}`);
  const paymentId = p.data.id;
  const listed = list.data.data.find((x) => x.id === paymentId);

  const missing = await client.GET("/v1/payments/{id}", {
    params: { path: { id: "pay_00000000-0000-4000-8000-000000000000" } },
  });

  console.log(
    JSON.stringify({
      quote_id: quote.id,
      guaranteed_payout: quote.guaranteed_payout,
      payment_id: paymentId,
      payment_status: status,
      payment_status_code: p.response.status,
      history: p.data.history.map((h) => h.status),
      replay_id: again.data.id,
      replayed: again.response.headers.get("Idempotent-Replayed"),
      listed_payout: listed?.payout_amount ?? null,
      list_has_more: list.data.has_more,
      missing_status: missing.response.status,
      missing_code: missing.error?.error.code ?? null,
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
