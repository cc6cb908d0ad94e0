import { generate } from "selfsigned";

/** A throwaway CA and a leaf certificate signed by it, generated inside the test run. */
export interface TestPki {
  readonly caCert: string;
  readonly key: string;
  readonly cert: string;
}

export async function makeTestPki(names: readonly string[]): Promise<TestPki> {
  const ca = await generate([{ name: "commonName", value: "Hangar Test CA" }], {
    keyType: "ec",
    algorithm: "sha256",
    curve: "P-256",
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: "commonName", value: names[0] ?? "localhost" }], {
    keyType: "ec",
    algorithm: "sha256",
    curve: "P-256",
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "subjectAltName", altNames: names.map((value) => ({ type: 2 as const, value })) },
    ],
  });
  return { caCert: ca.cert, key: leaf.private, cert: leaf.cert };
}
