import { fileURLToPath } from "node:url";

/**
 * The Hangar package root (where images/ and package.json live). This file sits in
 * src/images or dist/images, two levels below it either way.
 */
export function hangarPackageRoot(): string {
  return fileURLToPath(new URL("../../", import.meta.url));
}
