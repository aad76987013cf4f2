import { expect } from "chai";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import type { PeerCertificate, TLSSocket } from "node:tls";
import { Registry } from "prom-client";
import { HttpEndpoints } from "../../../src/controller/http-endpoints.js";
import { createSelfSignedServingCertificate } from "../../../src/pki/self-signed-serving.js";

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

/** GET https://address/path with the certificate not verified; the status, body and served certificate. */
function httpsGet(
  address: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; certificate: PeerCertificate }> {
  const separator = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const outgoing = httpsRequest(
      {
        host: address.slice(0, separator),
        port: Number(address.slice(separator + 1)),
        path: "/metrics",
        rejectUnauthorized: false,
        agent: false,
        headers,
      },
      (response) => {
        const certificate = (response.socket as TLSSocket).getPeerCertificate();
        let body = "";
        response.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body, certificate }));
      },
    );
    outgoing.on("error", reject);
    outgoing.end();
  });
}

describe("HttpEndpoints: secure /metrics", () => {
  it("serves /metrics over HTTPS with the given certificate, answering as the access check says; probes stay plain HTTP", async () => {
    const tls = await createSelfSignedServingCertificate("csr-signer-metrics", [
      "localhost",
      "csr-signer-metrics",
    ]);
    const registry = new Registry();
    const seen: (string | undefined)[] = [];
    const endpoints = await HttpEndpoints.start(
      { metricsAddress: "127.0.0.1:0", probeAddress: "127.0.0.1:0", metricsTls: tls },
      {
        metrics: registry,
        stalls: () => [],
        ready: () => true,
        metricsAccess: async (authorization, path) => {
          seen.push(authorization);
          expect(path).to.equal("/metrics");
          return authorization === "Bearer reader" ? 200 : authorization === "Bearer other" ? 403 : 401;
        },
      },
    );
    try {
      const [metrics, probe] = endpoints.addresses();
      const anonymous = await httpsGet(metrics!);
      expect(anonymous.status).to.equal(401);
      expect(anonymous.certificate.subject.CN).to.equal("csr-signer-metrics");
      expect(anonymous.certificate.subjectaltname).to.equal("DNS:localhost, DNS:csr-signer-metrics");
      const forbidden = await httpsGet(metrics!, { authorization: "Bearer other" });
      expect(forbidden.status).to.equal(403);
      expect(forbidden.body).to.contain("csr-signer-metrics-reader");
      const allowed = await httpsGet(metrics!, { authorization: "Bearer reader" });
      expect(allowed.status).to.equal(200);
      expect(seen).to.deep.equal([undefined, "Bearer other", "Bearer reader"]);
      expect((await fetch(`http://${probe}/healthz`)).status).to.equal(200);
    } finally {
      await endpoints.close();
    }
  });
});
