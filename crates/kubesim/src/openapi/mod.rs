//! OpenAPI documents for what kubesim serves, built from one source of schema data: the JSON
//! schemas k8s-openapi carries for the built-in kinds (upstream names and descriptions) and
//! each served CustomResourceDefinition version's `openAPIV3Schema`.
//!
//! Like a real API server, there is one OpenAPI 3.0 document per group-version (listed by
//! the `/openapi/v3` discovery document with a content hash) and one swagger 2.0 document for
//! everything (`/openapi/v2`). Top-level kinds carry `x-kubernetes-group-version-kind`, and
//! `paths` describes the operations kubesim answers for each resource, which is what
//! `kubectl explain` (to find a resource's kind) and kubectl's field-validation check read.

mod kinds;
pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::resources::{Registry, ResourceType};
use crate::server::KUBERNETES_VERSION;

/// One serialized document and the hash clients see for it.
#[derive(Debug)]
pub struct Doc {
    /// The document as JSON.
    pub json: Bytes,
    /// Upper-case hex digest, as the `hash` query parameter and the ETag carry it.
    pub hash: String,
}

fn digest(bytes: &[u8]) -> String {
    // A SHA-1 name-based UUID is a digest that needs no further dependency.
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, bytes)
        .simple()
        .to_string()
        .to_uppercase()
}

impl Doc {
    fn new(v: &Value) -> Doc {
        let json = Bytes::from(serde_json::to_vec(v).unwrap_or_default());
        let hash = digest(&json);
        Doc { json, hash }
    }
}

/// The schemas of one kind, for validating objects against.
#[derive(Debug, Clone)]
pub struct KindSchema {
    /// Every definition of the kind's group-version (OpenAPI 3 form).
    pub definitions: Arc<Map<String, Value>>,
    /// The kind's own definition name.
    pub name: String,
}

/// One group-version's document, built.
#[derive(Debug)]
pub struct GroupVersionDoc {
    /// The OpenAPI 3.0 document.
    pub doc: Doc,
    definitions: Arc<Map<String, Value>>,
    /// Each served type with its definition name.
    types: Vec<(ResourceType, String)>,
}

/// What one group-version document is made of: the served types and, for custom kinds,
/// their CRD schema. Its hash is a digest of these inputs (and of the generator's format),
/// so that the discovery document can name every document without building any.
#[derive(Debug)]
struct GroupVersionInput {
    types: Vec<(ResourceType, Option<Value>)>,
    key: String,
    hash: String,
}

/// Bumped whenever the generator's output changes for the same inputs, so that a client's
/// cache keyed by hash does not keep a document an older kubesim wrote.
const FORMAT: &str = "kubesim-openapi-1";

/// Group-version documents built in this process, by input key: every server with the same
/// types and CRDs (every test server of the demo cluster) shares them.
static BUILT: std::sync::Mutex<Option<HashMap<String, Arc<GroupVersionDoc>>>> =
    std::sync::Mutex::new(None);

/// How many distinct group-version documents the process keeps.
const BUILT_LIMIT: usize = 256;

/// The OpenAPI documents of one server: the discovery document at once, each
/// group-version document (and the v2 document) when first asked for.
#[derive(Debug)]
pub struct Catalog {
    inputs: BTreeMap<String, GroupVersionInput>,
    root: Doc,
    v2: std::sync::OnceLock<Doc>,
}

/// Where a served type's schema comes from.
enum Source<'a> {
    Known(&'static kinds::KnownKind),
    Crd(&'a Value),
}

/// The dialect a document is written in.
#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn definitions(self) -> &'static str {
        match self {
            Flavor::V2 => "#/definitions/",
            Flavor::V3 => "#/components/schemas/",
        }
    }
}

/// Whether a type is a built-in kind (one k8s-openapi has a schema for), as opposed to a
/// custom kind.
pub fn is_builtin(t: &ResourceType) -> bool {
    kinds::find(&t.group, &t.version, &t.kind).is_some()
}

