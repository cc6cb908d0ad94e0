import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadRuntimeConfig } from "../../runtime/runtime-config-loader.js";
import { manifestFiles, manifestsYaml, renderManifests, type PolicyForRender } from "../../k8s/render-manifests.js";
import { formatIssues, loadPolicyFile, type PolicyIssue } from "../../policy/index.js";
import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";

const DEFAULT_SERVICE_IP_RANGE = "10.96.0.128/25";

export const k8sRenderCommand = defineCommand({
  name: "render",
  summary: "Write Kubernetes manifests for policies: hardened server, sidecar, NetworkPolicies, gateway",
  usage: "hangar k8s render <policy...> [--config hangar.yaml] [--namespace ns] [--out dir] [--json]",
  description:
    "Per server: its Deployment (hardened; runtimeClassName gvisor when its isolation is gvisor), its\n" +
    "sidecar (Deployment, Service with a fixed ClusterIP, ConfigMap with the compiled sidecar config),\n" +
    "and NetworkPolicies: the server reaches only its sidecar, and only the gateway reaches it. Then the\n" +
    "gateway: Deployment, Service, PVC for the audit log. Secrets are referenced, never rendered.\n" +
    "Without --out the manifests print as one YAML stream.",
  options: {
    config: { type: "string", valueName: "<hangar.yaml>", description: "Runtime settings (isolation, sidecar image and limits, trusted ranges); its text becomes the gateway's ConfigMap." },
    namespace: { type: "string", valueName: "<ns>", description: "Namespace of every object (default hangar)." },
    out: { type: "string", valueName: "<dir>", description: "Write one file per object and a kustomization.yaml into <dir>." },
    "service-ip-range": { type: "string", valueName: "<cidr>", description: `Where the sidecar Services' fixed ClusterIPs come from (default ${DEFAULT_SERVICE_IP_RANGE}; inside your service CIDR).` },
    "image-prefix": { type: "string", valueName: "<registry/>", description: "Prefix for the images Hangar builds (sidecar, npm and build servers), e.g. registry.example/team/." },
    "gateway-image": { type: "string", valueName: "<image>", description: "The gateway's image (default hangar/hangar:local)." },
    json: { type: "boolean", description: "Print {ok, servers, objects} as JSON instead of YAML." },
  },
  positionals: { min: 1 },
  details: "Exit status: 0 when rendered, 1 when a policy or hangar.yaml has an error, 2 on a usage error.",
  async run({ values, positionals }, io) {
    const loaded = await Promise.all(positionals.map(async (file) => ({ file, result: await loadPolicyFile(file) })));
    const issues: PolicyIssue[] = loaded.flatMap(({ result }) => (result.ok ? [] : [...result.issues]));
    if (issues.length > 0) {
      io.err(formatIssues(issues));
      return EXIT_FINDING;
    }
    const policies: PolicyForRender[] = await Promise.all(
      loaded.map(async ({ file, result }) => {
        if (!result.ok) throw new Error("unreachable");
        return { file, text: await readFile(file, "utf8"), policy: result.policy, compiled: result.compiled };
      }),
    );
    const config = await loadRuntimeConfig(values.config);
    const prefix = values["image-prefix"] ?? "";
    const rendered = renderManifests(policies, {
      namespace: values.namespace ?? "hangar",
      runtime: config.runtime,
      serviceIpRange: values["service-ip-range"] ?? DEFAULT_SERVICE_IP_RANGE,
      imagePrefix: prefix,
      gatewayImage: values["gateway-image"] ?? `${prefix}hangar/hangar:local`,
      configText: values.config !== undefined ? await readFile(values.config, "utf8") : "# The gateway's hangar.yaml: see docs/kubernetes.md.\nversion: 1\n",
    });
    if (values.out !== undefined) {
      await mkdir(values.out, { recursive: true });
      const files = manifestFiles(rendered.objects);
      for (const [name, text] of files) await writeFile(join(values.out, name), text);
      io.err(`wrote ${files.size} files to ${values.out} (${rendered.servers.length} server${rendered.servers.length === 1 ? "" : "s"}, ${rendered.objects.length} objects)\n`);
    }
    if (values.json === true) {
      io.out(`${JSON.stringify({ ok: true, servers: rendered.servers, objects: rendered.objects }, null, 2)}\n`);
    } else if (values.out === undefined) {
      io.out(manifestsYaml(rendered.objects));
    }
    return EXIT_OK;
  },
});
