import { randomBytes, webcrypto } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import type * as X509Module from "@peculiar/x509";

/**
 * The sandbox CA: one per sandbox run, ECDSA P-256, short-lived. The control plane makes it at
 * start and hands the key to the sidecar (never to the server, never into an image); the server
 * trusts the certificate alone. The sidecar mints one leaf per SNI with it, cached.
 *
 * X.509 is @peculiar/x509 on WebCrypto, loaded on first use: sandboxes that inspect nothing
 * never pay for it.
 */
export interface CaMaterial {
  readonly certPem: string;
  /** PKCS#8, PEM. */
  readonly keyPem: string;
}

type X509 = typeof X509Module;
// No DOM lib here: WebCrypto's types come from node:crypto, and the library takes them as they are.
type Key = webcrypto.CryptoKey;
type KeyPair = webcrypto.CryptoKeyPair;
let x509: Promise<X509> | undefined;
async function library(): Promise<X509> {
  // The library's dependency injection needs a Reflect polyfill loaded before it.
  x509 ??= import("reflect-metadata").then(() => import("@peculiar/x509")).then((lib) => {
    lib.cryptoProvider.set(webcrypto as never);
    return lib;
  });
  return x509;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const HOUR = 3600_000;
/** Clocks inside and outside a sandbox may disagree a little. */
const SKEW_MS = HOUR;

const serial = (): string => {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // positive
  return bytes.toString("hex");
};

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}

export async function createSandboxCa(options: { readonly name: string; readonly now: number; readonly validityHours?: number }): Promise<CaMaterial> {
  const lib = await library();
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as KeyPair;
  const cert = await lib.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: [{ CN: [`Hangar sandbox CA (${options.name.slice(0, 40)})`] }, { O: ["Hangar"] }],
    notBefore: new Date(options.now - SKEW_MS),
    notAfter: new Date(options.now + (options.validityHours ?? 7 * 24) * HOUR),
    keys: keys as never,
    signingAlgorithm: ALG,
    extensions: [
      new lib.BasicConstraintsExtension(true, 0, true),
      new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign | lib.KeyUsageFlags.cRLSign, true),
      await lib.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  const key = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { certPem: cert.toString("pem") + "\n", keyPem: pem("PRIVATE KEY", key) };
}

/** How many minted leaves are kept; a flood of names only churns the cache. */
const MAX_LEAVES = 256;

/**
 * Leaf certificates for the names the sidecar terminates, minted on first use and cached. One
 * leaf key serves every name (a leaf's key is as exposed as the CA's inside the sidecar).
 */
export class LeafMinter {
  private readonly leaves = new Map<string, Promise<SecureContext>>();
  private signer: Promise<{ lib: X509; caKey: Key; caCert: X509Module.X509Certificate; leafKeys: KeyPair; leafKeyPem: string }> | undefined;

  constructor(
    private readonly ca: CaMaterial,
    private readonly now: () => number = Date.now,
  ) {}

  /** The CA certificate the server trusts. */
  get caCertPem(): string {
    return this.ca.certPem;
  }

  /** A TLS server context for `name` (a normalised host name). */
  contextFor(name: string): Promise<SecureContext> {
    let leaf = this.leaves.get(name);
    if (leaf === undefined) {
      if (this.leaves.size >= MAX_LEAVES) this.leaves.delete(this.leaves.keys().next().value!);
      leaf = this.mint(name);
      // A failed mint must not stay cached.
      leaf.catch(() => this.leaves.delete(name));
      this.leaves.set(name, leaf);
    }
    return leaf;
  }

  private async mint(name: string): Promise<SecureContext> {
    const { lib, caKey, caCert, leafKeys, leafKeyPem } = await this.loadSigner();
    const now = this.now();
    const notAfter = Math.min(caCert.notAfter.getTime(), now + 7 * 24 * HOUR);
    const cert = await lib.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: [{ CN: [name.slice(0, 64)] }],
      issuer: caCert.subject,
      notBefore: new Date(now - SKEW_MS),
      notAfter: new Date(notAfter),
      publicKey: leafKeys.publicKey as never,
      signingKey: caKey as never,
      signingAlgorithm: ALG,
      extensions: [
        new lib.BasicConstraintsExtension(false, undefined, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature, true),
        new lib.ExtendedKeyUsageExtension([lib.ExtendedKeyUsage.serverAuth]),
        new lib.SubjectAlternativeNameExtension([{ type: "dns", value: name }]),
        await lib.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
      ],
    });
    return createSecureContext({ key: leafKeyPem, cert: cert.toString("pem"), minVersion: "TLSv1.2" });
  }

  private loadSigner(): NonNullable<LeafMinter["signer"]> {
    this.signer ??= (async () => {
      const lib = await library();
      const caCert = new lib.X509Certificate(this.ca.certPem);
      const der = Buffer.from(this.ca.keyPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
      const caKey = await webcrypto.subtle.importKey("pkcs8", der, ALG, false, ["sign"]);
      const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as KeyPair;
      const leafKeyPem = pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", leafKeys.privateKey));
      return { lib, caKey, caCert, leafKeys, leafKeyPem };
    })();
    return this.signer;
  }
}