/// The path prefix of a group-version: `api/v1` or `apis/GROUP/VERSION`.
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The `openAPIV3Schema` a CRD declares for one version of its kind.
fn crd_schema<'a>(crds: &'a [Value], t: &ResourceType) -> Option<&'a Value> {
    crds.iter().find_map(|crd| {
        let spec = crd.get("spec")?;
        if spec.get("group")?.as_str()? != t.group
            || spec.pointer("/names/kind")?.as_str()? != t.kind
        {
            return None;
        }
        let per_version = spec.get("versions")?.as_array()?.iter().find_map(|v| {
            (v.get("name")?.as_str()? == t.version)
                .then(|| v.pointer("/schema/openAPIV3Schema"))
                .flatten()
        });
        // apiextensions.k8s.io/v1beta1 CRDs had one schema for all versions.
        per_version.or_else(|| spec.pointer("/validation/openAPIV3Schema"))
    })
}

/// The definition name the API server gives a custom kind: the group reversed, the version
/// and the kind (`com.example.v1.Widget`).
fn crd_definition_name(t: &ResourceType) -> String {
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), t.version, t.kind)
}

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// A CRD's schema as the API server publishes it: `metadata` is ObjectMeta, `apiVersion` and
/// `kind` are described.
fn published_crd_schema(schema: &Value, meta_ref: Value) -> Value {
    let mut s = schema.clone();
    if !s.is_object() {
        s = json!({});
    }
    if s.get("type").is_none() {
        s["type"] = json!("object");
    }
    if !s.get("properties").is_some_and(Value::is_object) {
        s["properties"] = json!({});
    }
    let props = &mut s["properties"];
    if props.get("apiVersion").is_none() {
        props["apiVersion"] = json!({"type": "string", "description": API_VERSION_DESCRIPTION});
    }
    if props.get("kind").is_none() {
        props["kind"] = json!({"type": "string", "description": KIND_DESCRIPTION});
    }
    let mut meta = meta_ref;
    meta["description"] = json!(METADATA_DESCRIPTION);
    props["metadata"] = meta;
    s
}

/// The definitions (OpenAPI 3 form) of one group-version and the definition name of each
/// served type.
fn definitions(sources: &[(&ResourceType, Source<'_>)]) -> (Map<String, Value>, Vec<String>) {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut names = Vec::new();
    for (t, source) in sources {
        match source {
            Source::Known(k) => {
                (k.add)(&mut generator);
                names.push((k.name)().into_owned());
            }
            Source::Crd(schema) => {
                let meta_ref = generator.subschema_for::<ObjectMeta>().to_value();
                let name = crd_definition_name(t);
                let published = published_crd_schema(schema, meta_ref);
                generator.definitions_mut().insert(name.clone(), published);
                names.push(name);
            }
        }
    }
    let mut defs = generator.take_definitions(true);
    let custom: Vec<&String> = sources
        .iter()
        .zip(&names)
        .filter(|((_, source), _)| matches!(source, Source::Crd(_)))
        .map(|(_, name)| name)
        .collect();
    annotate_merge_keys(&mut defs, &custom);
    for ((t, _), name) in sources.iter().zip(&names) {
        if let Some(Value::Object(d)) = defs.get_mut(name) {
            d.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": t.group, "kind": t.kind, "version": t.version}]),
            );
        }
    }
    (defs, names)
}

/// The item schema of an array schema, through its `$ref`.
fn item_schema<'a>(defs: &'a Map<String, Value>, array: &'a Value) -> Option<&'a Value> {
    let items = array.get("items")?;
    let name = items
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit_once('/'))
        .map(|(_, n)| n);
    Some(name.and_then(|n| defs.get(n)).unwrap_or(items))
}

