import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IPersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import type { IService } from "kubernetes-models/v1/Service";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";

/**
 * The Kubernetes objects Hangar renders, typed by the pinned kubernetes-models (the official
 * OpenAPI definitions of one Kubernetes release): a misspelt field fails to compile. Types only;
 * nothing of the package is loaded at run time.
 */
export type K8sObject = IDeployment | IService | IConfigMap | INetworkPolicy | IPersistentVolumeClaim;
export type { IConfigMap, IDeployment, INetworkPolicy, IPersistentVolumeClaim, IService };

/** Labels every rendered object carries; selectors use the role and server ones. */
export const LABEL_PART_OF = "app.kubernetes.io/part-of";
export const LABEL_K8S_ROLE = "hangar.dev/role";
export const LABEL_K8S_SERVER = "hangar.dev/server";

export type K8sRole = "server" | "sidecar" | "gateway";
