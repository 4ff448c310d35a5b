//! The OpenAPI 3.1 document of `/api/v1`, generated from the same endpoint table that builds the
//! router ([`crate::api::endpoints`]), so the document cannot drift from the routes: a path, a
//! method, the roles allowed and the request body schema all come from one declaration.

use serde_json::{json, Map, Value};

use crate::api::{endpoints, Endpoint};

/// A type that describes itself as a JSON Schema (the request bodies of the API).
pub trait Schema {
    /// Its schema.
    fn schema() -> Value;
    /// Whether a field of this type must be present.
    const REQUIRED: bool = true;
}

impl Schema for String {
    fn schema() -> Value {
        json!({ "type": "string" })
    }
}
impl Schema for bool {
    fn schema() -> Value {
        json!({ "type": "boolean" })
    }
}
impl Schema for i64 {
    fn schema() -> Value {
        json!({ "type": "integer" })
    }
}
impl<T: Schema> Schema for Option<T> {
    fn schema() -> Value {
        T::schema()
    }
    const REQUIRED: bool = false;
}
impl<T: Schema> Schema for Vec<T> {
    fn schema() -> Value {
        json!({ "type": "array", "items": T::schema() })
    }
}

/// Declares a JSON request body: the struct (deserialised strictly: unknown fields are refused)
/// and its [`Schema`], from one list of documented fields.
macro_rules! api_body {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[doc = $fdoc:literal])+ $field:ident : $ty:ty),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[doc = $fdoc])+ #[serde(default)] pub $field: $ty,)+
        }
        impl $crate::openapi::Schema for $name {
            fn schema() -> serde_json::Value {
                let mut properties = serde_json::Map::new();
                let mut required: Vec<&str> = Vec::new();
                $(
                    let mut s = <$ty as $crate::openapi::Schema>::schema();
                    let text: Vec<&str> = vec![$($fdoc.trim()),+];
                    s["description"] = serde_json::Value::from(text.join(" "));
                    properties.insert(stringify!($field).to_string(), s);
                    if <$ty as $crate::openapi::Schema>::REQUIRED {
                        required.push(stringify!($field));
                    }
                )+
                serde_json::json!({ "type": "object", "additionalProperties": false, "properties": properties, "required": required })
            }
        }
    };
}
pub(crate) use api_body;

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (e, _) in endpoints() {
        let item = paths.entry(format!("/api/v1{}", e.path)).or_insert_with(|| json!({}));
        item[e.method.as_str().to_ascii_lowercase()] = operation(&e);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "bawaba API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Orders, rules, allowlist, publishing, checks, the audit log, appeals and enforcement points. \
                Authenticate with a session cookie (POST /api/v1/login; writes then need the X-CSRF-Token header) \
                or an API token (Authorization: Bearer bwb_...).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "string" }, "status": { "type": "integer" } },
                    "required": ["error", "status"],
                }
            }
        }
    })
}

fn operation(e: &Endpoint) -> Value {
    let mut parameters: Vec<Value> = e
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    parameters.extend(e.query.iter().map(|(name, description)| {
        json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
    }));
    let error = json!({ "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let mut responses = json!({
        "200": { "description": "Success", "content": { "application/json": { "schema": {} } } },
        "422": merge(json!({ "description": "Invalid input; nothing was changed" }), &error),
    });
    let mut op = json!({
        "operationId": e.operation_id(),
        "summary": e.summary,
        "tags": [e.tag],
        "x-bawaba-permission": e.perm,
        "x-bawaba-roles": e.perm.roles(),
    });
    if e.perm == crate::auth::Perm::Public {
        op["security"] = json!([]);
    } else {
        op["security"] = json!([{ "token": [] }, { "session": [] }]);
        responses["401"] = merge(json!({ "description": "Not logged in" }), &error);
        responses["403"] = merge(json!({ "description": "Role not allowed, or CSRF token missing" }), &error);
    }
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = &e.body {
        op["requestBody"] = json!({ "required": true, "content": { body.0: { "schema": (body.1)() } } });
    }
    op["responses"] = responses;
    op
}

fn merge(mut a: Value, b: &Value) -> Value {
    if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
    a
}