/// Marks the lists kubesim's strategic merge patch merges by key (`containers` by `name`)
/// with `x-kubernetes-patch-strategy: merge` and `x-kubernetes-patch-merge-key`, as the API
/// server's documents carry them (k8s-openapi's schemas do not): kubectl computes its
/// strategic merge patches from them, so they must say how this server merges. Custom
/// kinds (`custom`) take no strategic merge patch and are left alone.
fn annotate_merge_keys(defs: &mut Map<String, Value>, custom: &[&String]) {
    let mut marks: Vec<(String, String, &'static str)> = Vec::new();
    for (def_name, def) in defs.iter() {
        if custom.contains(&def_name) {
            continue;
        }
        let Some(props) = def.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (field, schema) in props {
            if schema.get("type").and_then(Value::as_str) != Some("array") {
                continue;
            }
            // merge_key decides from an item's fields; the item schema's fields stand in.
            let sample: Map<String, Value> = item_schema(defs, schema)
                .and_then(|i| i.get("properties"))
                .and_then(Value::as_object)
                .map(|p| p.keys().map(|k| (k.clone(), Value::Null)).collect())
                .unwrap_or_default();
            if sample.is_empty() {
                continue;
            }
            if let Some(key) = crate::patch::merge_key(field, &Value::Object(sample)) {
                marks.push((def_name.clone(), field.clone(), key));
            }
        }
    }
    for (def_name, field, key) in marks {
        if let Some(schema) = defs
            .get_mut(&def_name)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(&field))
            .and_then(Value::as_object_mut)
        {
            schema.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
            schema.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
    }
}

/// `rbac.authorization.k8s.io` → `RbacAuthorization`, `` → `Core`, as operation ids spell groups.
fn camel_group(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect()
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A parameter of an operation.
fn parameter(flavor: Flavor, name: &str, location: &str, kind: &str, description: &str) -> Value {
    let mut p = json!({"name": name, "in": location, "description": description});
    if location == "path" {
        p["required"] = json!(true);
    } else {
        p["uniqueItems"] = json!(true);
    }
    match flavor {
        Flavor::V2 => p["type"] = json!(kind),
        Flavor::V3 => p["schema"] = json!({"type": kind}),
    }
    p
}

/// The query parameters kubesim honours, by the operation they belong to.
fn query_parameters(flavor: Flavor, action: &str) -> Vec<Value> {
    let q = |name: &str, kind: &str, description: &str| {
        parameter(flavor, name, "query", kind, description)
    };
    let dry_run = || {
        q(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted. The only valid value is All.",
        )
    };
    let field_manager = || {
        q(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        )
    };
    let field_validation = || {
        q(
            "fieldValidation",
            "string",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown fields: Ignore, Warn (the default) or Strict.",
        )
    };
    let selectors = || {
        vec![
            q(
                "labelSelector",
                "string",
                "A selector to restrict the list of returned objects by their labels.",
            ),
            q(
                "fieldSelector",
                "string",
                "A selector to restrict the list of returned objects by their fields.",
            ),
        ]
    };
    match action {
        "list" => {
            let mut v = selectors();
            v.push(q(
                "limit",
                "integer",
                "The maximum number of objects to return; the rest is paged with continue.",
            ));
            v.push(q(
                "continue",
                "string",
                "The continue token of a previous page of a paged list.",
            ));
            v.push(q(
                "watch",
                "boolean",
                "Watch for changes to the described resources instead of listing them.",
            ));
            v.push(q(
                "resourceVersion",
                "string",
                "For a watch, the resourceVersion to start from.",
            ));
            v
        }
        "post" | "put" => vec![dry_run(), field_manager(), field_validation()],
        "patch" => vec![
            dry_run(),
            field_manager(),
            field_validation(),
            q(
                "force",
                "boolean",
                "Force is going to \"force\" Apply requests: it re-acquires conflicting fields owned by other managers. It must be unset for non-apply patch requests.",
            ),
        ],
        "delete" => vec![dry_run()],
        "deletecollection" => {
            let mut v = selectors();
            v.push(dry_run());
            v
        }
        _ => Vec::new(),
    }
}

const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// One operation on a resource path.
struct Operation<'a> {
    action: &'a str,
    id: String,
    description: String,
    /// Status code and whether the answer is the kind itself.
    status: &'a str,
    returns_kind: bool,
    body: Option<&'a str>,
}

/// `strategic`: whether the kind takes strategic merge patches (built-in kinds do, custom
/// kinds do not, as on the API server).
fn operation(
    flavor: Flavor,
    op: &Operation<'_>,
    kind_ref: &str,
    gvk: &Value,
    tag: &str,
    strategic: bool,
) -> Value {
    let patch_types: Vec<&str> = PATCH_TYPES
        .iter()
        .copied()
        .filter(|t| strategic || *t != "application/strategic-merge-patch+json")
        .collect();
    let mut params = query_parameters(flavor, op.action);
    let mut o = json!({
        "operationId": op.id, "description": op.description, "tags": [tag],
        "x-kubernetes-action": op.action, "x-kubernetes-group-version-kind": gvk,
    });
    let schema = json!({"$ref": kind_ref});
    match flavor {
        Flavor::V3 => {
            let mut response = json!({"description": "OK"});
            if op.returns_kind {
                response["content"] = json!({"application/json": {"schema": schema}});
            }
            o["responses"] = json!({op.status: response});
            match op.body {
                Some("object") => {
                    o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema}, "application/yaml": {"schema": schema}}});
                }
                Some("patch") => {
                    let content: Map<String, Value> = patch_types
                        .iter()
                        .map(|t| (t.to_string(), json!({"schema": {"type": "object"}})))
                        .collect();
                    o["requestBody"] = json!({"required": true, "content": content});
                }
                _ => {}
            }
        }
        Flavor::V2 => {
            let mut response = json!({"description": "OK"});
            if op.returns_kind {
                response["schema"] = schema.clone();
            }
            o["responses"] = json!({op.status: response});
            o["produces"] = json!(["application/json"]);
            match op.body {
                Some("object") => {
                    o["consumes"] = json!(["application/json", "application/yaml"]);
                    params.insert(
                        0,
                        json!({"name": "body", "in": "body", "required": true, "schema": schema}),
                    );
                }
                Some("patch") => {
                    o["consumes"] = json!(patch_types);
                    params.insert(
                        0,
                        json!({"name": "body", "in": "body", "required": true, "schema": {"type": "object"}}),
                    );
                }
                _ => {}
            }
        }
    }
    o["parameters"] = json!(params);
    o
}

