/**
 * Operator-written regular expressions that run on attacker-controlled input (a kubelet chooses its
 * DNS SANs), compiled with V8's linear-time engine so that no pattern can backtrack exponentially
 * on the event loop: `([a-z0-9]+-?)+\.nodes\.example\.com` against 28 "a"s and a wrong suffix takes
 * seconds with the backtracking engine, and 63 never finish.
 */
import { setFlagsFromString } from "node:v8";

/** V8's flag for the linear-time (non-backtracking) engine. */
const linearTimeFlag = "l";
let linearEngineEnabled = false;

/** The pattern anchored whole (^(?:source)$) with the `l` (linear-time) flag; throws SyntaxError. */
export function compileLinearTimePattern(source: string): RegExp {
  if (!linearEngineEnabled) {
    // The `l` flag is behind this V8 flag in Node 24; it only makes the flag available to new RegExps.
    setFlagsFromString("--enable-experimental-regexp-engine");
    linearEngineEnabled = true;
  }
  // Anchored here, so "[a-z0-9-]+\.nodes\.example\.com" can never match a prefix or suffix of a name.
  // The linear engine refuses what it cannot run in linear time (backreferences, lookahead).
  return new RegExp(`^(?:${source})$`, linearTimeFlag);
}
