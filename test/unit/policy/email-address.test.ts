import { expect } from "chai";
import { parsePlainMailbox } from "../../../src/policy/email-address.js";

describe("parsePlainMailbox (RFC 5321 mailbox, unquoted dot-atom local part)", () => {
  for (const [text, localPart, domain] of [
    ["ops@example.com", "ops", "example.com"],
    ["First.Last+tag@Example.COM", "First.Last+tag", "example.com"],
    ["o'brien!#$%&*/=?^_`{|}~-@mail-1.example", "o'brien!#$%&*/=?^_`{|}~-", "mail-1.example"],
    ["a@localhost", "a", "localhost"],
  ] as const) {
    it(`reads ${text}`, () => {
      expect(parsePlainMailbox(text)).to.deep.equal({ localPart, domain });
    });
  }

  for (const [why, text] of [
    ["two @ (a@evil.com@allowed.com)", "a@evil.com@allowed.com"],
    ["a quoted local part holding an @", '"x@evil.com"@allowed.com'],
    ["a quoted local part", '"x"@allowed.com'],
    ["an empty local part", "@allowed.com"],
    ["no @", "allowed.com"],
    ["an empty domain", "a@"],
    ["a leading dot in the local part", ".a@allowed.com"],
    ["a trailing dot in the local part", "a.@allowed.com"],
    ["a double dot in the local part", "a..b@allowed.com"],
    ["a backslash in the local part", "a\\@allowed.com"],
    ["a comment", "a(comment)@allowed.com"],
    ["an address literal", "a@[10.0.0.1]"],
    ["a trailing dot in the domain", "a@allowed.com."],
    ["an empty domain label", "a@allowed..com"],
    ["a label starting with a hyphen", "a@-allowed.com"],
    ["an underscore in the domain", "a@allo_wed.com"],
    ["a local part over 64 characters", `${"a".repeat(65)}@allowed.com`],
    ["a label over 63 characters", `a@${"b".repeat(64)}.com`],
    ["a domain over 255 characters", `a@${Array.from({ length: 5 }, () => "c".repeat(60)).join(".")}.com`],
  ] as const) {
    it(`refuses ${why}`, () => {
      expect(parsePlainMailbox(text)).to.equal(undefined);
    });
  }
});
