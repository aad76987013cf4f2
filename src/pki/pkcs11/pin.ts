/**
 * The PIN in a PIN file's content: the whole content but a final line ending (Vault Agent templates
 * and `echo` add one; a PIN never ends in one). Errors never quote the content.
 */
export function pinFromFile(content: string): string {
  const pin = content.replace(/\r?\n$/, "");
  if (pin.length === 0) throw new Error("the PIN file is empty");
  if (/[\r\n]/.test(pin)) throw new Error("the PIN file holds more than one line");
  return pin;
}
