//! The OpenAPI document of API v1, generated from the handlers' annotations and the typed
//! views, made for generated clients:
//!
//! - problems are documented once per kind of route ([`Upload`], [`SignedIn`], ...) and
//!   listed by each handler, never copied;
//! - security schemes: an API key (`Authorization: Bearer`), and the session cookie with the
//!   `X-CSRF-Token` header for changes; every route that answers 401 takes them, the caption
//!   and job routes take them optionally (anonymous use is allowed);
//! - raw image bodies are `type: string, format: binary` for every accepted image type;
//! - operation ids are unique (checked by a test).

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema, SecurityRequirement};
use utoipa::{IntoResponses, Modify, PartialSchema, ToSchema};

use crate::error::Problem;

/// A file's bytes as the request body (`type: string, format: binary`).
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for Binary {}

/// The image media types a raw caption body may have.
pub const IMAGE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "application/octet-stream",
];

/// Problems of a caption upload.
#[derive(IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum Upload {
    /// Bad option, no image, too many files, or a malformed body.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// An API key that is not known.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// An API key without the `captions` scope.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The body did not arrive within `upload_timeout_seconds`.
    #[response(status = 408, content_type = "application/problem+json")]
    Timeout(Problem),
    /// A file over the byte limit, or an image over the pixel limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// Not a supported image, or not a multipart or image body.
    #[response(status = 415, content_type = "application/problem+json")]
    Unsupported(Problem),
    /// A corrupt or empty image, or a language the model does not have.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    /// Rate limited (see `Retry-After`).
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// The inference queue or the upload slots are full (see `Retry-After`).
    #[response(status = 503, content_type = "application/problem+json")]
    Busy(Problem),
}

/// Problems of a route that needs a signed-in user or an API key.
#[derive(IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum SignedIn {
    /// Not signed in, or an unknown API key.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// CSRF token missing (cookie), scope missing (key), session or admin needed.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// Problems of sign-up and password reset requests.
#[derive(IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum Credentials {
    /// The email address is taken.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// A weak password, an invalid email address, or a malformed body.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    /// Too many requests from this client, or too many failed sign-ins (see `Retry-After`).
    #[response(status = 429, content_type = "application/problem+json")]
    TooMany(Problem),
}

/// Problems of a route that names a thing by id.
#[derive(IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum Missing {
    /// No such thing (or it expired).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// Problems of a one-use link (email verification, password reset, export download).
#[derive(IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum Link {
    /// Unknown, used, expired or revoked.
    #[response(status = 410, content_type = "application/problem+json")]
    Gone(Problem),
}

/// Adds the security schemes, and the requirements of every route: those that answer 401 need
/// a key or the session (with the CSRF header for changes); the caption and job submissions
/// take either, or nothing.
pub struct Security;

const BEARER: &str = "bearer";
const SESSION: &str = "session";
const CSRF: &str = "csrf";

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`tkr_...`) made on the account page, with scopes",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::http::extract::SESSION_COOKIE,
                "The session cookie that sign-in sets",
            ))),
        );
        components.add_security_scheme(
            CSRF,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's CSRF token (`csrf_token` of sign-in); changes made with the \
                 session cookie need it",
            ))),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                (false, &mut item.get),
                (true, &mut item.post),
                (true, &mut item.patch),
                (true, &mut item.put),
                (true, &mut item.delete),
            ];
            for (changes, op) in ops {
                let Some(op) = op.as_mut() else { continue };
                let optional = path == "/api/v1/captions" || path == "/api/v1/jobs";
                if optional || answers(op, "401") {
                    op.security = Some(requirements(changes, optional));
                }
            }
        }
    }
}

fn answers(op: &Operation, status: &str) -> bool {
    op.responses.responses.contains_key(status)
}

fn requirements(changes: bool, optional: bool) -> Vec<SecurityRequirement> {
    let session: &[&str] = if changes {
        &[SESSION, CSRF]
    } else {
        &[SESSION]
    };
    let mut session_req = SecurityRequirement::default();
    for s in session {
        session_req = session_req.add::<&str, [&str; 0], &str>(s, []);
    }
    let mut v = vec![
        SecurityRequirement::new::<&str, [&str; 0], &str>(BEARER, []),
        session_req,
    ];
    if optional {
        v.push(SecurityRequirement::default());
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn operation_ids_are_unique_and_every_200_is_typed() {
        let doc = serde_json::to_value(crate::http::openapi_document()).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default().to_string();
                assert!(
                    ids.insert(id.clone()),
                    "{method} {path}: operationId {id} twice"
                );
                if let Some(ok) = op["responses"].get("200") {
                    let content = ok["content"].as_object();
                    assert!(
                        content.is_some_and(|c| c.values().all(|m| m.get("schema").is_some())),
                        "{method} {path}: 200 without a typed body"
                    );
                }
                if op["responses"].get("401").is_some() {
                    assert!(op.get("security").is_some(), "{method} {path}: no security");
                }
            }
        }
        assert!(ids.len() >= 35, "{ids:?}");
        // Every reference resolves (generated clients refuse dangling ones).
        let text = doc.to_string();
        for r in text.split("\"#/components/schemas/").skip(1) {
            let name = &r[..r.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling $ref to {name}"
            );
        }
    }
}