/// Adds the paths of one resource: its collection (list, create, deletecollection), its
/// objects (get, update, patch, delete) and, for a namespaced resource, the list across
/// namespaces. Only the verbs the type serves appear.
fn resource_paths(flavor: Flavor, t: &ResourceType, def: &str, paths: &mut Map<String, Value>) {
    let prefix = format!("/{}", group_version_path(&t.group, &t.version));
    let strategic = is_builtin(t);
    let gvk = json!({"group": t.group, "kind": t.kind, "version": t.version});
    let kind_ref = format!("{}{def}", flavor.definitions());
    let tag = format!(
        "{}_{}",
        t.group
            .strip_suffix(".k8s.io")
            .unwrap_or(if t.group.is_empty() { "core" } else { &t.group }),
        t.version
    );
    let scope = if t.namespaced { "Namespaced" } else { "" };
    let stem = format!("{}{}", camel_group(&t.group), capitalized(&t.version));
    let id = |verb: &str, suffix: &str| format!("{verb}{stem}{scope}{}{suffix}", t.kind);
    let namespace_param = parameter(
        flavor,
        "namespace",
        "path",
        "string",
        "object name and auth scope, such as for teams and projects",
    );
    let name_param = parameter(
        flavor,
        "name",
        "path",
        "string",
        &format!("name of the {}", t.kind),
    );
    let collection = if t.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", t.plural)
    } else {
        format!("{prefix}/{}", t.plural)
    };
    let kind_word = t.kind.as_str();
    let mut add = |path: String, params: Vec<Value>, ops: Vec<(&str, Operation<'_>)>| {
        let mut item = Map::new();
        for (method, op) in ops {
            item.insert(
                method.into(),
                operation(flavor, &op, &kind_ref, &gvk, &tag, strategic),
            );
        }
        if item.is_empty() {
            return;
        }
        if !params.is_empty() {
            item.insert("parameters".into(), json!(params));
        }
        paths.insert(path, Value::Object(item));
    };
    let op = |action: &'static str,
              id: String,
              description: String,
              status: &'static str,
              returns_kind: bool,
              body: Option<&'static str>| Operation {
        action,
        id,
        description,
        status,
        returns_kind,
        body,
    };
    let mut ops = Vec::new();
    if t.allows("list") {
        ops.push((
            "get",
            op(
                "list",
                id("list", ""),
                format!("list or watch objects of kind {kind_word}"),
                "200",
                false,
                None,
            ),
        ));
    }
    if t.allows("create") {
        ops.push((
            "post",
            op(
                "post",
                id("create", ""),
                format!("create a {kind_word}"),
                "201",
                true,
                Some("object"),
            ),
        ));
    }
    if t.allows("deletecollection") {
        ops.push((
            "delete",
            op(
                "deletecollection",
                id("deleteCollection", ""),
                format!("delete collection of {kind_word}"),
                "200",
                false,
                None,
            ),
        ));
    }
    let scope_params = if t.namespaced {
        vec![namespace_param.clone()]
    } else {
        Vec::new()
    };
    add(collection.clone(), scope_params.clone(), ops);

    let mut ops = Vec::new();
    if t.allows("get") {
        ops.push((
            "get",
            op(
                "get",
                id("read", ""),
                format!("read the specified {kind_word}"),
                "200",
                true,
                None,
            ),
        ));
    }
    if t.allows("update") {
        ops.push((
            "put",
            op(
                "put",
                id("replace", ""),
                format!("replace the specified {kind_word}"),
                "200",
                true,
                Some("object"),
            ),
        ));
    }
    if t.allows("patch") {
        ops.push((
            "patch",
            op(
                "patch",
                id("patch", ""),
                format!("partially update the specified {kind_word}"),
                "200",
                true,
                Some("patch"),
            ),
        ));
    }
    if t.allows("delete") {
        ops.push((
            "delete",
            op(
                "delete",
                id("delete", ""),
                format!("delete a {kind_word}"),
                "200",
                true,
                None,
            ),
        ));
    }
    let mut item_params = scope_params;
    item_params.insert(0, name_param);
    add(format!("{collection}/{{name}}"), item_params, ops);

    if t.namespaced && t.allows("list") {
        let ops = vec![(
            "get",
            Operation {
                action: "list",
                id: format!("list{stem}{}ForAllNamespaces", t.kind),
                description: format!("list or watch objects of kind {kind_word} in all namespaces"),
                status: "200",
                returns_kind: false,
                body: None,
            },
        )];
        add(format!("{prefix}/{}", t.plural), Vec::new(), ops);
    }
}

