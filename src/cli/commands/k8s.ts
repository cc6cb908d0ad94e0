import { defineGroup } from "../define-command.js";
import { k8sRenderCommand } from "./k8s-render.js";

export const k8sCommand = defineGroup({
  name: "k8s",
  summary: "Render Kubernetes manifests for servers, their sidecars and the gateway",
  usage: "hangar k8s <command> [options]",
  description: "Plain manifests (kubectl apply -f, kustomize): no Helm, no operator. See docs/kubernetes.md.",
  commands: [k8sRenderCommand],
});
