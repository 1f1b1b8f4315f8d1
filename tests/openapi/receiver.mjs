// A webhook receiver that verifies rampart's deliveries with the reference
// Standard Webhooks library (npm "standardwebhooks"): the code of
// docs/quickstart.md, run by tests/integration/test_openapi.py.
//
//   RAMPART_WEBHOOK_SECRET=whsec_... PORT=4000 node receiver.mjs
import http from "node:http";
import { Webhook } from "standardwebhooks";

const wh = new Webhook(process.env.RAMPART_WEBHOOK_SECRET); // "whsec_..." as created
const seen = new Set(); // deliveries are at least once: deduplicate by webhook-id

http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8"); // verify the raw bytes
      let event;
      try {
        event = wh.verify(raw, req.headers); // signature and a 5-minute timestamp window
      } catch (err) {
        console.log(`rejected: ${err.message}`);
        res.writeHead(400).end();
        return;
      }
      if (!seen.has(req.headers["webhook-id"])) {
        seen.add(req.headers["webhook-id"]);
        console.log(`verified ${event.type} ${event.data.id} ${event.data.status}`);
      }
      res.writeHead(204).end(); // any 2xx acknowledges
    });
  })
  .listen(Number(process.env.PORT || 4000), "127.0.0.1");