fn info() -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    json!({"title": "Kubernetes", "version": format!("v{major}.{minor}.0-kubesim")})
}

impl Catalog {
    /// The documents for the types `registry` serves; `crds` are the stored
    /// CustomResourceDefinition objects, whose schemas type the custom kinds. Types with no
    /// schema (kinds a snapshot carried without a CRD, the metrics API) are left out rather
    /// than described wrongly. Cheap: documents are built when first asked for.
    pub fn new(registry: &Registry, crds: &[Value]) -> Catalog {
        let mut inputs: BTreeMap<String, Vec<(ResourceType, Option<Value>)>> = BTreeMap::new();
        for t in registry.types() {
            let source = if kinds::find(&t.group, &t.version, &t.kind).is_some() {
                None
            } else {
                match crd_schema(crds, t) {
                    Some(s) => Some(s.clone()),
                    None => continue,
                }
            };
            inputs
                .entry(group_version_path(&t.group, &t.version))
                .or_default()
                .push((t.clone(), source));
        }
        let mut root_paths = Map::new();
        let inputs: BTreeMap<String, GroupVersionInput> = inputs
            .into_iter()
            .map(|(path, types)| {
                let described: Vec<Value> = types
                    .iter()
                    .map(|(t, schema)| {
                        json!([
                            t.group,
                            t.version,
                            t.kind,
                            t.plural,
                            t.namespaced,
                            t.verbs,
                            schema
                        ])
                    })
                    .collect();
                let key = json!([FORMAT, path, described]).to_string();
                let hash = digest(key.as_bytes());
                root_paths.insert(
                    path.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
                );
                (path, GroupVersionInput { types, key, hash })
            })
            .collect();
        Catalog {
            inputs,
            root: Doc::new(&json!({"paths": root_paths})),
            v2: std::sync::OnceLock::new(),
        }
    }

