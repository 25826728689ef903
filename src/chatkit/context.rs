//! The request context carried from the HTTP edge to the responder: who asks, from which
//! lesson, in which mode.

use crate::auth::CurrentUser;
use crate::content::LessonPath;
use crate::error::ApiError;

/// Everything about a `POST /chatkit` request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub user: CurrentUser,
    /// `X-User-Name` header, else the `user_name` query parameter, else the token's name.
    pub user_name: Option<String>,
    /// `X-Organization-ID` header (stored on new threads).
    pub organization_id: Option<String>,
    /// `lesson_path` query parameter, validated (stored on new threads).
    pub lesson_path: Option<LessonPath>,
    /// `mode` query parameter (`inference_options.model` wins when set).
    pub mode: Option<String>,
    /// `selected_text` query parameter.
    pub selected_text: Option<String>,
    pub request_id: Option<String>,
}

/// The raw pieces the handler collects.
#[derive(Debug, Clone, Default)]
pub struct RawContext {
    pub query: Option<String>,
    pub user_name_header: Option<String>,
    pub organization_header: Option<String>,
    pub request_id: Option<String>,
}

impl RequestContext {
    /// Validates the raw pieces; a malformed `lesson_path` is a 400.
    pub fn parse(user: CurrentUser, raw: RawContext) -> Result<Self, ApiError> {
        let query = raw.query.unwrap_or_default();
        let param = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        // The raw value, untrimmed, so its length and blankness are checked as the OpenAPI
        // document says (schemathesis found 600 blanks accepted as "no lesson"); only an empty
        // value counts as absent (`allowEmptyValue`).
        let lesson_path = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "lesson_path")
            .filter(|(_, v)| !v.is_empty())
            .map(|(_, p)| LessonPath::parse(&p))
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("query.lesson_path: {e}")))?;
        let user_name = non_empty(raw.user_name_header)
            .or_else(|| param("user_name"))
            .or_else(|| user.name.clone());
        Ok(Self {
            user_name,
            organization_id: non_empty(raw.organization_header),
            lesson_path,
            mode: param("mode"),
            selected_text: param("selected_text"),
            request_id: raw.request_id,
            user,
        })
    }

    /// The store owner of everything this request touches.
    pub fn owner(&self) -> &str {
        &self.user.id
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}
