//! Content negotiation for GraphQL over HTTP: which media type the response uses.

/// The two media types a GraphQL response can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// `application/graphql-response+json`: request errors get 4xx statuses.
    GraphqlResponseJson,
    /// `application/json`: the legacy type, request errors answer 200.
    Json,
}

impl ResponseType {
    pub const fn content_type(self) -> &'static str {
        match self {
            ResponseType::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            ResponseType::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response type from an `Accept` header. A missing header, `*/*` and
/// `application/*` mean `application/json`; an explicit `application/graphql-response+json`
/// wins ties. `None` when the client accepts neither (406).
pub fn response_type(accept: Option<&str>) -> Option<ResponseType> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Some(ResponseType::Json);
    };
    // (quality, specificity) for each candidate; specificity 2 = exact, 1 = type/*, 0 = */*.
    let mut best_gql: Option<(f32, u8)> = None;
    let mut best_json: Option<(f32, u8)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut quality = 1.0_f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                quality = v.trim().parse().unwrap_or(0.0);
            }
        }
        let (gql, json) = match media.as_str() {
            "application/graphql-response+json" => (Some(2), None),
            "application/json" => (None, Some(2)),
            "application/*" => (Some(1), Some(1)),
            "*/*" => (Some(0), Some(0)),
            _ => (None, None),
        };
        let pick = |best: &mut Option<(f32, u8)>, spec: Option<u8>| {
            if let Some(spec) = spec {
                // A more specific range overrides a less specific one, whatever its quality.
                match best {
                    Some((_, s)) if *s > spec => {}
                    Some((q, s)) if *s == spec && *q >= quality => {}
                    _ => *best = Some((quality, spec)),
                }
            }
        };
        pick(&mut best_gql, gql);
        pick(&mut best_json, json);
    }
    let gql = best_gql.filter(|(q, _)| *q > 0.0);
    let json = best_json.filter(|(q, _)| *q > 0.0);
    match (gql, json) {
        (None, None) => None,
        (Some(_), None) => Some(ResponseType::GraphqlResponseJson),
        (None, Some(_)) => Some(ResponseType::Json),
        (Some((gq, gs)), Some((jq, _))) => {
            if gq > jq || (gq == jq && gs == 2) {
                Some(ResponseType::GraphqlResponseJson)
            } else {
                Some(ResponseType::Json)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ResponseType::*, response_type};

    #[test]
    fn accept_header_chooses_the_media_type() {
        assert_eq!(response_type(None), Some(Json));
        assert_eq!(response_type(Some("*/*")), Some(Json));
        assert_eq!(response_type(Some("application/json")), Some(Json));
        assert_eq!(
            response_type(Some("application/graphql-response+json")),
            Some(GraphqlResponseJson)
        );
        assert_eq!(
            response_type(Some("application/graphql-response+json, application/json;q=0.9")),
            Some(GraphqlResponseJson)
        );
        assert_eq!(
            response_type(Some("application/json, application/graphql-response+json;q=0.5")),
            Some(Json)
        );
        assert_eq!(response_type(Some("text/html,application/xhtml+xml,*/*;q=0.8")), Some(Json));
        assert_eq!(response_type(Some("text/html")), None);
        assert_eq!(response_type(Some("application/json;q=0")), None);
    }
}