    /// The `/openapi/v3` discovery document.
    pub fn root(&self) -> &Doc {
        &self.root
    }

    /// The current hash of a group-version document (`api/v1`, `apis/apps/v1`).
    pub fn hash(&self, path: &str) -> Option<&str> {
        self.inputs.get(path).map(|i| i.hash.as_str())
    }

    /// A group-version document (`api/v1`, `apis/apps/v1`), built on first use.
    pub fn group_version(&self, path: &str) -> Option<Arc<GroupVersionDoc>> {
        let input = self.inputs.get(path)?;
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        let cache = built.get_or_insert_with(HashMap::new);
        if let Some(doc) = cache.get(&input.key) {
            return Some(doc.clone());
        }
        let doc = Arc::new(build_group_version(input));
        if cache.len() >= BUILT_LIMIT {
            cache.clear();
        }
        cache.insert(input.key.clone(), doc.clone());
        Some(doc)
    }

    /// The schema of a kind, when kubesim publishes one.
    pub fn kind_schema(&self, group: &str, version: &str, kind: &str) -> Option<KindSchema> {
        let doc = self.group_version(&group_version_path(group, version))?;
        let name = doc
            .types
            .iter()
            .find(|(t, _)| t.kind == kind)
            .map(|(_, name)| name.clone())?;
        Some(KindSchema {
            definitions: doc.definitions.clone(),
            name,
        })
    }

    /// The swagger 2.0 document of everything, built on first use.
    pub fn v2(&self) -> &Doc {
        self.v2.get_or_init(|| {
            let mut definitions = Map::new();
            let mut paths = Map::new();
            for path in self.inputs.keys() {
                let Some(gv) = self.group_version(path) else {
                    continue;
                };
                // Definitions shared by group-versions (ObjectMeta) are the same in each.
                for (name, schema) in gv.definitions.iter() {
                    if !definitions.contains_key(name) {
                        let mut schema = schema.clone();
                        v3_to_v2(&mut schema);
                        definitions.insert(name.clone(), schema);
                    }
                }
                for (t, name) in &gv.types {
                    resource_paths(Flavor::V2, t, name, &mut paths);
                }
            }
            Doc::new(&json!({
                "swagger": "2.0", "info": info(), "paths": paths, "definitions": definitions,
            }))
        })
    }
}

/// Rewrites an OpenAPI 3 schema as swagger 2.0 writes it: refs point into `#/definitions/`,
/// a ref with siblings is written with them (an `allOf` of one ref is unwrapped), and what
/// 2.0 lacks (`nullable`, `oneOf`, `anyOf`, `not`) is dropped, as the API server does when it
/// publishes a CRD's schema as v2. Only subschemas are walked: `properties` maps, `items`,
/// `additionalProperties` and `allOf`; values such as `default` and `enum` are data.
fn v3_to_v2(schema: &mut Value) {
    let Value::Object(m) = schema else { return };
    for key in ["nullable", "oneOf", "anyOf", "not"] {
        m.remove(key);
    }
    let single_ref = match m.get("allOf").and_then(Value::as_array) {
        Some(all) if all.len() == 1 => all[0].get("$ref").cloned(),
        _ => None,
    };
    if let Some(r) = single_ref
        && m.get("$ref").is_none()
    {
        m.remove("allOf");
        m.insert("$ref".into(), r);
    }
    if let Some(Value::String(r)) = m.get_mut("$ref")
        && let Some(name) = r.strip_prefix(Flavor::V3.definitions())
    {
        *r = format!("{}{name}", Flavor::V2.definitions());
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(v3_to_v2);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = m.get_mut(key) {
            v3_to_v2(sub);
        }
    }
    if let Some(Value::Array(all)) = m.get_mut("allOf") {
        all.iter_mut().for_each(v3_to_v2);
    }
}

