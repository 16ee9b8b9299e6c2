//! The answers any operation can get before its handler runs, from the
//! serving layers: a request that cannot be parsed, a head or a body too
//! large, a body too slow. Each is a problem document like every other
//! error, so each operation lists them, and a client or a checker that
//! holds the service to its spec finds every answer it gets there.

use serde_json::{json, Value};

/// Status, and when the serving layers give it.
const ANSWERS: [(&str, &str); 4] = [
    (
        "400",
        "The request could not be read: a malformed head, header or body (`bad_request`).",
    ),
    (
        "408",
        "The request's body did not arrive within the request timeout (`bad_request`).",
    ),
    (
        "413",
        "The body is larger than 64 KiB (`payload_too_large`).",
    ),
    (
        "431",
        "The request head is larger than 32 KiB, or has more than 100 header lines (`bad_request`; over HTTP/2 the h2 library answers it bare, without a body).",
    ),
];

/// Adds the serving layers' answers to every operation that does not list
/// them already.
pub fn add_protocol_answers(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for operation in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in operation.values_mut() {
            // (A path's shared `parameters` sit beside its operations.)
            let Some(responses) = (operation.get_mut("responses")).and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (status, description) in ANSWERS {
                responses.entry(status).or_insert_with(|| {
                    json!({
                        "description": description,
                        "content": {"application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }}
                    })
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_gets_the_answers_it_lacks_and_keeps_its_own() {
        let mut document = json!({"paths": {
            "/api/v1/concerts": {
                "parameters": [],
                "get": {"responses": {"200": {"description": "the concerts"}}},
                "post": {"responses": {"413": {"description": "its own"}}}
            }
        }});

        add_protocol_answers(&mut document);

        let concerts = &document["paths"]["/api/v1/concerts"];
        for status in ["400", "408", "413", "431"] {
            let answer = &concerts["get"]["responses"][status];
            assert!(
                answer["content"]["application/problem+json"].is_object(),
                "{status}"
            );
        }
        assert_eq!(
            concerts["get"]["responses"]["200"]["description"],
            "the concerts"
        );
        assert_eq!(
            concerts["post"]["responses"]["413"]["description"],
            "its own"
        );
    }
}
