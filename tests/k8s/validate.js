#!/usr/bin/env node
// validate.js - validates a stream of Kubernetes objects (YAML, e.g. the
// output of `kubectl kustomize`) offline against the kubernetes-models
// schemas, and rejects unknown fields, which those schemas alone accept.
//
//   kubectl kustomize deploy/k8s | node tests/k8s/validate.js [-]   (stdin)
//   node tests/k8s/validate.js FILE...
//
// Unknown fields: the schemas' validators are generated code that reads
// each property it knows (data.spec, data.replicas, ...) and enumerates the
// keys of map-typed objects (labels, ConfigMap data). The object is
// validated a second time through proxies that record those reads; a key
// of an object the validator looked into that it neither read nor
// enumerated is a field the schema does not have (a typo such as
// "replica", or a field of another API version). Objects the schema does
// not describe (free-form) are not looked into and not judged.
//
// Exit 0 when every object is valid, 1 otherwise (one line per problem).
"use strict";
const fs = require("fs");
const YAML = require("yaml");

function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  // "v1" is the core group; "apps/v1" -> kubernetes-models/apps/v1.
  if (!/^[a-z0-9.]+(\/[a-z0-9]+)?$/.test(apiVersion)) return null;
  let mod;
  try {
    mod = require(`kubernetes-models/${apiVersion}`);
  } catch (e) {
    return null;
  }
  return Object.prototype.hasOwnProperty.call(mod, kind) ? mod[kind] : null;
}

// Wraps obj so that every property read and key enumeration is recorded
// per underlying object in `seen` (Map target -> {read:Set, enumerated}).
function tracked(obj, seen) {
  const proxies = new Map();
  const wrap = (target) => {
    if (target === null || typeof target !== "object") return target;
    if (proxies.has(target)) return proxies.get(target);
    const rec = { read: new Set(), enumerated: false };
    seen.set(target, rec);
    const p = new Proxy(target, {
      get(t, key, recv) {
        if (typeof key === "string") rec.read.add(key);
        return wrap(Reflect.get(t, key, recv));
      },
      has(t, key) {
        if (typeof key === "string") rec.read.add(key);
        return Reflect.has(t, key);
      },
      getOwnPropertyDescriptor(t, key) {
        if (typeof key === "string") rec.read.add(key);
        return Reflect.getOwnPropertyDescriptor(t, key);
      },
      ownKeys(t) {
        rec.enumerated = true;
        return Reflect.ownKeys(t);
      },
    });
    proxies.set(target, p);
    return p;
  };
  return wrap(obj);
}

function unknownFields(obj, seen, path, out) {
  if (obj === null || typeof obj !== "object") return;
  if (Array.isArray(obj)) {
    obj.forEach((v, i) => unknownFields(v, seen, `${path}[${i}]`, out));
    return;
  }
  const rec = seen.get(obj);
  if (!rec || rec.read.size === 0) return; // not described by the schema
  for (const key of Object.keys(obj)) {
    if (!rec.enumerated && !rec.read.has(key)) out.push(`${path}.${key}`);
    else unknownFields(obj[key], seen, `${path}.${key}`, out);
  }
}

// Returns a list of problems with one object (empty when valid).
function check(obj) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj))
    return ["not an object"];
  const Cls = modelClass(obj.apiVersion, obj.kind);
  if (!Cls) return [`unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`];
  try {
    new Cls(obj).validate();
  } catch (e) {
    return [e.message];
  }
  const seen = new Map();
  try {
    Cls.prototype.validate.call(tracked(obj, seen));
  } catch (e) {
    return [e.message];
  }
  const unknown = [];
  unknownFields(obj, seen, "", unknown);
  return unknown.map((p) => `unknown field ${p.slice(1)}`);
}

function main(argv) {
  const inputs = argv.length === 0 ? ["-"] : argv;
  let objects = 0;
  let bad = 0;
  for (const input of inputs) {
    const text = fs.readFileSync(input === "-" ? 0 : input, "utf8");
    const docs = YAML.parseAllDocuments(text);
    for (const doc of docs) {
      if (doc.errors.length) {
        console.log(`${input}: YAML: ${doc.errors[0].message}`);
        bad++;
        continue;
      }
      const obj = doc.toJS();
      if (obj === null) continue; // empty document
      objects++;
      const name = `${obj.kind || "?"}/${(obj.metadata && obj.metadata.name) || "?"}`;
      for (const p of check(obj)) {
        console.log(`${input}: ${name}: ${p}`);
        bad++;
      }
    }
  }
  console.log(`k8s-validate: ${objects} object(s), ${bad} problem(s)`);
  return bad === 0 && objects > 0 ? 0 : 1;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
module.exports = { check };
