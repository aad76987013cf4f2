import { expect } from "chai";
import { TokenBucket } from "../../../src/kube/token-bucket.js";
import { settledNow } from "../../support/wait.js";

describe("TokenBucket.take (a client rate limit)", () => {
  it("goes on at once while tokens are saved up, and waits for the next one after", async () => {
    const bucket = new TokenBucket(5, 2); // a token every 200 ms, two saved up
    expect(await settledNow(bucket.take())).to.equal(true);
    expect(await settledNow(bucket.take())).to.equal(true);
    const third = bucket.take();
    expect(await settledNow(third), "no token left: it waits").to.equal(false);
    await third; // resolves once the token is due
    expect(bucket.availableInMs()).to.be.greaterThan(0);
  });
});
