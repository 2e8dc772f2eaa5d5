//! MISP's JSON as MISP writes it: an event (`{"Event": {…}}` or the bare object), a list of
//! them, a REST `response` envelope, or an attribute search result (`{"response":
//! {"Attribute": […]}}`). Numbers may be strings or integers; `to_ids` a bool, `"0"`/`"1"` or
//! an integer. Object attributes are flattened; tags and galaxy clusters are kept as context.

use crate::model::Context;
use serde_json::Value;

/// Most attributes read from one event (objects included).
pub const MAX_ATTRIBUTES_PER_EVENT: usize = 1_000_000;
/// Most tags kept per event or attribute.
pub const MAX_TAGS: usize = 64;

/// One attribute, flattened out of its object if it had one.
#[derive(Debug, Clone, Default)]
pub struct RawAttribute {
    pub misp_type: String,
    pub value: String,
    pub to_ids: bool,
    pub uuid: String,
    pub category: String,
    pub tags: Vec<String>,
    /// `object name/relation` for object attributes.
    pub object: Option<String>,
    /// Position in the source, for error messages.
    pub position: String,
}

/// One event's context and attributes.
#[derive(Debug, Clone, Default)]
pub struct RawEvent {
    pub context: Context,
    pub attributes: Vec<RawAttribute>,
}

/// A MISP boolean: `true`, `1`, `"1"`, `"true"`.
pub fn flag(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_u64().is_some_and(|n| n != 0),
        Value::String(s) => matches!(s.as_str(), "1" | "true" | "True"),
        _ => false,
    }
}

/// A MISP number: an integer or a string holding one.
pub fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn tags(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .take(MAX_TAGS)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Is this JSON MISP's?
pub fn looks_like(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.first().is_some_and(|e| e.get("Event").is_some()),
        Value::Object(o) => {
            o.contains_key("Event")
                || o.contains_key("response")
                || (o.contains_key("Attribute") && o.contains_key("uuid"))
        }
        _ => false,
    }
}

/// Every event in the document, with `feed` as the source name.
pub fn events(v: &Value, feed: &str) -> Vec<RawEvent> {
    let mut out = Vec::new();
    collect(v, feed, "$", &mut out);
    out
}

fn collect(v: &Value, feed: &str, at: &str, out: &mut Vec<RawEvent>) {
    match v {
        Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                collect(e, feed, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            if let Some(r) = o.get("response") {
                collect(r, feed, &format!("{at}.response"), out);
            } else if let Some(e) = o.get("Event") {
                out.push(event(e, feed, &format!("{at}.Event")));
            } else if o.contains_key("Attribute") && o.contains_key("uuid") {
                out.push(event(v, feed, at));
            } else if let Some(Value::Array(attrs)) = o.get("Attribute") {
                // restSearch on attributes: each attribute names its event.
                for (i, a) in attrs.iter().enumerate() {
                    let e = a.get("Event").unwrap_or(&Value::Null);
                    let mut ev = RawEvent {
                        context: context(e, feed),
                        attributes: Vec::new(),
                    };
                    if ev.context.event_uuid.is_empty() {
                        ev.context.event_uuid = text(&a["event_uuid"]);
                    }
                    push_attribute(a, None, &format!("{at}.Attribute[{i}]"), &mut ev.attributes);
                    out.push(ev);
                }
            }
        }
        _ => {}
    }
}

fn context(e: &Value, feed: &str) -> Context {
    let mut tags = tags(&e["Tag"]);
    if let Some(galaxies) = e["Galaxy"].as_array() {
        for g in galaxies {
            let gtype = g["type"].as_str().unwrap_or("");
            for c in g["GalaxyCluster"].as_array().into_iter().flatten() {
                if tags.len() < MAX_TAGS
                    && let Some(v) = c["value"].as_str()
                {
                    let t = format!("misp-galaxy:{gtype}=\"{v}\"");
                    if !tags.contains(&t) {
                        tags.push(t);
                    }
                }
            }
        }
    }
    Context {
        origin: "MISP event",
        feed: feed.to_string(),
        event_uuid: text(&e["uuid"]),
        event_info: text(&e["info"]),
        threat_level: number(&e["threat_level_id"])
            .and_then(|n| u8::try_from(n).ok())
            .filter(|n| (1..=4).contains(n))
            .unwrap_or(4),
        tags,
    }
}

