// The sandbox's JavaScript side: the `tools` bridge, console, sleep and state, built on the
// host functions __call, __search, __describe, __log, __sleep and __state_*. It runs once per
// run, in a fresh context, before the program.
(function (global, paths) {
  "use strict";
  const call = global.__call, search = global.__search, describe = global.__describe,
    log = global.__log, sleepHost = global.__sleep,
    stateGet = global.__state_get, stateSet = global.__state_set,
    stateKeys = global.__state_keys, stateDelete = global.__state_delete;
  for (const name of ["__call", "__search", "__describe", "__log", "__sleep",
    "__state_get", "__state_set", "__state_keys", "__state_delete", "__paths"]) {
    delete global[name];
  }

  function nearest(name, names) {
    const d = (a, b) => {
      const row = Array.from({ length: b.length + 1 }, (_, i) => i);
      for (let i = 1; i <= a.length; i++) {
        let prev = row[0]; row[0] = i;
        for (let j = 1; j <= b.length; j++) {
          const cur = row[j];
          row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
          prev = cur;
        }
      }
      return row[b.length];
    };
    return names.slice().sort((a, b) => d(name, a) - d(name, b)).slice(0, 3);
  }

  // A Promise that explains itself when used as data: `(tools.x()).filter` says "add await".
  function explained(promise, path) {
    return new Proxy(promise, {
      get(target, prop) {
        if (typeof prop === "symbol" || prop in Promise.prototype) {
          const v = Reflect.get(target, prop, target);
          return typeof v === "function" ? v.bind(target) : v;
        }
        throw new TypeError(`tools.${path}(...) returns a Promise, not data: add await ` +
          `(const x = await tools.${path}(...)) before using .${String(prop)}`);
      },
    });
  }

  function namespace(prefix, members) {
    const names = Object.keys(members);
    return new Proxy(Object.freeze(members), {
      get(target, prop) {
        if (typeof prop === "symbol" || prop in target) return target[prop];
        if (prop === "then" || prop === "toJSON") return undefined;
        throw new TypeError(`${prefix} has no member "${String(prop)}"; did you mean ` +
          nearest(String(prop), names).map((n) => `${prefix}.${n}`).join(", ") + "?");
      },
      set() { throw new TypeError(`${prefix} is read-only`); },
      defineProperty() { throw new TypeError(`${prefix} is read-only`); },
    });
  }

  const tree = {};
  for (const path of paths) {
    const [ns, fn] = path.split(".");
    (tree[ns] = tree[ns] || {})[fn] = function (args) {
      if (args !== undefined && (args === null || typeof args !== "object" || Array.isArray(args))) {
        return explained(Promise.reject(new TypeError(`tools.${path} takes one object of arguments, e.g. tools.${path}({ ... })`)), path);
      }
      // The call site's stack, so that a failed call points at the program's line.
      const site = new Error();
      const settled = call(path, JSON.stringify(args === undefined ? {} : args)).then(undefined, (e) => {
        try { e.stack = site.stack; } catch (_) { /* a frozen error keeps its own stack */ }
        throw e;
      });
      return explained(settled, path);
    };
  }
  const members = {};
  for (const ns of Object.keys(tree)) members[ns] = namespace(`tools.${ns}`, tree[ns]);
  members.search = async (query, opts) => JSON.parse(search(String(query), JSON.stringify(opts || {})));
  members.describe = async (path) => {
    const text = describe(String(path));
    if (text != null) return text;
    // Not a function: a kind (or kind.field.path), typed from the cluster's own schema.
    if (!paths.includes("kubernetes.explain") || /^(kubernetes|helm|diagnose)\./.test(String(path))) {
      throw new TypeError(`no function ${path}; did you mean ${nearest(String(path), paths).join(", ")}?`);
    }
    return tree.kubernetes.explain({ kind: String(path) });
  };
  members.list = async (prefix) => {
    const all = [];
    for (const ns of Object.keys(tree)) {
      all.push(`${ns}/`);
      for (const fn of Object.keys(tree[ns])) all.push(`${ns}/${fn}`);
    }
    const p = (prefix || "").replace(/\./g, "/");
    return all.filter((x) => x.startsWith(p));
  };
  const tools = namespace("tools", members);

  function format(v) {
    if (typeof v === "string") return v;
    if (v instanceof Error) return `${v.name}: ${v.message}`;
    try { const s = JSON.stringify(v); return s === undefined ? String(v) : s; } catch (e) { return String(v); }
  }
  const consoleObject = {};
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    consoleObject[level] = (...args) => log(level, args.map(format).join(" "));
  }

  const stateObject = {
    get(key) { const v = stateGet(String(key)); return v == null ? undefined : JSON.parse(v); },
    set(key, value) {
      const text = JSON.stringify(value);
      if (text === undefined) throw new TypeError("state.set takes a JSON value");
      const refused = stateSet(String(key), text);
      if (refused) throw new RangeError(refused);
    },
    keys() { return JSON.parse(stateKeys()); },
    delete(key) { return stateDelete(String(key)); },
  };

  // Awaits promises anywhere inside the returned value. An object that appears twice is
  // written twice (as JSON.stringify does); only a cycle (an object inside itself, found by
  // walking up the chain of its containers) becomes null.
  async function deep(value, up) {
    value = await value;
    if (value === null || typeof value !== "object") return value;
    for (let c = up; c; c = c.up) if (c.value === value) return null;
    const here = { value, up };
    if (Array.isArray(value)) return Promise.all(value.map((v) => deep(v, here)));
    const out = {};
    for (const key of Object.keys(value)) out[key] = await deep(value[key], here);
    return out;
  }

  guardLongArrayMethods();

  // QuickJS checks for interrupts in its bytecode loop, not inside these built-ins: on a huge
  // sparse array (or array-like) they would loop billions of times past the wall-clock limit
  // (`new Array(2 ** 32 - 1).reverse()` runs for a minute). No array that long fits in the
  // memory limit, so refusing it costs a real program nothing. The server's watchdog is the
  // backstop for anything this misses.
  function guardLongArrayMethods() {
    const MAX_LENGTH = 1 << 24;
    const apply = Reflect.apply, isArray = Array.isArray, describe = Object.getOwnPropertyDescriptor,
      protoOf = Object.getPrototypeOf, defineProperty = Object.defineProperty, toNumber = Number;
    const lengthOf = (value) => {
      if (value === null || (typeof value !== "object" && typeof value !== "function")) return 0;
      if (!isArray(value)) {
        // A getter could answer the check with a small length and the built-in with a huge one.
        for (let o = value; o !== null; o = protoOf(o)) {
          const d = describe(o, "length");
          if (d) {
            if (d.get || d.set) throw new TypeError("array methods on objects with a `length` getter are not allowed in the sandbox");
            break;
          }
        }
      }
      return toNumber(value.length);
    };
    const names = ["join", "toString", "toLocaleString", "reverse", "copyWithin", "fill", "splice", "slice",
      "concat", "flat", "toReversed", "toSpliced", "with", "sort", "toSorted", "lastIndexOf", "indexOf", "includes"];
    for (const name of names) {
      const native = Array.prototype[name];
      if (typeof native !== "function") continue;
      const guarded = {
        [name](...args) {
          const lengths = name === "concat" ? [this, ...args].map(lengthOf) : [lengthOf(this)];
          for (const length of lengths) {
            if (length > MAX_LENGTH) {
              throw new RangeError(`Array.prototype.${name} on ${length} elements is refused: the sandbox allows arrays of at most ${MAX_LENGTH} elements`);
            }
          }
          return apply(native, this, args);
        },
      }[name];
      defineProperty(guarded, "length", { value: native.length });
      defineProperty(Array.prototype, name, { value: guarded, writable: true, configurable: true, enumerable: false });
    }
  }

  const define = (name, value) => Object.defineProperty(global, name, { value, writable: false, configurable: false, enumerable: false });
  define("tools", tools);
  define("console", Object.freeze(consoleObject));
  define("sleep", (ms) => sleepHost(Number(ms) || 0));
  define("state", Object.freeze(stateObject));
  define("__finish", async (body) => {
    const result = await deep(body, null);
    return JSON.stringify(result === undefined ? null : result);
  });
})(globalThis, globalThis.__paths);

