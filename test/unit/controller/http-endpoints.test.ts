import { expect } from "chai";
import { connect } from "node:net";
import { Registry } from "prom-client";
import { HttpEndpoints } from "../../../src/controller/http-endpoints.js";

/** Sends `requestText` as is on a raw socket and returns the status line of the answer. */
function rawRequest(address: string, requestText: string): Promise<string> {
  const separator = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const socket = connect(Number(address.slice(separator + 1)), address.slice(0, separator));
    let answer = "";
    socket.on("data", (chunk) => (answer += chunk.toString("latin1")));
    socket.on("end", () => resolve(answer.split("\r\n")[0] ?? ""));
    socket.on("error", reject);
    socket.write(requestText);
  });
}

describe("HttpEndpoints: /metrics, /healthz and /readyz", () => {
  it("answers a request line no URL parser accepts (GET http://[) and keeps serving", async () => {
    const endpoints = await HttpEndpoints.start(
      { metricsAddress: "127.0.0.1:0", probeAddress: "127.0.0.1:0" },
      { metrics: new Registry(), stalls: () => [], ready: () => true },
    );
    try {
      const probe = endpoints.addresses()[1]!;
      const odd = await rawRequest(probe, "GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(odd).to.match(/^HTTP\/1\.1 404 /);
      const healthz = await rawRequest(
        probe,
        "GET /healthz?verbose HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
      expect(healthz).to.equal("HTTP/1.1 200 OK");
    } finally {
      await endpoints.close();
    }
  });
});