fn build_group_version(input: &GroupVersionInput) -> GroupVersionDoc {
    let sources: Vec<(&ResourceType, Source<'_>)> = input
        .types
        .iter()
        .filter_map(|(t, schema)| match schema {
            Some(s) => Some((t, Source::Crd(s))),
            None => kinds::find(&t.group, &t.version, &t.kind).map(|k| (t, Source::Known(k))),
        })
        .collect();
    let (defs, names) = definitions(&sources);
    let mut paths = Map::new();
    for ((t, _), name) in sources.iter().zip(&names) {
        resource_paths(Flavor::V3, t, name, &mut paths);
    }
    let doc = json!({
        "openapi": "3.0.0", "info": info(), "paths": paths,
        "components": {"schemas": defs},
    });
    let json = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    GroupVersionDoc {
        doc: Doc {
            json,
            hash: input.hash.clone(),
        },
        types: sources
            .iter()
            .zip(names)
            .map(|((t, _), n)| ((*t).clone(), n))
            .collect(),
        definitions: Arc::new(defs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_type_has_a_schema() {
        let registry = Registry::builtin();
        for t in registry.types() {
            assert!(
                kinds::find(&t.group, &t.version, &t.kind).is_some(),
                "no k8s-openapi schema for {}/{} {}",
                t.group,
                t.version,
                t.kind
            );
        }
    }

    #[test]
    fn group_version_documents_carry_kinds_and_paths() {
        let crd = json!({"spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced", "versions": [{"name": "v1", "served": true, "schema": {"openAPIV3Schema":
            {"type": "object", "properties": {"spec": {"type": "object", "nullable": true,
             "properties": {"size": {"type": "integer", "description": "how big"},
                            "not": {"type": "boolean", "default": {"oneOf": 1}}}}}}}}]}});
        let mut registry = Registry::builtin();
        registry.add_crd(&crd).unwrap();
        let catalog = Catalog::new(&registry, &[crd]);
        let root: Value = serde_json::from_slice(&catalog.root().json).unwrap();
        let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let apps_doc = catalog.group_version("apis/apps/v1").unwrap();
        assert_eq!(
            url,
            format!("/openapi/v3/apis/apps/v1?hash={}", apps_doc.doc.hash)
        );
        let apps: Value = serde_json::from_slice(&apps_doc.doc.json).unwrap();
        let deployment = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        assert_eq!(
            deployment["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        let patch =
            &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object()
        );
        let containers = &apps["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]
            ["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        let ports =
            &apps["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        let widget: Value = serde_json::from_slice(
            &catalog
                .group_version("apis/example.com/v1")
                .unwrap()
                .doc
                .json,
        )
        .unwrap();
        let w = &widget["components"]["schemas"]["com.example.v1.Widget"];
        let widget_patch =
            &widget["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
        assert!(widget_patch["requestBody"]["content"]["application/merge-patch+json"].is_object());
        assert!(
            widget_patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none(),
            "custom kinds take no strategic merge patch"
        );
        assert_eq!(
            w["properties"]["spec"]["properties"]["size"]["description"],
            "how big"
        );
        assert!(w["properties"]["metadata"]["allOf"].is_array());
        let v2: Value = serde_json::from_slice(&catalog.v2().json).unwrap();
        let w2 = &v2["definitions"]["com.example.v1.Widget"];
        assert!(w2["properties"]["spec"].get("nullable").is_none());
        // A field that happens to be called `not` is a field, and a default is data.
        assert_eq!(
            w2["properties"]["spec"]["properties"]["not"]["default"],
            json!({"oneOf": 1})
        );
        assert_eq!(
            w2["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(
            v2["definitions"]["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"]
                .is_array()
        );
        assert!(v2["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["get"].is_object());
        // The metrics API has no schema source: it is left out, not described wrongly.
        assert!(root["paths"].get("apis/metrics.k8s.io/v1beta1").is_none());
    }
}