fn push_attribute(a: &Value, object: Option<&str>, at: &str, out: &mut Vec<RawAttribute>) {
    if out.len() >= MAX_ATTRIBUTES_PER_EVENT || flag(&a["deleted"]) {
        return;
    }
    let object = object.map(|o| {
        let rel = a["object_relation"].as_str().unwrap_or("");
        format!("{o}/{rel}")
    });
    out.push(RawAttribute {
        misp_type: text(&a["type"]),
        value: text(&a["value"]),
        to_ids: flag(&a["to_ids"]),
        uuid: text(&a["uuid"]),
        category: text(&a["category"]),
        tags: tags(&a["Tag"]),
        object,
        position: at.to_string(),
    });
}

fn event(e: &Value, feed: &str, at: &str) -> RawEvent {
    let mut ev = RawEvent {
        context: context(e, feed),
        attributes: Vec::new(),
    };
    for (i, a) in e["Attribute"].as_array().into_iter().flatten().enumerate() {
        push_attribute(a, None, &format!("{at}.Attribute[{i}]"), &mut ev.attributes);
    }
    for (i, o) in e["Object"].as_array().into_iter().flatten().enumerate() {
        let name = o["name"].as_str().unwrap_or("object");
        for (j, a) in o["Attribute"].as_array().into_iter().flatten().enumerate() {
            push_attribute(
                a,
                Some(name),
                &format!("{at}.Object[{i}].Attribute[{j}]"),
                &mut ev.attributes,
            );
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_or_numbers_and_flattened_objects() {
        let v = json!({"Event": {
            "uuid": "e1", "info": "test", "threat_level_id": "1",
            "Tag": [{"name": "tlp:amber"}],
            "Galaxy": [{"type": "threat-actor", "GalaxyCluster": [{"value": "Sofacy"}]}],
            "Attribute": [
                {"type": "domain", "value": "evil.example", "to_ids": "1", "uuid": "a1"},
                {"type": "ip-dst", "value": "192.0.2.1", "to_ids": false, "uuid": "a2", "deleted": true}
            ],
            "Object": [{"name": "ja4", "Attribute": [
                {"type": "text", "object_relation": "ja4", "value": "t13d1516h2_8daaf6152771_e5627efa2ab1", "to_ids": 1}
            ]}]
        }});
        let ev = events(&v, "f");
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.context.threat_level, 1);
        assert_eq!(e.context.tlp(), Some("tlp:amber"));
        assert!(
            e.context
                .tags
                .contains(&"misp-galaxy:threat-actor=\"Sofacy\"".to_string())
        );
        assert_eq!(e.attributes.len(), 2);
        assert!(e.attributes[0].to_ids);
        assert_eq!(e.attributes[1].object.as_deref(), Some("ja4/ja4"));
        assert!(e.attributes[1].to_ids);
    }

    #[test]
    fn lists_and_rest_envelopes() {
        let one = json!({"Event": {"uuid": "x", "Attribute": []}});
        assert_eq!(events(&json!([one.clone(), one.clone()]), "f").len(), 2);
        assert_eq!(events(&json!({"response": [one]}), "f").len(), 1);
        let attrs = json!({"response": {"Attribute": [
            {"type": "ip-dst", "value": "192.0.2.1", "to_ids": true, "event_uuid": "e9",
             "Event": {"uuid": "e9", "info": "from search", "threat_level_id": 2}}
        ]}});
        let ev = events(&attrs, "rest");
        assert_eq!(ev[0].context.event_info, "from search");
        assert_eq!(ev[0].context.threat_level, 2);
    }
}
