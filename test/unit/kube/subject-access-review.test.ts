import { expect } from "chai";
import { subjectAccessReviewBody } from "../../../src/kube/subject-access-review.js";

describe("subjectAccessReviewBody", () => {
  it("asks about a resource verb for the approver, copying only the named fields of its question", () => {
    const question = {
      user: "system:serviceaccount:istio-system:istiod",
      uid: "0b7c",
      groups: ["system:serviceaccounts"],
      extra: { "authentication.kubernetes.io/pod-name": ["istiod-1"] },
      group: "certificates.k8s.io",
      resource: "signers",
      subresource: "",
      verb: "approve",
      name: "example.com/*",
    };
    expect(subjectAccessReviewBody(question, { resource: question })).to.deep.equal({
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: "system:serviceaccount:istio-system:istiod",
        uid: "0b7c",
        groups: ["system:serviceaccounts"],
        extra: { "authentication.kubernetes.io/pod-name": ["istiod-1"] },
        resourceAttributes: {
          group: "certificates.k8s.io",
          resource: "signers",
          verb: "approve",
          name: "example.com/*",
        },
      },
    });
  });

  it("asks about a non-resource URL for the metrics server; no uid, groups or extra: none sent but groups []", () => {
    expect(
      subjectAccessReviewBody({ user: "prometheus" }, { nonResource: { path: "/metrics", verb: "get" } }),
    ).to.deep.equal({
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: { user: "prometheus", groups: [], nonResourceAttributes: { path: "/metrics", verb: "get" } },
    });
  });
});
