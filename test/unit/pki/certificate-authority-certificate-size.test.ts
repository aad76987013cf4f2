import { expect } from "chai";
import {
  CertificateAuthorityError,
  loadCertificateAuthority,
  maximumCertificateDerBytes,
  maximumSubjectCharacters,
} from "../../../src/pki/certificate-authority.js";
import { thrownBy } from "../../support/errors.js";
import { opensslSelfSignedCa } from "../../support/openssl.js";

/** A self-signed EC CA made by openssl with the given subject and extra extensions, as a tls Secret's files. */
function selfSignedCa(subject: string, extensions: string[] = []): Record<string, Buffer> {
  return opensslSelfSignedCa({ subject, extensions });
}

// A tenant writing its own CA Secret must not make the Signer's status unwritable (roots[].pem and
// condition messages have CRD length limits) or flood messages with a huge subject.
describe("CA certificate size: a certificate over 8 KiB or a subject over 1024 characters is refused", () => {
  it("loads an ordinary CA", () => {
    expect(
      loadCertificateAuthority(selfSignedCa("/CN=ordinary CA"), new Date()).signingCertificate.subject,
    ).to.equal("CN=ordinary CA");
  });

  it("refuses a subject of thousands of characters as TooLarge, naming the limits", () => {
    const subject = Array.from({ length: 40 }, (_, i) => `/O=${String(i).padStart(60, "o")}`).join("");
    const error = thrownBy(CertificateAuthorityError, () =>
      loadCertificateAuthority(selfSignedCa(subject), new Date()),
    );
    expect(error.reason).to.equal("TooLarge");
    expect(error.message).to.include(
      `at most ${maximumCertificateDerBytes} bytes and ${maximumSubjectCharacters} characters are accepted`,
    );
  });

  it("refuses a certificate over the DER size cap as TooLarge", () => {
    const names = Array.from({ length: 200 }, (_, i) => `DNS:name-${i}.${"x".repeat(40)}.example`).join(",");
    const error = thrownBy(CertificateAuthorityError, () =>
      loadCertificateAuthority(selfSignedCa("/CN=padded CA", [`subjectAltName=${names}`]), new Date()),
    );
    expect(error.reason).to.equal("TooLarge");
    expect(error.message).to.match(/^tls\.crt: certificate 1 is \d+ bytes/);
  });
});
